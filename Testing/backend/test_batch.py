"""mrisr batch: finding scans (folder, BIDS, manifest), resuming, failures, stopping, and the
same batch on Ray actors, one of which is killed mid-batch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, make_volume
from inference_backend.batch.discovery import discover
from inference_backend.batch.engines import LocalEngine
from inference_backend.batch.runner import BatchSettings, run_batch, scan_options
from inference_backend.cli import main
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.job import JobOptions


def write(path: Path, seed: int = 0, nan: bool = False, **geometry) -> Path:
    volume = make_volume(seed=seed, **geometry)
    if nan:
        volume.array[1, 1, 1] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    write_volume(volume, path)
    return path


def summary(out: Path) -> dict[str, dict]:
    return {row["scan_id"]: row for row in json.loads((out / "batch.json").read_text())["scans"]}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith((".mrisr-partial-", ".mrisr-lock"))]


def test_a_folder_is_searched_recursively_and_mirrored(tmp_path):
    for name in ("site-a/s1.nii.gz", "site-b/deep/s2.nrrd", ".hidden/s3.nii.gz"):
        write(tmp_path / "src" / name)
    (tmp_path / "src" / "notes.txt").write_text("not a scan")
    out = tmp_path / "src" / "results"  # below the source: never taken as input
    assert main(["batch", str(tmp_path / "src"), "--method", "interpolation", "--out", str(out), "--scale", "1,1,2", "--progress", "none"]) == 0
    assert set(summary(out)) == {"site-a/s1", "site-b/deep/s2"}
    assert read_volume(out / "site-b" / "deep" / "s2" / "s2_sr.nii.gz").grid.size == (20, 18, 24)
    assert (out / "summary.tsv").read_text().splitlines()[0].split("\t")[:2] == ["scan", "status"]
    assert main(["batch", str(tmp_path / "src"), "--method", "interpolation", "--out", str(out), "--scale", "1,1,2", "--pattern", "site-a/*.nii.gz", "--progress", "none"]) == 0


def bids_dataset(root: Path) -> Path:
    (root / "dataset_description.json").parent.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "test", "BIDSVersion": "1.10.0"}))
    write(root / "sub-01" / "anat" / "sub-01_acq-axial_T2w.nii.gz", 1)
    write(root / "sub-01" / "anat" / "sub-01_acq-sag_T2w.nii.gz", 2)
    write(root / "sub-02" / "ses-1" / "anat" / "sub-02_ses-1_acq-axial_FLAIR.nii.gz", 3)
    write(root / "sub-02" / "ses-1" / "anat" / "sub-02_ses-1_T1w.nii.gz", 4)
    write(root / "derivatives" / "x" / "sub-01" / "anat" / "sub-01_T2w.nii.gz", 5)  # not raw data
    return root


def test_bids_scans_are_selected_by_suffix_and_entity_into_a_derivative_dataset(tmp_path):
    source, out = bids_dataset(tmp_path / "ds"), tmp_path / "derivatives" / "mrisr"
    scans, is_bids = discover(source, suffixes=("T2w", "FLAIR"), filters={"acq": "axial"})
    assert is_bids and [s.id for s in scans] == ["sub-01/anat/sub-01_acq-axial_T2w", "sub-02/ses-1/anat/sub-02_ses-1_acq-axial_FLAIR"]
    arguments = ["batch", str(source), "--method", "interpolation", "--out", str(out), "--spacing", "0.9", "--suffix", "T2w,FLAIR", "--entity", "acq=axial", "--progress", "none"]
    assert main(arguments) == 0
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "mrisr"
    folder = out / "sub-01" / "anat" / "sub-01_acq-axial_T2w"
    sidecar = json.loads((folder / "sub-01_acq-axial_T2w_sr.json").read_text())
    assert sidecar["Method"] == "interpolation" and sidecar["MethodOptions"] == {"kind": "bspline"}
    assert sidecar["Sources"] == ["bids:raw:sub-01/anat/sub-01_acq-axial_T2w.nii.gz"]
    report = json.loads((folder / "report.json").read_text())
    assert set(report["sidecars"]) == {"sr"}  # listed with its SHA-256 like every output


def test_a_manifest_gives_each_scan_its_mask_and_options(tmp_path):
    write(tmp_path / "scans" / "a.nii.gz", 1, shape=(24, 24, 24), spacing=(1, 1, 1), direction=np.eye(3))
    write(tmp_path / "scans" / "b.nii.gz", 2)
    mask = np.zeros((24, 24, 24), np.uint8)
    mask[9:14, 10:15, 11:13] = 1
    a = read_volume(tmp_path / "scans" / "a.nii.gz")
    write_volume(a.with_array(mask), tmp_path / "scans" / "a_lesion.nii.gz")
    manifest = tmp_path / "scans.tsv"
    manifest.write_text("input\tlesion_mask\tscale\topt\nscans/a.nii.gz\tscans/a_lesion.nii.gz\t1,1,1\tkind=linear\nscans/b.nii.gz\t\t\t\n")
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "--method", "interpolation", "--out", str(out), "--scale", "1,1,2", "--progress", "none"]) == 0
    report_a = json.loads((out / "scans" / "a" / "report.json").read_text())
    assert report_a["options"] == {"kind": "linear"} and "lesion_filled" in report_a["outputs"]
    assert read_volume(out / "scans" / "b" / "b_sr.nii.gz").grid.size == (20, 18, 24)
    (tmp_path / "bad.csv").write_text("path\nscans/a.nii.gz\n")
    assert main(["batch", str(tmp_path / "bad.csv"), "--method", "interpolation", "--out", str(out), "--scale", "2", "--progress", "none"]) == 2


def test_scan_options_override_the_batch(tmp_path):
    base = JobOptions(scale=(1, 1, 4), method_options={"kind": "bspline"})
    options = scan_options(base, {"spacing": "1,1,1", "opt": "kind=linear", "samples": "2"})
    assert (options.scale, options.spacing, options.method_options, options.samples) == (None, (1.0, 1.0, 1.0), {"kind": "linear"}, 2)


def test_resume_skips_what_is_done_reruns_what_changed_and_retries_only_failures(tmp_path):
    good, bad = write(tmp_path / "src" / "good.nii.gz", 1), write(tmp_path / "src" / "bad.nii.gz", 2, nan=True)
    out = tmp_path / "out"
    batch = ["batch", str(tmp_path / "src"), "--method", "interpolation", "--out", str(out), "--progress", "none"]
    assert main([*batch, "--scale", "1,1,2"]) == 5  # finished, with a failure
    assert summary(out)["bad"]["status"] == "failed" and summary(out)["bad"]["exit_code"] == 2
    assert "NaN/Inf" in summary(out)["bad"]["message"] and summary(out)["good"]["status"] == "done"
    written = (out / "good" / "good_sr.nii.gz").stat().st_mtime_ns
    write(bad, 2)  # the user fixes the input
    assert main([*batch, "--scale", "1,1,2", "--retry-failed"]) == 0
    assert summary(out)["bad"]["status"] == "done" and summary(out)["good"]["status"] == "done"
    assert (out / "good" / "good_sr.nii.gz").stat().st_mtime_ns == written  # not run again
    assert main([*batch, "--scale", "1,1,2"]) == 0
    assert {row["status"] for row in summary(out).values()} == {"up to date"}
    assert main([*batch, "--scale", "1,1,3"]) == 0  # other options: a different result
    assert read_volume(out / "good" / "good_sr.nii.gz").grid.size == (20, 18, 36)
    assert good.exists() and not leftovers(out)


def test_a_stopped_batch_keeps_finished_scans_leaves_nothing_partial_and_resumes(tmp_path):
    for index in range(4):
        write(tmp_path / "src" / f"s{index}.nii.gz", index, shape=(48, 48, 16), spacing=(1.0, 1.0, 4.0))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "inference_backend", "batch", str(tmp_path / "src"), "--out", str(out), "--scale", "2,2,4",
               "--method", "interpolation", "--opt", "kind=lanczos", "--progress", "jsonl"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    first = process.stdout.readline()  # one scan ended: stop during the next
    assert json.loads(first)["event"] == "scan"
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # the second stop cancels the running scan too
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and json.loads(stdout.splitlines()[-1])["exit_code"] == 130
    assert not leftovers(out)
    states = summary(out)
    finished = [scan for scan, row in states.items() if row["status"] == "done"]
    assert finished and len(finished) < 4
    for scan in finished:
        report = json.loads((out / scan / "report.json").read_text())
        assert (out / scan / report["outputs"]["sr"]["file"]).stat().st_size == report["outputs"]["sr"]["bytes"]
    assert main(command[3:-2] + ["--progress", "none"]) == 0
    assert {row["status"] for row in summary(out).values()} <= {"done", "up to date"}


def test_two_local_workers_each_load_a_model_once(tmp_path, tiny_model):
    """Worker processes keep the verified checkpoint: a batch of several scans on one worker
    reads the weights once (the engine's model cache), and two workers split the scans."""
    for index in range(3):
        write(tmp_path / "src" / f"s{index}.nii.gz", index, shape=(24, 24, 8), spacing=(1.0, 1.0, 2.0))
    options = JobOptions(method="res-srdiff", method_options={"model": "tiny-res-srdiff", "adapt_steps": "0"}, scale=(1, 1, 2), device="cpu")
    scans, _ = discover(tmp_path / "src")
    result = run_batch(scans, BatchSettings(tmp_path / "out", options), LocalEngine(workers=2))
    assert result.counts() == {"done": 3}
    assert len({r.worker for r in result.results.values()}) == 2


def test_a_retried_scan_whose_result_was_committed_is_done_not_refused(tmp_path):
    """Ray retries a task whose actor died; if the actor died after committing the result, the
    retry must find it done (same request, same files), not refuse the folder or run it twice."""
    from inference_backend.batch.worker import ScanTask, process_scan

    source = write(tmp_path / "s.nii.gz", shape=(24, 24, 8), spacing=(1.0, 1.0, 2.0))
    task = ScanTask("s", source, tmp_path / "out" / "s", JobOptions(scale=(1, 1, 2), method_options={"kind": "linear"}))
    first = process_scan(task)
    assert first.status == "done", first.message
    report = task.out_dir / "report.json"
    written = report.stat().st_mtime_ns
    again = process_scan(task)
    assert (again.status, again.exit_code) == ("done", 0), again.message
    assert report.stat().st_mtime_ns == written  # not run a second time
    assert sorted(Path(p).name for p in again.outputs) == sorted(Path(p).name for p in first.outputs)
    other = process_scan(ScanTask("s", source, task.out_dir, JobOptions(scale=(1, 1, 2), method_options={"kind": "nearest"})))
    assert other.status == "failed" and "--overwrite" in other.message  # another request's result stays protected
    time.sleep(0.01)
    redo = replace(task, overwrite=True, planned_at=time.time())  # a later batch asked to replace it
    assert process_scan(redo).status == "done" and report.stat().st_mtime_ns > written  # run again
    rewritten = report.stat().st_mtime_ns
    assert process_scan(redo).status == "done" and report.stat().st_mtime_ns == rewritten  # its retry finds it done


ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'mrisr[cluster]')")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_actors_lose_and_duplicate_nothing_when_one_is_killed(tmp_path, local_ray):
    from inference_backend.batch.engines import RayEngine

    for index in range(8):
        write(tmp_path / "src" / f"s{index:02d}.nii.gz", index, shape=(48, 48, 16), spacing=(1.0, 1.0, 4.0))
    scans, _ = discover(tmp_path / "src")
    settings = BatchSettings(tmp_path / "out", JobOptions(scale=(2, 2, 4), method_options={"kind": "linear"}))
    ended: list[str] = []
    killed: list[int] = []
    killer = threading.Thread(target=kill_one_actor_once, args=(ended, killed), daemon=True)
    killer.start()
    result = run_batch(scans, settings, RayEngine(workers=2), on_event=lambda r, *_: ended.append(r.scan_id))
    killer.join(timeout=60)
    assert killed, "no Ray worker was killed: the test did not test a loss"
    assert result.counts() == {"done": 8}, {k: (v.status, v.message) for k, v in result.results.items()}
    assert sorted(ended) == sorted(s.id for s in scans)  # each scan ended once
    assert not leftovers(tmp_path / "out")
    for scan in scans:
        report = json.loads((tmp_path / "out" / scan.id / "report.json").read_text())
        assert report["request"]["input"] == str(scan.input.resolve())


def kill_one_actor_once(ended: list[str], killed: list[int]) -> None:
    """SIGKILL one Ray worker process that runs a ScanWorker, once a scan has ended."""
    deadline = time.monotonic() + 60
    while not ended and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ScanWorker" in command:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
