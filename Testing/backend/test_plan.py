"""The job plan: worked out once per job, read by everything that runs, previews, estimates or
resumes a job."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, make_volume
from inference_backend.cli import main
from inference_backend.imaging.io import write_volume
from inference_backend.job import JobOptions
from inference_backend.plan import plan_job


@pytest.fixture
def plans_made(monkeypatch):
    """Every plan_job call, wherever it is made from."""
    import inference_backend.pipeline as pipeline
    import inference_backend.plan as plan

    made = []

    def counting(*args, **kwargs):
        made.append(args)
        return plan.plan_job(*args, **kwargs)

    monkeypatch.setattr(pipeline, "plan_job", counting)
    return made


def test_a_run_plans_its_job_once_and_reports_the_plan(tmp_path, volume_file, plans_made):
    assert main(["run", str(volume_file), "--scale", "1,1,3", "--samples", "4", "--method", "interpolation", "--out", str(tmp_path / "o"),
                 "--progress", "none"]) == 0  # fmt: skip
    assert len(plans_made) == 1
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert (report["method"], report["samples"], report["acquisition"], report["model"]) == ("interpolation", 1, "thick-slices", None)


def test_the_plan_resolves_auto_its_model_and_the_samples():
    grid = make_volume(spacing=(1.0, 1.0, 4.0)).grid
    thick = plan_job(grid, JobOptions(scale=(1, 1, 4), samples=4))  # auto, the default
    assert (thick.method, thick.samples, thick.acquisition) == ("res-srdiff", 4, "thick-slices")
    assert thick.model.name == "res-srdiff" and len(thick.model.sha256) == 64
    assert thick.method_options.model == "res-srdiff" and thick.report()["options"]["model"] == "res-srdiff"
    in_plane = plan_job(grid, JobOptions(scale=(2, 2, 1), samples=4))
    assert (in_plane.method, in_plane.samples, in_plane.model, in_plane.acquisition) == ("interpolation", 1, None, "in-plane")
    assert in_plane.method_options.kind == "zero-fill"


def test_a_batch_with_auto_run_twice_recomputes_nothing(tmp_path):
    """The completeness check reads the plan: auto's choice and its model (the bug: it expected
    no model for auto, so every finished scan was recomputed)."""
    (tmp_path / "src").mkdir()
    write_volume(make_volume(shape=(24, 24, 6), spacing=(1.0, 1.0, 3.0)), tmp_path / "src" / "s0.nii.gz")
    out = tmp_path / "out"
    batch = ["batch", str(tmp_path / "src"), "--scale", "1,1,3", "--out", str(out), "--progress", "none"]  # --method auto, the default
    assert main(batch) == 0
    reports = {scan: json.loads((out / scan / "report.json").read_text()) for scan in ("s0",)}
    assert {(report["method"], report["auto"]["chose"]) for report in reports.values()} == {("res-srdiff", "res-srdiff")}
    written = {scan: (out / scan / f"{scan}_sr.nii.gz").stat().st_mtime_ns for scan in reports}
    assert main(batch) == 0
    assert {row["status"] for row in json.loads((out / "batch.json").read_text())["scans"]} == {"up to date"}
    assert {scan: (out / scan / f"{scan}_sr.nii.gz").stat().st_mtime_ns for scan in reports} == written


BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked: " + name)
sys.meta_path.insert(0, Block())
from inference_backend.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "arguments",
    [["--help"], ["methods"], ["methods", "--input", "{input}", "--scale", "1,1,3"], ["run", "{input}", "--method", "interpolation", "--scale", "1,1,3", "--out", "{out}"]],
    ids=["help", "methods", "methods-input", "interpolation-run"],
)
def test_light_commands_import_no_torch(tmp_path, volume_file, arguments):
    command = [a.format(input=volume_file, out=tmp_path / "out") for a in arguments]
    completed = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *command], capture_output=True, text=True, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert "torch" not in completed.stderr
