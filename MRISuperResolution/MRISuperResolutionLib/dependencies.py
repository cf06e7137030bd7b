"""The Python packages the backend needs in Slicer's Python, installed the Slicer way.

PyTorch comes from the PyTorch extension (``PyTorchUtils``: it picks the build that matches
the GPU driver), at the version the backend needs; the rest from ``Resources/requirements.txt``
(``>=`` ranges) through ``slicer.packaging.pip_ensure``, which checks installed versions, not
just imports, and asks before installing. PyTorch, numpy, SimpleITK and VTK are pinned to the
versions already present while the others install: Slicer's own (and the chosen PyTorch build)
are never replaced.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import tempfile
from pathlib import Path

TORCH_REQUIREMENT = "torch>=2.8"  # MONAI 1.6 needs it
PROTECTED = ("torch", "numpy", "SimpleITK", "vtk")
TORCH_DOWNLOAD = "about 200 MB for the CPU build, 2-3 GB with CUDA"
REQUESTER = "MRI Super-Resolution"


class Declined(Exception):
    """The user chose not to install the packages."""


def requirements_file() -> Path:
    return Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"


def packaging():
    """Slicer's package manager (Slicer 5.13 and later)."""
    try:
        import slicer.packaging
    except ImportError:
        raise RuntimeError("this module needs Slicer 5.13 or later (slicer.packaging); please update Slicer") from None
    return slicer.packaging


def missing(requirements: Path | None = None) -> list[str]:
    """The requirements (torch first) that are absent or too old."""
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
    """Install what is missing, after asking; True when something was installed.

    Raises :class:`Declined` when the user says no."""
    pip = packaging()
    requirements = Path(requirements) if requirements else requirements_file()
    if not missing(requirements):
        return False
    if not pip.pip_check(TORCH_REQUIREMENT):
        install_torch()
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "constraints.txt"
        constraints.write_text(protected_constraints())
        try:
            pip.pip_ensure(pip.load_requirements(requirements), constraints=constraints, requester=REQUESTER)
        except RuntimeError as error:
            if "declined" in str(error).lower():
                raise Declined() from None
            raise
    importlib.invalidate_caches()
    return True


def install_torch() -> None:
    """PyTorch through the PyTorch extension, after the user agrees to the download."""
    import slicer

    if not slicer.util.confirmOkCancelDisplay(
        f"MRI Super-Resolution needs PyTorch ({TORCH_REQUIREMENT}), which is not installed in Slicer's Python.\n\n"
        f"Install it now? The download is {TORCH_DOWNLOAD}.",
        windowTitle=REQUESTER,
    ):
        raise Declined()
    try:
        import PyTorchUtils
    except ImportError:
        raise RuntimeError(
            "the PyTorch extension is not installed: install 'PyTorch' from the Extensions Manager, restart, and retry"
        ) from None
    PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT.removeprefix("torch"))
