"""Installing the backend's packages into Slicer's Python, through Slicer's own ``packaging``
code (``pip_check``, ``pip_ensure``): versions are checked, the user is asked, PyTorch comes
from the PyTorch extension, and Slicer's numpy, SimpleITK, VTK and the chosen PyTorch stay."""
from __future__ import annotations

import importlib.metadata
import sys
import types

import pytest

import slicer_harness

REASON = slicer_harness.unavailable_reason()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

HARNESS = slicer_harness.install()
import qt  # noqa: E402
import slicer.packaging  # noqa: E402

from MRISuperResolutionLib import dependencies  # noqa: E402

REQUIREMENTS = dependencies.requirements_file()


@pytest.fixture
def installs(monkeypatch):
    """What pip would have been asked to install (nothing is installed)."""
    HARNESS.reset()
    calls = []

    def pip_install(requirements, constraints=None, **kwargs):
        calls.append({"requirements": list(requirements), "constraints": open(constraints).read() if constraints else ""})

    monkeypatch.setattr(slicer.packaging, "pip_install", pip_install)
    return calls


@pytest.fixture
def old_monai(tmp_path, monkeypatch):
    """An older MONAI, as another extension may have installed, found first on the path."""
    info = tmp_path / "monai-1.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: monai\nVersion: 1.3.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert importlib.metadata.version("monai") == "1.3.0"


def test_everything_present_means_no_question_and_no_install(installs):
    assert dependencies.missing(REQUIREMENTS) == []
    assert dependencies.ensure(REQUIREMENTS) is False
    assert installs == [] and HARNESS.dialogs == []


def test_an_older_package_is_upgraded_after_asking_and_slicers_own_stay_pinned(installs, old_monai):
    assert dependencies.missing(REQUIREMENTS) == ["monai>=1.6"]  # importable, but too old
    assert dependencies.ensure(REQUIREMENTS) is True
    assert len(HARNESS.dialogs) == 1 and "monai>=1.6" in HARNESS.dialogs[0]["detailedText"]
    (call,) = installs
    assert call["requirements"] == ["monai>=1.6"]
    pins = call["constraints"].split()
    for name in ("torch", "numpy", "SimpleITK", "vtk"):
        assert f"{name}=={importlib.metadata.version(name)}" in pins


def test_declining_installs_nothing(installs, old_monai):
    HARNESS.answers.append(qt.QMessageBox.Cancel)
    with pytest.raises(dependencies.Declined):
        dependencies.ensure(REQUIREMENTS)
    assert installs == []


@pytest.fixture
def no_torch(monkeypatch):
    original = slicer.packaging.pip_check
    monkeypatch.setattr(
        slicer.packaging,
        "pip_check",
        lambda requirement, *seen: False if str(requirement).startswith("torch") else original(requirement, *seen),
    )


def pytorch_extension(monkeypatch, installed: str | None = None) -> list[dict]:
    """The PyTorch extension's logic as the PyTorch-based extensions use it; ``installed``: the
    version of a PyTorch it finds (None: none); returns its install calls."""
    asked = []

    class Logic:
        def torchInstalled(self):
            return installed is not None

        @property
        def torch(self):
            return types.SimpleNamespace(__version__=installed)

        def installTorch(self, **kwargs):
            asked.append(kwargs)
            return types.SimpleNamespace(__version__="2.13.0")

    extension = types.ModuleType("PyTorchUtils")
    extension.PyTorchUtilsLogic = Logic
    monkeypatch.setitem(sys.modules, "PyTorchUtils", extension)
    return asked


def test_pytorch_comes_from_the_pytorch_extension_in_the_one_question(installs, no_torch, old_monai, monkeypatch):
    asked = pytorch_extension(monkeypatch)
    assert dependencies.ensure(REQUIREMENTS) is True
    assert asked == [{"askConfirmation": False, "torchVersionRequirement": ">=2.8"}]
    (dialog,) = HARNESS.dialogs  # one question for everything
    assert "200 MB" in dialog["detailedText"] and "monai>=1.6" in dialog["detailedText"]
    assert all("torch" not in r for call in installs for r in call["requirements"])


def test_without_the_pytorch_extension_the_user_is_told_first_and_asked_nothing(installs, no_torch, monkeypatch):
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    with pytest.raises(dependencies.DependencyError, match="install 'PyTorch' from the Extensions Manager"):
        dependencies.ensure(REQUIREMENTS)
    assert installs == [] and HARNESS.dialogs == []


def test_an_older_pytorch_is_not_replaced_and_the_user_is_pointed_to_pytorch_utils(installs, no_torch, monkeypatch):
    asked = pytorch_extension(monkeypatch, installed="2.4.1+cpu")
    with pytest.raises(dependencies.DependencyError, match="PyTorch 2.4.1\\+cpu is installed.*PyTorch Utils module"):
        dependencies.ensure(REQUIREMENTS)
    assert asked == [] and installs == [] and HARNESS.dialogs == []


def test_declining_installs_neither_pytorch_nor_the_rest(installs, no_torch, old_monai, monkeypatch):
    asked = pytorch_extension(monkeypatch)
    HARNESS.answers.append(qt.QMessageBox.Cancel)
    with pytest.raises(dependencies.Declined):
        dependencies.ensure(REQUIREMENTS)
    assert asked == [] and installs == []


def test_offline_is_one_error_dialog_from_the_panel(old_monai, monkeypatch):
    """pip cannot reach its index: the panel shows one dialog saying so, and nothing else."""
    import subprocess

    HARNESS.reset()

    def offline(*args, **kwargs):
        raise subprocess.CalledProcessError(1, ["pip", "install"], stderr="Could not find a version that satisfies the requirement")

    monkeypatch.setattr(slicer.packaging, "pip_install", offline)
    harness_module = HARNESS.load_module(slicer_harness.REPO_ROOT / "MRISuperResolution" / "MRISuperResolution.py")
    widget = harness_module.build_widget()
    assert widget.ensureDependencies() is False
    assert len(HARNESS.dialogs) == 2  # the one question, then the one failure
    assert "Installing the Python packages failed" in HARNESS.dialogs[1]["text"] and "Offline?" in HARNESS.dialogs[1]["text"]


def test_a_package_already_loaded_that_changed_proposes_one_restart(installs, old_monai, monkeypatch):
    restarted = []
    monkeypatch.setattr(slicer.util, "restart", lambda: restarted.append(True), raising=False)
    monkeypatch.setattr(dependencies, "_installed", lambda name: "1.6.1" if name == "monai" else importlib.metadata.version(name))
    HARNESS.answers.append(qt.QMessageBox.Yes)
    dependencies.propose_restart({"monai": "1.3.0", "numpy": importlib.metadata.version("numpy")})
    assert len(HARNESS.dialogs) == 1 and "monai: 1.3.0 -> 1.6.1" in HARNESS.dialogs[0]["detailedText"] and restarted == [True]
