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


def test_pytorch_comes_from_the_pytorch_extension_at_the_version_needed(installs, no_torch, monkeypatch):
    asked = []
    extension = types.ModuleType("PyTorchUtils")
    extension.PyTorchUtilsLogic = lambda: types.SimpleNamespace(installTorch=lambda **kwargs: asked.append(kwargs))
    monkeypatch.setitem(sys.modules, "PyTorchUtils", extension)
    dependencies.ensure(REQUIREMENTS)
    assert asked == [{"askConfirmation": False, "torchVersionRequirement": ">=2.8"}]
    assert "200 MB" in HARNESS.dialogs[0]["text"]  # the download is said before it starts
    assert all("torch" not in r for call in installs for r in call["requirements"])


def test_without_the_pytorch_extension_the_user_is_told_what_to_install(installs, no_torch, monkeypatch):
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    with pytest.raises(RuntimeError, match="install 'PyTorch' from the Extensions Manager"):
        dependencies.ensure(REQUIREMENTS)
    assert installs == []
