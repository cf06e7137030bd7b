"""Expected times come from measured rates: a fixed cost plus seconds per million output voxels."""
from __future__ import annotations

import json

import pytest

from conftest import make_volume
from inference_backend import time_estimates
from inference_backend.cli import main
from inference_backend.imaging.io import write_volume
from inference_backend.time_estimates import Rate, expected_time, format_seconds

RATES = {
    "machines": {"cpu": "a 2-core CPU"},
    "rates": {"cpu": {"res-srdiff": {"fixed_s": 6.0, "first_sample_s_per_mvoxel": 1.0, "further_sample_s_per_mvoxel": 4.0}}},
}


@pytest.fixture
def rates(monkeypatch, tmp_path):
    path = tmp_path / "measured_speed.json"
    path.write_text(json.dumps(RATES))
    monkeypatch.setattr(time_estimates, "RATES_FILE", path)
    time_estimates.measured.cache_clear()
    yield
    time_estimates.measured.cache_clear()


def test_a_job_takes_the_fixed_cost_plus_its_voxels_per_sample():
    rate = Rate(fixed_s=6.0, first_sample_s_per_mvoxel=1.0, further_sample_s_per_mvoxel=4.0)
    assert rate.seconds(2_000_000, 1) == pytest.approx(8.0)
    assert rate.seconds(2_000_000, 3) == pytest.approx(8.0 + 2 * 8.0)


def test_the_text_says_which_machine_the_rate_is_from_and_when_there_is_none(rates):
    assert expected_time("res-srdiff", 7_000_000, 1, "cpu") == "about 13 s (measured on a 2-core CPU)"
    assert expected_time("res-srdiff", 7_000_000, 1, "auto") == "about 13 s (measured on a 2-core CPU)"
    assert expected_time("res-srdiff", 7_000_000, 1, "cuda:1") == "not measured for res-srdiff on cuda"
    assert expected_time("srmri", 7_000_000, 1, "cpu") == "not measured for srmri on cpu"
    assert [format_seconds(s) for s in (0.2, 89, 600, 7200)] == ["1 s", "89 s", "10 min", "2.0 h"]


def test_every_method_has_a_committed_cpu_rate():
    from inference_backend.registry import METHODS

    time_estimates.measured.cache_clear()
    cpu = time_estimates.measured()["rates"]["cpu"]
    assert set(METHODS) - {"auto"} <= set(cpu)
    assert all(rate["fixed_s"] >= 0 and rate["first_sample_s_per_mvoxel"] > 0 for rate in cpu.values())


def test_mrisr_methods_estimates_each_method_on_a_given_input(rates, tmp_path, capsys):
    path = tmp_path / "scan.nii.gz"
    write_volume(make_volume(shape=(100, 100, 25), spacing=(1.0, 1.0, 4.0)), path)  # 1 M output voxels at x4
    assert main(["methods", "--json", "--input", str(path), "--scale", "1,1,4", "--samples", "3"]) == 0
    listing = {entry["name"]: entry["expected_time"] for entry in json.loads(capsys.readouterr().out)}
    assert listing["res-srdiff"] == "about 15 s (measured on a 2-core CPU) for this input (100x100x100 output), 3 samples"
    assert listing["auto"] == listing["res-srdiff"] + " (res-srdiff)"  # auto picks Res-SRDiff for thick slices
    assert listing["srmri"].startswith("not measured for srmri on cpu")
    assert main(["methods", "--scale", "1,1,4"]) == 2  # a target needs the scan it refines
