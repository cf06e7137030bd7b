"""Slice thickness is not slice spacing: 5 mm slices every 6 mm (a 1 mm gap) in the thick-slice
forward models, the ``--slice-thickness`` option and its checks, DICOM Slice Thickness
(0018,0050), Res-SRDiff's adaptation pairs and data consistency, and ``report.json``."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_bad_inputs import write_dicom_series

from conftest import make_volume
from inference_backend.cli import main
from inference_backend.errors import InputError
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.target import Refinement, target_grid
from inference_backend.job import JobOptions
from inference_backend.methods.base import MethodRequest
from inference_backend.methods.res_srdiff.method import adaptation_pairs
from inference_backend.operators import consistency
from inference_backend.operators.degradation import (
    axis_operator_matrix,
    downsampling_operator,
    slice_profile_matrix,
)
from inference_backend.pipeline import process
from inference_backend.plan import plan_job
from inference_backend.progress import Progress
from inference_backend.registry import get_method

N, FACTOR = 24, 6  # a 1 mm HR axis of 24 voxels; slices every 6 mm


def gaussian_row(centre: float, fwhm: float) -> np.ndarray:
    """The Gaussian profile integrated over each 1 mm HR voxel (erf), normalised to sum 1."""
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x - centre) / (sigma * math.sqrt(2))))

    row = np.array([cdf(i + 0.5) - cdf(i - 0.5) for i in range(N)])
    return row / row.sum()


def test_box_slices_with_a_gap_integrate_the_profile_over_each_voxel():
    """Slice j is centred at 6j + 2.5 and 5 mm wide: [6j, 6j + 5]. The voxels 6j and 6j + 5 (each
    [i - 0.5, i + 0.5]) are half inside, 6j+1 .. 6j+4 wholly: 0.5, 1, 1, 1, 1, 0.5 over 5."""
    gap = slice_profile_matrix(N, FACTOR, "box", 5.0)
    assert gap.shape == (4, N)
    for j in range(4):
        expected = np.zeros(N)
        expected[6 * j : 6 * j + 6] = [0.1, 0.2, 0.2, 0.2, 0.2, 0.1]
        np.testing.assert_allclose(gap[j], expected, atol=1e-12)
    no_gap = slice_profile_matrix(N, FACTOR, "box")  # 6 mm wide: [6j - 0.5, 6j + 5.5], six whole voxels
    np.testing.assert_allclose(no_gap[1, 6:12], np.full(6, 1 / 6), atol=1e-12)
    assert np.abs(gap - no_gap).max() > 0.05


def test_gaussian_slices_with_a_gap_have_fwhm_the_thickness():
    gap = slice_profile_matrix(N, FACTOR, "gaussian", 5.0)
    no_gap = slice_profile_matrix(N, FACTOR, "gaussian")
    for j in range(4):
        centre = 6 * j + 2.5
        np.testing.assert_allclose(gap[j], gaussian_row(centre, 5.0), atol=2e-4)  # 16-point integration per voxel
        np.testing.assert_allclose(no_gap[j], gaussian_row(centre, 6.0), atol=2e-4)
    np.testing.assert_allclose(gap[1, 8], gaussian_row(8.5, 5.0)[8], atol=2e-4)  # the central voxels carry more
    assert gap[1, 8] > no_gap[1, 8] + 0.02 and gap[1, 5] < no_gap[1, 5]


def test_the_consistency_operators_take_the_thickness_relative_to_the_spacing():
    for profile in ("gaussian", "box", "sinc"):
        np.testing.assert_array_equal(
            axis_operator_matrix(f"{profile}-slices", N, 4, thickness=5 / 6), slice_profile_matrix(N, FACTOR, profile, 5.0)
        )
        np.testing.assert_array_equal(axis_operator_matrix(f"{profile}-slices", N, 4), slice_profile_matrix(N, FACTOR, profile))
    np.testing.assert_array_equal(axis_operator_matrix("kspace", N, 4, thickness=5 / 6), axis_operator_matrix("kspace", N, 4))
    operator = downsampling_operator("box-slices", (5, 7, N), (5, 7, 4), (1.0, 1.0, 5 / 6))
    assert [op.axis for op in operator.axis_operators] == [2]
    np.testing.assert_array_equal(operator.axis_operators[0].matrix, slice_profile_matrix(N, FACTOR, "box", 5.0))


def test_a_projection_with_the_gap_model_reproduces_the_scan_through_that_model():
    rng = np.random.default_rng(0)
    estimate, measured = rng.normal(size=(4, 3, N)), rng.normal(size=(4, 3, 4))
    thickness = (1.0, 1.0, 5 / 6)
    projected = consistency.project(estimate, measured, "gaussian-slices", thickness)
    forward = downsampling_operator("gaussian-slices", estimate.shape, measured.shape, thickness)
    import torch

    np.testing.assert_allclose(forward(torch.from_numpy(projected.astype(np.float64))).numpy(), measured, atol=1e-4)
    assert np.abs(projected - consistency.project(estimate, measured, "gaussian-slices")).max() > 1e-2


# --- the option and its checks ------------------------------------------------------------------


def thick_input(tmp_path: Path, spacing=(1.0, 1.0, 6.0)) -> Path:
    path = tmp_path / "input" / "flair.nii.gz"
    path.parent.mkdir(exist_ok=True)
    write_volume(make_volume(shape=(12, 10, 5), spacing=spacing), path)
    return path


@pytest.mark.parametrize(
    ("thickness", "target", "message"),
    [
        ("0", "1,1,6", "--slice-thickness must be a number of mm > 0; got 0"),
        ("-1", "1,1,6", "--slice-thickness must be a number of mm > 0; got -1"),
        ("nan", "1,1,6", "--slice-thickness must be a number of mm > 0; got nan"),
        ("13", "1,1,6", "--slice-thickness must be between 1.5 and 12 mm (1/4 to 2x the 6 mm slice spacing along z); got 13"),
        ("1", "1,1,6", "--slice-thickness must be between 1.5 and 12 mm"),
        ("5", "2,2,1", "--slice-thickness applies to thick slices, a job that refines one axis (the slice axis); this one refines 2"),
        ("5", "2,2,6", "this one refines 3"),
    ],
)
def test_a_bad_slice_thickness_is_an_input_error(tmp_path, capfd, thickness, target, message):
    source = thick_input(tmp_path)
    out = tmp_path / "out"
    args = ["run", str(source), "--method", "interpolation", "--scale", target, "--slice-thickness", thickness, "--out", str(out), "--progress", "none"]
    capfd.readouterr()
    assert main(args) == InputError.exit_code == 2
    stderr = capfd.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("mrisr: error:") and message in stderr[0], stderr
    assert not out.exists()


def test_validate_job_checks_the_thickness_for_every_caller():
    grid = make_volume(spacing=(1.0, 1.0, 6.0)).grid
    assert plan_job(grid, JobOptions(scale=(1, 1, 6), slice_thickness=5.0)).target.spacing == (1.0, 1.0, 1.0)
    plan_job(grid, JobOptions(scale=(1, 1, 6), slice_thickness=12.0))  # twice the spacing: overlapping, accepted
    with pytest.raises(InputError, match="between 1.5 and 12 mm"):
        plan_job(grid, JobOptions(scale=(1, 1, 6), slice_thickness=12.5))
    isotropic = make_volume(spacing=(1.0, 1.0, 1.0)).grid
    with pytest.raises(InputError, match="refines 3"):
        plan_job(isotropic, JobOptions(scale=(2, 2, 2), slice_thickness=1.0))


def test_the_option_travels_on_the_command_line_and_into_the_report(tmp_path):
    options = JobOptions(method="interpolation", scale=(1.0, 1.0, 6.0), slice_thickness=5.0)
    assert options.arguments()[-2:] == ["--slice-thickness", "5.0"]
    source, out = thick_input(tmp_path), tmp_path / "out"
    assert main(["run", str(source), *options.arguments(), "--out", str(out), "--progress", "none"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["slice_thickness_mm"], report["slice_thickness_source"]) == (5.0, "option")
    assert report["request"]["slice_thickness"] == 5.0
    assert main(["run", str(source), "--method", "interpolation", "--scale", "1,1,6", "--out", str(out), "--overwrite", "--progress", "none"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["slice_thickness_mm"], report["slice_thickness_source"]) == (6.0, "= slice spacing")
    in_plane = process(read_volume(source), JobOptions(method="interpolation", scale=(2, 2, 1))).report
    assert (in_plane["slice_thickness_mm"], in_plane["slice_thickness_source"]) == (None, None)


# --- DICOM Slice Thickness (0018,0050) ------------------------------------------------------------


def dicom_input(tmp_path: Path, thickness: str | None) -> Path:
    folder = tmp_path / "T2_axial"
    tags = None if thickness is None else {"0018|0050": thickness}
    volume = make_volume(shape=(12, 10, 5), spacing=(1.0, 1.0, 6.0), dtype=np.int16)
    write_dicom_series(volume, folder, "1.2.826.0.1.3680043.2.1125.27.1", "T2 axial", tags)
    return folder


def test_a_dicom_series_gives_its_slice_thickness_to_the_job(tmp_path):
    folder = dicom_input(tmp_path, "5")
    volume = read_volume(folder)
    assert volume.slice_thickness == 5.0 and volume.grid.spacing[2] == pytest.approx(6.0)
    assert volume.with_array(volume.array.astype(np.float32)).slice_thickness == 5.0
    out = tmp_path / "out"
    assert main(["run", str(folder), "--method", "interpolation", "--scale", "1,1,6", "--out", str(out), "--progress", "none"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["slice_thickness_mm"], report["slice_thickness_source"]) == (5.0, "DICOM (0018,0050)")
    assert main(["run", str(folder), "--method", "interpolation", "--scale", "1,1,6", "--slice-thickness", "4.5",
                 "--out", str(out), "--overwrite", "--progress", "none"]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert (report["slice_thickness_mm"], report["slice_thickness_source"]) == (4.5, "option")  # the option wins


def test_an_implausible_dicom_thickness_is_ignored_and_the_report_says_why(tmp_path):
    volume = read_volume(dicom_input(tmp_path, "20"))
    report = process(volume, JobOptions(method="interpolation", scale=(1, 1, 6))).report
    assert report["slice_thickness_mm"] == pytest.approx(6.0)
    assert report["slice_thickness_source"].startswith("= slice spacing (DICOM (0018,0050) 20 mm ignored: it must be between 1.5 and 12 mm")


def test_files_without_the_tag_have_no_slice_thickness(tmp_path):
    assert read_volume(dicom_input(tmp_path, None)).slice_thickness is None
    assert read_volume(thick_input(tmp_path)).slice_thickness is None  # NIfTI


# --- Res-SRDiff's adaptation pairs -----------------------------------------------------------------


def res_srdiff_request(slice_thickness: float | None) -> MethodRequest:
    volume = make_volume(shape=(24, 20, 6), spacing=(1.0, 1.0, 6.0))
    options = get_method("res-srdiff").parse_options({"model": "res-srdiff"})
    target = target_grid(volume.grid, scale=(1, 1, 6))
    return MethodRequest(volume, Refinement(volume.grid, target, slice_thickness), options, Progress())


def test_the_adaptation_pairs_are_degraded_with_the_scans_true_profile():
    gap = adaptation_pairs(res_srdiff_request(5.0))
    assert gap is not None
    training, held_out = gap
    assert held_out is None  # without adapt_check every slice trains
    degradation = training.degradation
    assert (degradation.operator, degradation.factor) == ("gaussian", 6)
    assert degradation.thickness == pytest.approx(5.0)  # FWHM 5 in-slice pixels (1 mm), a sample every 6
    np.testing.assert_allclose(degradation.matrix(N), slice_profile_matrix(N, FACTOR, "gaussian", 5.0), atol=1e-12)
    assert adaptation_pairs(res_srdiff_request(None))[0].degradation.thickness == 6.0  # FWHM = spacing: as before
    assert res_srdiff_request(5.0).relative_thickness() == pytest.approx((1.0, 1.0, 5 / 6))
    assert res_srdiff_request(None).relative_thickness() == (1.0, 1.0, 1.0)


def test_res_srdiff_uses_the_thickness_in_consistency_and_reports_it(tiny_model, monkeypatch):
    calls = []
    project = consistency.project

    def recording(estimate, measured, name, thickness=None):
        calls.append((name, thickness))
        return project(estimate, measured, name, thickness)

    monkeypatch.setattr(consistency, "project", recording)
    volume = make_volume(shape=(12, 10, 4), spacing=(1.0, 1.0, 6.0))
    method_options = {"model": "tiny-res-srdiff", "adapt_steps": 1, "consistency": "gaussian-slices"}
    options = JobOptions(method="res-srdiff", method_options=method_options, scale=(1, 1, 6), device="cpu", slice_thickness=5.0)
    outputs = process(volume, options)
    assert calls and calls[0][0] == "gaussian-slices" and calls[0][1] == pytest.approx((1.0, 1.0, 5 / 6))
    assert (outputs.report["slice_thickness_mm"], outputs.report["slice_thickness_source"]) == (5.0, "option")
    assert outputs.report["resolved_options"]["consistency"] == "gaussian-slices"


def test_srmri_projects_its_slices_with_the_thickness(tmp_path, monkeypatch):
    import torch

    from inference_backend.methods.srmri.method import ScoreNet
    from inference_backend.schedulers.score_sde import VESchedule
    from inference_backend.training.common import export_model

    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path))
    torch.manual_seed(0)
    export_model("tiny-srmri", ScoreNet(VESchedule(sigma_min=0.01, sigma_max=20.0), {"in_channels": 1, "channels": (8, 16)}).checkpoint(), {"method": "srmri"}, tmp_path)
    calls = []
    slice_projection = consistency.slice_projection

    def recording(name, size, measured, thickness=None):
        calls.append(thickness)
        return slice_projection(name, size, measured, thickness)

    monkeypatch.setattr(consistency, "slice_projection", recording)
    volume = make_volume(shape=(12, 10, 4), spacing=(1.0, 1.0, 6.0))
    method_options = {"model": "tiny-srmri", "steps": 2, "consistency": "box-slices"}
    outputs = process(volume, JobOptions(method="srmri", method_options=method_options, scale=(1, 1, 6), device="cpu", slice_thickness=5.0))
    assert calls and all(thickness == pytest.approx((1.0, 5 / 6)) for thickness in calls)  # W: the slices' coarse axis
    assert np.isfinite(outputs.sr.array).all() and outputs.report["slice_thickness_mm"] == 5.0
