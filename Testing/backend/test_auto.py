"""``--method auto``: the method for the input's acquisition, recorded with the reason; a named
method used where it is experimental says so."""
from __future__ import annotations

import json

import pytest

from conftest import make_volume
from inference_backend.errors import InputError
from inference_backend.job import JobOptions
from inference_backend.plan import plan_job

GRID = make_volume(spacing=(1.0, 1.0, 4.0)).grid


@pytest.mark.parametrize(
    "target, method, options",
    [
        ({"scale": (1, 1, 4)}, "res-srdiff", {}),  # thick slices
        ({"scale": (2, 2, 1)}, "interpolation", {"kind": "zero-fill"}),  # a coarse in-plane matrix
        ({"scale": (2, 2, 2)}, "interpolation", {}),  # every axis: nothing measured, B-spline
    ],
)
def test_auto_resolves_by_acquisition(target, method, options):
    plan = plan_job(GRID, JobOptions(method="auto", **target))
    assert (plan.method, plan.auto.options) == (method, options)
    assert plan.report()["auto"]["chose"] == method and plan.auto.reason


def test_auto_without_installed_models_is_interpolation(tmp_path, monkeypatch):
    import inference_backend.assets as assets

    monkeypatch.setattr(assets, "BUNDLED_DIR", tmp_path / "bundled")
    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path / "user"))
    plan = plan_job(GRID, JobOptions(method="auto", scale=(1, 1, 4)))
    assert plan.method == "interpolation" and "not installed" in plan.auto.reason


def test_auto_takes_no_method_options():
    with pytest.raises(InputError, match="auto takes no --opt"):
        plan_job(GRID, JobOptions(method="auto", scale=(1, 1, 4), method_options={"kind": "linear"}))


def test_a_method_outside_what_it_is_made_for_is_flagged_in_the_report(tmp_path, volume_file):
    from inference_backend.cli import main

    out = tmp_path / "out"
    assert main(["run", str(volume_file), "--method", "interpolation", "--scale", "1,1,2", "--out", str(out), "--progress", "none"]) == 0
    assert "quality_note" not in json.loads((out / "report.json").read_text())
    assert plan_job(GRID, JobOptions(method="inverse-sr", scale=(2, 2, 1))).quality_note.startswith("not made for in-plane")
