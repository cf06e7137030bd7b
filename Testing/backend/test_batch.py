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
    assert set(report["sidecars"]) == {"sr", "consistency"}  # listed with its SHA-256 like every output


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


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def batch_of(source: Path, out: Path, *extra: str) -> list[str]:
    return ["batch", str(source), "--method", "interpolation", "--out", str(out), "--scale", "1,1,2", "--progress", "none", *extra]


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ("scans/a.nii.gz\t../../escaped", "no folder below --out"),
        ("scans/a.nii.gz\t/tmp/absolute", "no folder below --out"),
        ("scans/a.nii.gz\t.mrisr-lock", "no folder below --out"),
    ],
    ids=["dot-dot", "absolute", "hidden"],
)
def test_a_manifest_id_cannot_lead_outside_the_output_root(tmp_path, capfd, row, why):
    write(tmp_path / "scans" / "a.nii.gz")
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"input\tid\n{row}\n")
    before = snapshot(tmp_path)
    capfd.readouterr()
    assert main(batch_of(manifest, tmp_path / "work" / "out")) == 2
    assert why in capfd.readouterr().err
    assert snapshot(tmp_path) == before and not (tmp_path / "work").exists()


def test_an_input_outside_the_manifests_folder_writes_below_the_root(tmp_path):
    write(tmp_path / "scans" / "a.nii.gz")
    manifest = tmp_path / "lists" / "m.tsv"
    manifest.parent.mkdir()
    manifest.write_text("input\n../scans/a.nii.gz\n")
    out = tmp_path / "lists" / "out"
    assert main(batch_of(manifest, out)) == 0
    assert set(summary(out)) == {"a"} and (out / "a" / "a_sr.nii.gz").is_file()
    assert sorted(path.name for path in (tmp_path / "scans").iterdir()) == ["a.nii.gz"]


def test_ids_that_name_one_folder_are_one_id(tmp_path, capfd):
    write(tmp_path / "a.nii.gz", 1)
    write(tmp_path / "b.nii.gz", 2)
    write(tmp_path / "c.nii.gz", 3)
    manifest = tmp_path / "m.tsv"
    manifest.write_text("input\tid\na.nii.gz\tx\nb.nii.gz\tx/\nc.nii.gz\t./x\n")
    capfd.readouterr()
    assert main(batch_of(manifest, tmp_path / "out")) == 2
    assert "two scans would write to the same place 'x'" in capfd.readouterr().err


def test_a_folder_holding_results_the_batch_did_not_make_is_kept(tmp_path):
    """An id naming an earlier `mrisr run` folder: that run's results stay unless --overwrite."""
    source = write(tmp_path / "a.nii.gz", 1)
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path / "other.nii.gz", 2)), "--method", "interpolation", "--scale", "2", "--out", str(out / "x"),
                 "--progress", "none"]) == 0  # fmt: skip
    earlier = snapshot(out / "x")
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"input\tid\n{source.name}\tx\n")
    assert main(batch_of(manifest, out)) == 5
    assert summary(out)["x"]["exit_code"] == 2 and "add --overwrite" in summary(out)["x"]["message"]
    assert snapshot(out / "x") == earlier
    assert main(batch_of(manifest, out, "--overwrite")) == 0
    assert (out / "x" / "a_sr.nii.gz").is_file() and not (out / "x" / "other_sr.nii.gz").exists()
    assert main(batch_of(manifest, out)) == 0  # its own result: up to date, and it may redo it
    assert summary(out)["x"]["status"] == "up to date"


def test_a_batch_never_writes_over_its_inputs(tmp_path, capfd):
    source = bids_dataset(tmp_path / "ds")
    before = snapshot(source)
    capfd.readouterr()
    assert main(["batch", str(source), "--method", "interpolation", "--out", str(source), "--scale", "2", "--progress", "none"]) == 2
    assert "is the source itself" in capfd.readouterr().err and snapshot(source) == before
    (tmp_path / "out").mkdir()
    manifest = tmp_path / "out" / "summary.tsv"  # a manifest where the batch writes its summary
    write(tmp_path / "a.nii.gz")
    manifest.write_text("input\n../a.nii.gz\n")
    assert main(batch_of(manifest, tmp_path / "out")) == 2
    assert "would replace its input" in capfd.readouterr().err and manifest.read_text() == "input\n../a.nii.gz\n"


def test_a_manifests_bad_values_fail_their_row_only(tmp_path):
    for name in ("a", "b", "c", "d"):
        write(tmp_path / f"{name}.nii.gz")
    manifest = tmp_path / "m.csv"
    manifest.write_text("input,samples,seed,dilate_mask\na.nii.gz,abc,,\nb.nii.gz,,1.5,\nc.nii.gz,,,xx\nd.nii.gz,,,\n")
    assert main(batch_of(manifest, tmp_path / "out")) == 5
    rows = summary(tmp_path / "out")
    assert {scan: (row["status"], row["exit_code"]) for scan, row in rows.items()} == {
        "a": ("failed", 2), "b": ("failed", 2), "c": ("failed", 2), "d": ("done", 0)
    }  # fmt: skip
    assert "samples 'abc' is not a whole number" in rows["a"]["message"]


def test_a_manifest_that_is_not_utf8_is_one_clear_error(tmp_path, capfd):
    write(tmp_path / "é.nii.gz")
    (tmp_path / "m.tsv").write_bytes("input\né.nii.gz\n".encode("latin-1"))
    capfd.readouterr()
    assert main(batch_of(tmp_path / "m.tsv", tmp_path / "out")) == 2
    assert "is not UTF-8 text" in capfd.readouterr().err


def test_a_full_disk_stops_the_batch_with_nothing_half_written(tmp_path, monkeypatch, capfd):
    import errno

    write(tmp_path / "src" / "a.nii.gz")
    write_text = Path.write_text

    def full(path, *args, **kwargs):
        if path.name == ".batch.json.tmp":
            write_text(path, "{")
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    capfd.readouterr()
    assert main(batch_of(tmp_path / "src", tmp_path / "out")) == 4
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on device" in err[0]
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".mrisr")]


def test_a_second_batch_into_the_same_root_is_refused_while_the_first_runs(tmp_path, capfd):
    write(tmp_path / "src" / "a.nii.gz")
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (out / ".mrisr-lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        capfd.readouterr()
        assert main(batch_of(tmp_path / "src", out)) == 2
        assert f"is in use by another run (pid {holder.pid}" in capfd.readouterr().err
        assert sorted(path.name for path in out.iterdir()) == [".mrisr-lock"]
    finally:
        holder.kill()
        holder.wait()
    assert main(batch_of(tmp_path / "src", out)) == 0  # its owner gone: taken over


def test_scan_options_override_the_batch(tmp_path):
    base = JobOptions(method="interpolation", scale=(1, 1, 4), method_options={"kind": "bspline"})
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
    task = ScanTask("s", source, tmp_path / "out" / "s", JobOptions(method="interpolation", scale=(1, 1, 2), method_options={"kind": "linear"}))
    first = process_scan(task)
    assert first.status == "done", first.message
    report = task.out_dir / "report.json"
    written = report.stat().st_mtime_ns
    from inference_backend.outputs import LOCK_NAME, Owner

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    lock = task.out_dir / LOCK_NAME  # the lost worker died between committing the result and removing its lock
    lock.write_text(json.dumps({"pid": int(gone.stdout), "host": Owner.current().host}))
    again = process_scan(task)
    assert (again.status, again.exit_code) == ("done", 0), again.message
    assert report.stat().st_mtime_ns == written  # not run a second time
    assert not lock.exists()  # the dead worker's lock removed, nothing left behind
    assert sorted(Path(p).name for p in again.outputs) == sorted(Path(p).name for p in first.outputs)
    other = process_scan(ScanTask("s", source, task.out_dir, JobOptions(method="interpolation", scale=(1, 1, 2), method_options={"kind": "nearest"})))
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
    settings = BatchSettings(tmp_path / "out", JobOptions(method="interpolation", scale=(2, 2, 4), method_options={"kind": "linear"}))
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


def test_a_batch_killed_outright_leaves_no_worker_behind(tmp_path):
    for index in range(4):
        write(tmp_path / "src" / f"s{index}.nii.gz", index, shape=(48, 48, 16), spacing=(1.0, 1.0, 4.0))
    command = [sys.executable, "-m", "inference_backend", "batch", str(tmp_path / "src"), "--out", str(tmp_path / "out"),
               "--scale", "2,2,4", "--method", "interpolation", "--opt", "kind=lanczos", "--workers", "2", "--progress", "jsonl"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT)
    assert json.loads(process.stdout.readline())["event"] == "scan"  # the workers are up
    workers = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()]
    assert workers
    process.kill()
    process.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [pid for pid in workers if running(pid)]:
        time.sleep(0.2)
    assert not [pid for pid in workers if running(pid)]
    assert process.stdout.read() is not None  # the pipe closed: no process holds it any more


def running(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
