"""What tells a radiologist where a result can be believed: the consistency map (where the result
contradicts the acquired slices), the uncertainty in % of the head's intensity, the lesion
scores, no invented negative intensities, and slice-drop truth from real thick-slice scans."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from conftest import make_volume
from inference_backend import pipeline
from inference_backend.cli import main
from inference_backend.evaluation.lesion_fidelity import LesionTruth, lesion_scores
from inference_backend.evaluation.slice_drop import rigid_transform, slice_drop, slice_drop_scores, two_visit_prediction
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.resampling import resample
from inference_backend.imaging.target import Refinement
from inference_backend.imaging.uncertainty import sd_percent
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.job import JobOptions
from inference_backend.operators.acquisition import AcquisitionModel
from inference_backend.operators.consistency_map import consistency_map
from inference_backend.pipeline import process

SHAPE = (40, 40, 40)
NOISE_SD = 3.0


def ball(centre: tuple[int, int, int], radius: float, shape=SHAPE) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def head_with_lesion() -> tuple[np.ndarray, np.ndarray]:
    """A smooth head (tissue 200 in air 0) with a bright 7 mm lesion; and the lesion's mask."""
    head = ball((20, 20, 20), 16)
    lesion = ball((20, 14, 21), 3.5)
    truth = ndimage.gaussian_filter(np.where(head, 200.0, 0.0) + np.where(lesion, 150.0, 0.0), 1.0)
    return truth.astype(np.float32), lesion


def thick_slices(truth: np.ndarray, factor: int = 4, seed: int = 0) -> tuple[Volume, Refinement]:
    """``truth`` acquired in ``factor`` mm slices along z, with noise of NOISE_SD."""
    fine = Grid(SHAPE, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    coarse = Grid((SHAPE[0], SHAPE[1], SHAPE[2] // factor), (1.0, 1.0, float(factor)), (0.0, 0.0, (factor - 1) / 2), np.eye(3))
    refinement = Refinement(coarse, fine)
    acquired = AcquisitionModel.of(refinement)(truth) + np.random.default_rng(seed).normal(0, NOISE_SD, coarse.size)
    return Volume(acquired.astype(np.float32), coarse), refinement


def test_the_truth_agrees_with_its_acquisition_and_an_erased_lesion_or_a_shift_does_not():
    truth, lesion = head_with_lesion()
    acquired, refinement = thick_slices(truth)
    fine = refinement.target

    faithful = consistency_map(Volume(truth, fine), acquired, refinement)
    assert faithful.residual.grid == acquired.grid  # on the input's grid: voxel for voxel with the scan
    assert faithful.summary["noise_sd"] == pytest.approx(NOISE_SD, rel=0.25)  # estimated from the scan alone
    assert faithful.summary["rms_sd"] == pytest.approx(1.0, abs=0.25)  # the truth differs from the scan by its noise
    assert faithful.summary["beyond_3sd_share"] < 0.01 and "warning" not in faithful.summary

    erased = np.where(ndimage.binary_dilation(lesion, iterations=1), ndimage.median_filter(truth, 9), truth)
    at_lesion = consistency_map(Volume(erased, fine), acquired, refinement).residual.array
    slabs = np.unique(np.nonzero(lesion)[2] // 4)
    assert at_lesion[:, :, slabs].min() < -10  # the erased lesion stands out, darker than the scan
    assert np.abs(at_lesion[:, :, [s for s in range(10) if s not in slabs]]).max() < 6  # nowhere else

    shifted = consistency_map(Volume(truth * 1.05, fine), acquired, refinement).summary
    assert shifted["rms_sd"] > 2 and "disagrees" in shifted["warning"]


def test_every_method_writes_its_consistency_map_and_lists_it(tmp_path, tiny_model):
    volume = make_volume(shape=(16, 14, 6), spacing=(1.0, 1.0, 3.0))
    path = tmp_path / "scan.nii.gz"
    write_volume(volume, path)
    for method in ("interpolation", "res-srdiff"):
        out = tmp_path / method
        extra = ["--opt", "model=tiny-res-srdiff", "--opt", "adapt_steps=0", "--samples", "2"] if method == "res-srdiff" else []
        assert main(["run", str(path), "--method", method, "--scale", "1,1,3", "--out", str(out), "--progress", "none", "--device", "cpu", *extra]) == 0
        report = json.loads((out / "report.json").read_text())
        written = out / "scan_consistency.nii.gz"
        assert report["outputs"]["consistency"]["file"] == written.name
        assert read_volume(written).grid.size == volume.grid.size  # the acquired grid
        assert set(report["consistency"]) >= {"model", "noise_sd", "noise_sd_from", "rms_sd", "beyond_3sd_share"}
        assert report["consistency"]["model"].startswith("thick slices along z")


@pytest.mark.parametrize("method, warned", [("res-srdiff", True), ("interpolation", False)])
def test_a_learned_result_that_contradicts_the_scan_is_said_so_on_stderr(tmp_path, capsys, monkeypatch, tiny_model, method, warned):
    """A learned method may draw what the scan did not show: said in one line. Interpolation
    draws nothing new (its disagreement is the slice profile it does not undo): not warned."""
    truth, _ = head_with_lesion()
    acquired, _ = thick_slices(truth)
    path = tmp_path / "scan.nii.gz"
    write_volume(acquired, path)
    guarded = pipeline.run_guarded

    def brightened(runner, request):  # a method whose result is 10% brighter than the scan says
        result = guarded(runner, request)
        return replace(result, volume=result.volume.with_array(result.volume.array * 1.1))

    monkeypatch.setattr(pipeline, "run_guarded", brightened)
    options = ["--opt", "model=tiny-res-srdiff", "--opt", "adapt_steps=0", "--device", "cpu"] if method == "res-srdiff" else []
    arguments = ["run", str(path), "--method", method, *options, "--scale", "1,1,4", "--out", str(tmp_path / "out"), "--progress", "none"]
    assert main(arguments) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "disagrees" in line]
    consistency = json.loads((tmp_path / "out" / "report.json").read_text())["consistency"]
    assert consistency["rms_sd"] > 1.5  # the map shows it either way
    if warned:
        assert len(warning) == 1 and warning[0].startswith(f"mrisr: warning: {method}:") and "warning" in consistency
    else:
        assert warning == [] and "warning" not in consistency


@pytest.mark.parametrize("method", ["interpolation", "res-srdiff"])
def test_a_non_negative_scan_gives_a_non_negative_result_and_its_zero_background_stays_zero(tiny_model, method):
    head = ball((12, 12, 4), 7, shape=(24, 24, 8))
    scan = np.where(head, 300.0, 0.0).astype(np.float32)  # skull-stripped: exactly 0 outside, sharp edges
    volume = Volume(scan, Grid(scan.shape, (1.0, 1.0, 4.0), (0.0, 0.0, 0.0), np.eye(3)))
    options = {"res-srdiff": {"model": "tiny-res-srdiff", "adapt_steps": 0}, "interpolation": {"kind": "bspline"}}[method]
    outputs = process(volume, JobOptions(method=method, method_options=options, scale=(1, 1, 4), samples=2, device="cpu"))
    assert outputs.sr.array.min() >= 0  # B-spline overshoots a sharp edge below 0; an untrained network anywhere
    near_head = resample(volume.with_array(head.astype(np.float32)), outputs.sr.grid, "linear").array > 0
    far = ~ndimage.binary_dilation(near_head, iterations=2)
    assert far.mean() > 0.3
    assert np.all(outputs.sr.array[far] == 0)


def test_the_uncertainty_is_a_share_of_the_heads_intensity_and_nothing_outside_it():
    result = np.where(ball((20, 20, 20), 12), 400.0, 0.0).astype(np.float32)
    variance = np.full(SHAPE, 20.0**2, np.float32)  # 1 SD = 20 everywhere, the air included
    percent = sd_percent(variance, result)
    assert percent[20, 20, 20] == pytest.approx(5.0)  # 20 of the median 400
    assert percent[0, 0, 0] == 0


def test_lesion_scores_see_a_kept_an_erased_and_an_invented_lesion():
    truth, lesion = head_with_lesion()
    truth += np.random.default_rng(0).normal(0, 10, SHAPE).astype(np.float32)  # tissue texture: what the rule's SDs measure
    brain = ball((20, 20, 20), 14)
    lesions = LesionTruth(lesion, +1, brain)
    kept = lesion_scores(truth, truth, lesions, brain)
    assert (kept["lesions"], kept["contrast_kept_median"], kept["erased"], kept["invented_blobs"], kept["f1"]) == (1, 1.0, 0, 0, 1.0)

    erased_result = np.where(ndimage.binary_dilation(lesion, iterations=3), ndimage.median_filter(truth, 13), truth)
    erased = lesion_scores(truth, erased_result, lesions, brain)
    assert erased["erased"] == 1 and erased["contrast_kept_median"] < 0.5 and erased["f1"] < 1

    invented_result = truth + ndimage.gaussian_filter(np.where(ball((20, 27, 18), 2.5), 150.0, 0.0), 1.0).astype(np.float32)
    assert lesion_scores(truth, invented_result, lesions, brain)["invented_blobs"] == 1


def test_slice_drop_scores_a_result_at_the_slices_the_scanner_measured():
    truth, _ = head_with_lesion()
    acquired, _ = thick_slices(truth, factor=2)  # 20 acquired 2 mm slices
    drop = slice_drop(acquired, 2)
    assert drop.kept.grid.size[2] == 10 and drop.kept.grid.spacing[2] == 4.0
    np.testing.assert_array_equal(drop.kept.array, acquired.array[:, :, ::2])
    assert list(drop.removed) == list(range(1, 20, 2))
    assert drop.target.spacing[2] == 1.0 and drop.target.size[2] == 40  # made 1 mm fine, then averaged over the slabs
    truth_on_target = resample(Volume(truth, Grid(SHAPE, (1.0,) * 3, (0.0,) * 3, np.eye(3))), drop.target, "linear")
    exact = slice_drop_scores(drop, truth_on_target)
    assert exact["psnr"] > 35 and exact["ssim"] > 0.9 and exact["slices_scored"] > 5  # only the scan's noise differs
    flat = np.broadcast_to(truth_on_target.array.mean(axis=2, keepdims=True), drop.target.size)  # no slice-axis detail at all
    assert slice_drop_scores(drop, truth_on_target.with_array(flat))["psnr"] < exact["psnr"] - 10


def test_each_visit_is_predicted_from_the_other_visits_result_registered_and_averaged_over_its_slabs():
    truth, _ = head_with_lesion()
    moved = np.roll(truth, (3, 0, 2), axis=(0, 1, 2))  # the second visit: the head 3 mm along x, its slabs 2 mm off along z
    scans = (thick_slices(truth)[0], thick_slices(moved, seed=1)[0])
    fine = thick_slices(truth)[1].target
    made = tuple({"sharp": Volume(gain * head, fine), "smooth along z": Volume(gain * ndimage.gaussian_filter1d(head, 4.0, axis=2), fine)}
                 for head, gain in ((truth, 1.0), (moved, 1.3)))  # another scanner gain at the second visit  # fmt: skip
    transform = rigid_transform(made[0]["smooth along z"], made[1]["smooth along z"])  # found on the smooth pair, as on B-spline's
    np.testing.assert_allclose(transform.TransformPoint((20.0, 20.0, 20.0)), (23.0, 20.0, 22.0), atol=0.3)  # the first's points into the second's
    scores = two_visit_prediction(scans, made, transform)
    assert scores["sharp"] > 33 and scores["sharp"] > scores["smooth along z"] + 5  # only the scans' noise differs
    backwards = two_visit_prediction(scans, made, transform.GetInverse())
    assert backwards["sharp"] < scores["sharp"] - 10
