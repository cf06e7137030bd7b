"""The Slicer module's Logic on a real MRML scene (slicer-core): geometry, runners, cancel, errors."""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' package here is not Kitware's slicer-core", allow_module_level=True)

from conftest import OBLIQUE, make_volume  # noqa: E402
from inference_backend.cli import main  # noqa: E402
from inference_backend.imaging.io import read_volume, write_volume  # noqa: E402
from MRISuperResolutionLib.conversion import (  # noqa: E402
    ijk_to_ras,
    update_node_from_volume,
    volume_from_node,
)
from MRISuperResolutionLib.logic import SuperResolutionLogic  # noqa: E402

RUNNERS = ["in-process", "subprocess"]


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


def add_volume(scene, volume, name="scan", node_class="vtkMRMLScalarVolumeNode"):
    node = scene.AddNewNodeByClass(node_class, name)
    update_node_from_volume(node, volume)
    return node


def volume_nodes(scene) -> list[str]:
    return [scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode").GetName() for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]


def test_node_round_trip_keeps_oblique_anisotropic_geometry(scene):
    volume = make_volume(spacing=(0.8, 1.2, 3.5), direction=OBLIQUE)
    node = add_volume(scene, volume)
    np.testing.assert_allclose(ijk_to_ras(node), volume.grid.ijk_to_ras(), atol=1e-9)
    back = volume_from_node(node)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.grid.matches(volume.grid, tolerance_mm=1e-9)


@pytest.mark.parametrize("runner", RUNNERS)
def test_output_nodes_match_the_command_line(tmp_path, scene, runner):
    volume = make_volume(spacing=(0.9, 1.1, 3.0), direction=OBLIQUE)
    path = tmp_path / "scan.nrrd"
    write_volume(volume, path)
    assert main(["run", str(path), "--method", "interpolation", "--scale", "1,1,3", "--out", str(tmp_path / "cli"), "--progress", "none"]) == 0
    expected = read_volume(tmp_path / "cli" / "scan_sr.nii.gz")
    node = add_volume(scene, volume)
    before = volume_from_node(node).array.copy()
    job = SuperResolutionLogic(scene).process(node, method="interpolation", scale=(1, 1, 3), runner=runner, pythonExecutable=sys.executable)
    assert job.state == "finished", job.error
    output = job.outputNodes["sr"]
    assert output.GetName() == "scan SR"
    np.testing.assert_allclose(ijk_to_ras(output), expected.grid.ijk_to_ras(), atol=1e-4)
    np.testing.assert_allclose(volume_from_node(output).array, expected.array, atol=1e-5)
    np.testing.assert_array_equal(volume_from_node(node).array, before)  # input untouched


def test_both_runners_give_identical_results_and_each_run_adds_new_nodes(tmp_path, scene):
    node = add_volume(scene, make_volume(spacing=(1.0, 1.0, 4.0)))
    logic = SuperResolutionLogic(scene)
    first = logic.process(node, method="interpolation", scale=(1, 1, 4), runner="in-process")
    array_first = volume_from_node(first.outputNodes["sr"]).array.copy()
    second = logic.process(node, method="interpolation", scale=(1, 1, 4), runner="subprocess", pythonExecutable=sys.executable)
    assert second.outputNodes["sr"] is not first.outputNodes["sr"]  # the first result is kept
    np.testing.assert_array_equal(volume_from_node(second.outputNodes["sr"]).array, array_first)
    np.testing.assert_array_equal(volume_from_node(first.outputNodes["sr"]).array, array_first)
    assert volume_nodes(scene) == ["scan", "scan SR", "scan SR consistency", "scan SR_1", "scan SR consistency_1"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_cancel_mid_run_leaves_no_nodes_and_no_temporary_files(tmp_path, scene, runner):
    node = add_volume(scene, make_volume(shape=(128, 128, 40), spacing=(1, 1, 4)))
    logic = SuperResolutionLogic(scene)
    logic.temp_root = str(tmp_path)
    job = logic.process(node, method="interpolation", scale=(2, 2, 4), methodOptions={"kind": "lanczos"}, runner=runner, pythonExecutable=sys.executable, waitForCompletion=False)
    deadline = time.monotonic() + 120
    while job.progress[0] < 0.06 and not job.poll() and time.monotonic() < deadline:
        time.sleep(0.02)
    job.cancel()
    assert job.wait(timeout=60)
    assert job.state == "cancelled" and job.outputNodes == {}
    assert volume_nodes(scene) == ["scan"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("runner", RUNNERS)
def test_backend_failure_is_one_clear_message(scene, runner):
    volume = make_volume()
    volume.array[2, 3, 4] = np.nan
    node = add_volume(scene, volume)
    job = SuperResolutionLogic(scene).process(node, method="interpolation", scale=(1, 1, 2), runner=runner, pythonExecutable=sys.executable)
    assert job.state == "failed"
    assert "NaN/Inf" in job.error and "\n" not in job.error and "Traceback" not in job.error
    assert volume_nodes(scene) == ["scan"]


def test_invalid_request_is_refused_before_any_work(scene):
    from inference_backend.errors import InputError

    node = add_volume(scene, make_volume())
    with pytest.raises(InputError, match="below 1"):
        SuperResolutionLogic(scene).process(node, method="interpolation", scale=(1, 1, 0.5))
    with pytest.raises(InputError, match="unknown method"):
        SuperResolutionLogic(scene).process(node, method="nope", scale=(1, 1, 2))


@pytest.mark.parametrize("mask_kind", ["labelmap", "segmentation"])
def test_lesion_mask_from_labelmap_or_segmentation(scene, mask_kind):
    volume = make_volume(shape=(24, 24, 24), spacing=(1, 1, 1), direction=np.eye(3))
    node = add_volume(scene, volume)
    mask = np.zeros(volume.grid.size, np.uint8)
    mask[9:14, 10:15, 11:13] = 1
    labelmap = add_volume(scene, volume.with_array(mask), "lesion", "vtkMRMLLabelMapVolumeNode")
    mask_node = labelmap
    if mask_kind == "segmentation":
        mask_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesion segmentation")
        assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, mask_node)
    job = SuperResolutionLogic(scene).process(node, method="interpolation", scale=(1, 1, 1), lesionMask=mask_node)
    assert job.state == "finished", job.error
    filled = volume_from_node(job.outputNodes["lesion_filled"]).array
    sr = volume_from_node(job.outputNodes["sr"]).array
    inside = mask.astype(bool)
    np.testing.assert_array_equal(filled[~inside], sr[~inside])
    assert not np.allclose(filled[inside], sr[inside])
    assert job.outputNodes["lesion_filled"].GetName() == "scan lesion-filled"


def test_lesion_fill_choice_reaches_both_runners(scene):
    volume = make_volume(shape=(24, 24, 24), spacing=(1, 1, 1), direction=np.eye(3))
    node = add_volume(scene, volume)
    mask = np.zeros(volume.grid.size, np.uint8)
    mask[9:14, 10:15, 11:13] = 1
    labelmap = add_volume(scene, volume.with_array(mask), "lesion", "vtkMRMLLabelMapVolumeNode")
    logic = SuperResolutionLogic(scene)
    fills = {}
    for runner in RUNNERS:
        for fill in ("neighbourhood", "nawm-mean"):
            job = logic.process(node, method="interpolation", scale=(1, 1, 1), lesionMask=labelmap, lesionFill=fill, runner=runner, pythonExecutable=sys.executable)
            assert job.state == "finished", job.error
            fills[runner, fill] = volume_from_node(job.outputNodes["lesion_filled"]).array.copy()
    inside = mask.astype(bool)
    assert np.unique(fills["in-process", "nawm-mean"][inside]).size == 1  # one intensity: the NAWM mean
    assert not np.allclose(fills["in-process", "neighbourhood"][inside], fills["in-process", "nawm-mean"][inside])
    for fill in ("neighbourhood", "nawm-mean"):
        np.testing.assert_allclose(fills["subprocess", fill], fills["in-process", fill], atol=1e-4)
    from inference_backend.errors import InputError

    with pytest.raises(InputError, match="lesion-fill must be one of"):
        logic.process(node, method="interpolation", scale=(1, 1, 1), lesionMask=labelmap, lesionFill="paint")


def test_models_for_a_method_include_user_models(tmp_path, monkeypatch, scene):
    import json

    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path))
    (tmp_path / "site-a.pt").write_bytes(b"weights")
    (tmp_path / "site-a.json").write_text(json.dumps({"method": "msp-sr", "sha256": "0" * 64}))
    models = SuperResolutionLogic(scene).modelsFor("msp-sr")
    assert ("site-a", "user") in models and "msp-sr" not in [name for name, _ in models]  # the default is listed apart
    assert "site-a" not in [name for name, _ in SuperResolutionLogic(scene).modelsFor("res-srdiff")]


def test_a_batch_from_the_console_follows_the_batch_rules(tmp_path, scene):
    paths = []
    for index, name in enumerate(("a", "b", "broken")):
        volume = make_volume(seed=index)
        if name == "broken":
            volume.array[1, 1, 1] = np.nan
        paths.append(tmp_path / f"{name}.nii.gz")
        write_volume(volume, paths[-1])
    logic, events = SuperResolutionLogic(scene), []
    summary = logic.processBatch(
        paths, tmp_path / "out", method="interpolation", scale=(1, 1, 2), progressCallback=lambda *event: events.append(event)
    )
    statuses = {row["scan_id"]: row["status"] for row in summary["scans"]}
    assert statuses == {"a": "done", "b": "done", "broken": "failed"} and len(events) == 3
    assert read_volume(tmp_path / "out" / "a" / "a_sr.nii.gz").grid.size == (20, 18, 24)
    again = logic.processBatch(paths[:2], tmp_path / "out", method="interpolation", scale=(1, 1, 2))
    assert {row["status"] for row in again["scans"]} == {"up to date"}
    assert volume_nodes(scene) == []  # a batch writes files; the scene is left as it was
