"""The Python packages the backend needs in Slicer's Python, installed the way Slicer's
PyTorch-based extensions install them.

PyTorch comes from the PyTorch extension (``PyTorchUtils``: it picks the build that matches the
GPU driver), which is looked for first: without it nothing is asked or installed. A PyTorch
already installed but older than the backend needs is not replaced (other extensions may use
it): the user is pointed to the *PyTorch Utils* module. The rest comes from
``Resources/requirements.txt`` (``>=`` ranges) through ``slicer.packaging`` (Slicer 5.12 and
later), which checks installed versions, not just imports. One question lists everything that
will be installed; PyTorch, numpy, SimpleITK and VTK are pinned to what is installed while the
others install; and one restart is proposed when a package already loaded changed.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import sys
import tempfile
from pathlib import Path

from MRISuperResolutionLib.i18n import tr as _

TORCH_MINIMUM = "2.8"  # MONAI 1.6 needs it
TORCH_REQUIREMENT = f"torch>={TORCH_MINIMUM}"
PROTECTED = ("torch", "numpy", "SimpleITK", "vtk")
TORCH_DOWNLOAD = "about 200 MB for the CPU build, 2-3 GB with CUDA"
REQUESTER = "MRI Super-Resolution"


class Declined(Exception):
    """The user chose not to install the packages."""


class DependencyError(RuntimeError):
    """What is missing cannot be installed from here; the message says what to do."""


def requirements_file() -> Path:
    return Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"


def packaging():
    """Slicer's package manager (Slicer 5.12 and later)."""
    try:
        import slicer.packaging
    except ImportError:
        raise DependencyError(_("this module needs Slicer 5.12 or later (slicer.packaging); please update Slicer")) from None
    return slicer.packaging


def torch_logic():
    """The PyTorch extension's logic; refused, before anything is asked, where it is missing."""
    try:
        import PyTorchUtils
    except ImportError:
        raise DependencyError(
            _("MRI Super-Resolution needs the PyTorch extension: install 'PyTorch' from the Extensions Manager, restart Slicer, and retry")
        ) from None
    return PyTorchUtils.PyTorchUtilsLogic()


def torch_problem(logic) -> str | None:
    """Why the installed PyTorch cannot be used as it is (None: absent, or recent enough)."""
    from packaging.version import Version

    if not logic.torchInstalled():
        return None
    version = str(logic.torch.__version__)
    if Version(version.split("+")[0]) >= Version(TORCH_MINIMUM):
        return None
    return _(
        "PyTorch {version} is installed, but MRI Super-Resolution needs {minimum} or later. It is not replaced here, as other "
        "extensions may use it: open the PyTorch Utils module, install PyTorch with the version requirement '>={minimum}', "
        "restart Slicer and retry."
    ).format(version=version, minimum=TORCH_MINIMUM)


def missing(requirements: Path | None = None) -> list[str]:
    """The backend's requirements (torch first) that are absent or too old."""
    pip = packaging()
    needed = [TORCH_REQUIREMENT] + [str(r) for r in pip.load_requirements(requirements or requirements_file())]
    return [requirement for requirement in needed if not pip.pip_check(requirement)]


def protected_constraints() -> str:
    """pip constraints pinning the protected packages to their installed versions."""
    lines = []
    for name in PROTECTED:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"


def ensure(requirements: Path | str | None = None) -> bool:
    """Install what is missing, after one question; True when something was installed.

    Raises :class:`Declined` when the user says no, :class:`DependencyError` when it cannot be
    done from here (no PyTorch extension, a PyTorch too old to replace)."""
    import slicer

    pip = packaging()
    requirements = Path(requirements) if requirements else requirements_file()
    absent = missing(requirements)
    if not absent:
        return False
    needs_torch = TORCH_REQUIREMENT in absent
    logic = torch_logic() if needs_torch else None
    problem = None if logic is None else torch_problem(logic)
    if problem:
        raise DependencyError(problem)
    others = [r for r in absent if r != TORCH_REQUIREMENT]
    listing = ([f"PyTorch ({TORCH_REQUIREMENT}, {TORCH_DOWNLOAD}), through the PyTorch extension"] if needs_torch else []) + others
    if not slicer.util.confirmOkCancelDisplay(
        _("MRI Super-Resolution needs Python packages that Slicer's Python does not have yet. Install them now?"),
        windowTitle=REQUESTER,
        detailedText="\n".join(f"- {line}" for line in listing),
    ):
        raise Declined()
    before = loaded_versions()
    if needs_torch and logic.installTorch(askConfirmation=False, torchVersionRequirement=f">={TORCH_MINIMUM}") is None:
        raise DependencyError(_("PyTorch could not be installed by the PyTorch extension; see its module for details"))
    if others:
        with tempfile.TemporaryDirectory() as folder:
            constraints = Path(folder) / "constraints.txt"
            constraints.write_text(protected_constraints())
            pip.pip_ensure(pip.load_requirements(requirements), constraints=constraints, requester=REQUESTER, prompt_install=False, prompt_restart=False)
    importlib.invalidate_caches()
    propose_restart(before)
    return True


def loaded_versions() -> dict[str, str]:
    """The installed versions of the packages already imported in this session."""
    versions = {}
    for name in {module.split(".")[0] for module in sys.modules}:
        try:
            versions[name] = importlib.metadata.version(name)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    return versions


def propose_restart(before: dict[str, str]) -> None:
    """One question when a package already loaded changed: the old one stays in memory."""
    import slicer

    now = {name: _installed(name) for name in before}
    changed = [f"- {name}: {version} -> {now[name]}" for name, version in before.items() if now[name] not in (None, version)]
    if changed and slicer.util.confirmYesNoDisplay(
        _("Packages already loaded were updated; they work as they should after Slicer restarts. Restart now?"),
        windowTitle=REQUESTER,
        detailedText="\n".join(changed),
    ):
        slicer.util.restart()


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
