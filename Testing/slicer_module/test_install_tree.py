"""The extension as the Extensions Index factory makes it: configured, built, installed and
packaged by Slicer's own CMake (``../shared/slicer-cmake``), then the module loaded from the
install tree, with the source tree off the import path, and a job run there."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

SLICER_CMAKE = REPO_ROOT.parent / "shared" / "slicer-cmake"
SCRIPTED = Path("lib") / "Slicer-5.13" / "qt-scripted-modules"


def cmake() -> str | None:
    found = shutil.which("cmake", path=str(Path(sys.executable).parent)) or shutil.which("cmake")
    if found is None:
        return None
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout.split()[2]
    return found if tuple(int(part) for part in version.split(".")[:2]) >= (3, 28) else None


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    if not SLICER_CMAKE.is_dir():
        pytest.skip(f"Slicer's CMake stand-in is not at {SLICER_CMAKE} (developer and CI machines only)")
    program = cmake()
    if program is None:
        pytest.skip("CMake 3.28 or later is not installed (pip install -e '.[test]')")
    build = tmp_path_factory.mktemp("extension-build")
    for step in ([program, "-S", str(REPO_ROOT), "-B", str(build), f"-DSlicer_DIR={SLICER_CMAKE}"], [program, "--build", str(build)],
                 [program, "--install", str(build), "--prefix", str(build / "install")]):  # fmt: skip
        completed = subprocess.run(step, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    packaged = subprocess.run(["cpack"] if shutil.which("cpack") else [str(Path(program).with_name("cpack"))], cwd=build, capture_output=True, text=True)
    assert packaged.returncode == 0, packaged.stdout[-3000:] + packaged.stderr[-3000:]
    assert list(build.glob("*MRISuperResolution*.tar.gz")), "cpack made no package"
    return build / "install"


def shipped(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_every_file_the_module_and_the_backend_ship_is_installed(installed):
    modules = installed / SCRIPTED
    backend = shipped(REPO_ROOT / "inference_backend")
    assert "measured_speed.json" in backend and any(name.startswith("models/") for name in backend)
    missing = sorted(name for name in backend if not (modules / "MRISuperResolutionBackend" / "inference_backend" / name).is_file())
    assert not missing, missing
    module = shipped(REPO_ROOT / "MRISuperResolution") - {"CMakeLists.txt"}
    assert not sorted(name for name in module if not (modules / name).is_file())
    description = next((installed / "share").rglob("*.s4ext")).read_text()
    assert "scm" in description and "category Filtering" in description


INSTALLED_JOB = """
import sys
from pathlib import Path
modules = Path(sys.argv[1])
sys.path[:0] = [sys.argv[2]]  # the harness only: neither the repository nor its package
import slicer_harness
harness = slicer_harness.install()
harness.reset()
module = harness.load_module(modules / "MRISuperResolution.py")
widget = module.build_widget()
import inference_backend, numpy as np, slicer, time
assert Path(inference_backend.__file__).resolve().is_relative_to(modules.resolve()), inference_backend.__file__
node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "thick")
array = np.zeros((6, 24, 24), np.float32)
array[1:5, 4:20, 4:20] = 100 + np.random.default_rng(0).normal(0, 5, (4, 16, 16))
slicer.util.updateVolumeFromArray(node, array)
node.SetSpacing(1.0, 1.0, 3.0)
parameters = widget._parameterNode
parameters.inputVolume, parameters.method = node, "interpolation"
summary = widget.ui.resolutionLabel.text
widget.ui.applyButton.click()
deadline = time.monotonic() + 120
while widget.job is not None and time.monotonic() < deadline:
    harness.qapplication.processEvents()
    widget.onPollJob()
    time.sleep(0.05)
print("RESULT", slicer.util.getNode("thick SR").GetImageData().GetDimensions(), "|", summary)
"""


def test_the_installed_module_runs_a_job_from_the_install_tree(installed, tmp_path):
    from slicer_harness import unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run([sys.executable, "-c", INSTALLED_JOB, str(installed / SCRIPTED), str(REPO_ROOT / "Testing" / "slicer_module")],
                               capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT"))
    assert "(24, 24, 18)" in result
    assert "Expected time: about" in result and "not measured" not in result  # the installed measured_speed.json


def test_the_catalog_entry_is_valid_for_the_index(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schemas = sorted((SLICER_CMAKE / "schemas").glob("schema-v*.json"), key=lambda p: tuple(int(v) for v in p.stem[8:].split(".")))
    if not schemas:
        pytest.skip(f"Slicer's catalog schemas are not at {SLICER_CMAKE / 'schemas'}")
    entry = json.loads((REPO_ROOT / "Resources" / "ExtensionsIndex" / "MRISuperResolution.json").read_text())
    newest = schemas[-1]
    jsonschema.validate(entry, json.loads(newest.read_text()))
    assert entry["$schema"].endswith(f"slicer-extension-catalog-entry-{newest.stem}.json#"), "name the Index's current schema"
