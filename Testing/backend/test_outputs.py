"""The output folder: earlier results are never lost, a folder holds exactly one run's outputs
(each listed in report.json with its SHA-256), one run at a time, and nothing of a killed run
outlives the next one."""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from conftest import REPO_ROOT, make_volume
from inference_backend.cli import main
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.volume import Volume
from inference_backend.job import JobOptions
from inference_backend.outputs import LOCK_NAME, STAGING_PREFIX, Owner, output_lock
from inference_backend.pipeline import run_job
from inference_backend.progress import Progress


def run(source: Path, out: Path, *extra: str) -> int:
    return main(["run", str(source), "--method", "interpolation", "--scale", "1,1,2", "--out", str(out), "--progress", "none", *extra])


def files(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` (hidden ones too) with its SHA-256."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_report_lists_the_folder(out: Path, others: tuple[str, ...] = ()) -> dict:
    """The report lists exactly the output files in ``out`` (besides itself and ``others``),
    each with its size and SHA-256; returns the report."""
    report = json.loads((out / "report.json").read_text())
    listed = {record["file"]: record for record in report["outputs"].values()}
    assert sorted(p.name for p in out.iterdir()) == sorted([*listed, "report.json", *others])
    for name, record in listed.items():
        data = (out / name).read_bytes()
        assert record == {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert np.isfinite(read_volume(out / name).array).all()
    return report


def lesion_mask(tmp_path: Path, source: Path) -> Path:
    grid = read_volume(source).grid
    mask = np.zeros(grid.size, np.uint8)
    mask[8:12, 7:11, 5:7] = 1
    path = tmp_path / "lesion.nrrd"
    write_volume(Volume(mask, grid), path)
    return path


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_run_is_refused_and_the_first_results_stay(tmp_path, volume_file, capsys):
    out = tmp_path / "out"
    assert run(volume_file, out) == 0
    first = files(out)
    capsys.readouterr()
    assert run(volume_file, out, "--opt", "kind=linear") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mrisr: error: --out {out} already holds results (report.json, scan_consistency.nii.gz, scan_sr.nii.gz); add --overwrite "
                   "to replace them, or choose another folder"]  # fmt: skip
    assert files(out) == first
    assert_report_lists_the_folder(out)


def test_overwrite_replaces_every_output_of_the_earlier_run(tmp_path, volume_file):
    """A lesion-filled NIfTI run, then a plain NRRD run: the old files do not stay beside the new
    ones. Files that are no run's output (the user's notes, an input) are never removed, nor is
    anything a tampered report points to outside the folder."""
    out = tmp_path / "out"
    assert run(volume_file, out, "--lesion-mask", str(lesion_mask(tmp_path, volume_file))) == 0
    assert sorted(files(out)) == ["report.json", "scan_consistency.nii.gz", "scan_lesion_filled.nii.gz", "scan_sr.nii.gz"]
    (out / "notes.txt").write_text("the user's own")
    outside = tmp_path / "outside.txt"
    outside.write_text("not an output")
    report = json.loads((out / "report.json").read_text())
    report["outputs"]["extra"] = "../outside.txt"
    (out / "report.json").write_text(json.dumps(report))
    assert run(volume_file, out, "--output-format", "nrrd", "--overwrite") == 0
    assert_report_lists_the_folder(out, others=("notes.txt",))
    assert sorted(files(out)) == ["notes.txt", "report.json", "scan_consistency.nrrd", "scan_sr.nrrd"]
    assert outside.read_text() == "not an output"
    # an earlier output used as the input is never removed, though the report lists it
    assert run(out / "scan_sr.nrrd", out, "--overwrite") == 0
    assert sorted(files(out)) == ["notes.txt", "report.json", "scan_sr.nrrd", "scan_sr_consistency.nii.gz", "scan_sr_sr.nii.gz"]


def test_a_folder_in_use_is_refused_and_a_dead_runs_lock_taken_over(tmp_path, volume_file, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out):  # a live run (this process) holds the folder
        assert run(volume_file, out) == 2
        assert files(out) == {LOCK_NAME: files(out)[LOCK_NAME]}
    assert not (out / LOCK_NAME).exists()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "another-host"}))
    assert run(volume_file, out) == 2  # another host's run cannot be proven dead
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"mrisr: error: --out {out} is in use by another run (pid 1 on another-host); wait for it to "
                       "finish, or choose another folder")  # fmt: skip
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": Owner.current().host}))
    assert run(volume_file, out) == 0  # a dead run's lock is taken over and released
    assert_report_lists_the_folder(out)


def test_final_progress_comes_after_the_files_are_in_place(tmp_path, volume_file):
    out = tmp_path / "out"
    seen: list[tuple[float, list[str]]] = []
    progress = Progress([lambda fraction, stage, message: seen.append((fraction, sorted(files(out)) if out.exists() else []))])
    run_job(volume_file, out, JobOptions(scale=(1, 1, 2)), progress=progress)
    assert [fraction for fraction, _ in seen].count(1.0) == 1 and seen[-1][0] == 1.0
    assert seen[-1][1] == ["report.json", "scan_consistency.nii.gz", "scan_sr.nii.gz"]  # the lock is gone too
    assert all("report.json" not in listing for fraction, listing in seen[:-1])


def test_a_dead_runs_staging_is_removed_and_never_taken(tmp_path, volume_file):
    """Staging folders name their owner: a dead one of this host is removed; a live one, another
    host's, and one without an owner (an older version's) are left alone."""
    out = tmp_path / "out"
    me, pid = Owner.current(), dead_pid()
    dead = out / f"{STAGING_PREFIX}{me.host}-{pid}-deadbeef"
    dead.mkdir(parents=True)
    (dead / "scan_sr.nii.gz").write_bytes(volume_file.read_bytes()[:100])  # what a SIGKILL mid-write leaves
    (dead / "report.json").write_text(json.dumps({"outputs": {"sr": {"file": "scan_sr.nii.gz"}}}))
    kept = [out / f"{STAGING_PREFIX}{name}" for name in (f"{me.host}-{me.pid}-livelive", f"elsewhere-{pid}-foreign0", "x8k2q")]
    for folder in kept:
        folder.mkdir()
    assert run(volume_file, out) == 0
    assert not dead.exists() and all(folder.is_dir() for folder in kept)
    report = assert_report_lists_the_folder(out, others=tuple(folder.name for folder in kept))
    assert report["outputs"]["sr"]["bytes"] > 100


def test_a_killed_run_leaves_nothing_the_next_run_keeps(tmp_path):
    """SIGKILL while the outputs are being written leaves the lock and a staging folder with a
    partial file; the next run into the folder removes both and writes a complete result."""
    source = tmp_path / "scan.nii.gz"
    write_volume(make_volume(shape=(64, 64, 32), spacing=(1, 1, 2)), source)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "inference_backend", "run", str(source), "--scale", "2", "--out", str(out)]
    process = subprocess.Popen([*command, "--progress", "jsonl"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if json.loads(line)["stage"] == "write":
            break
    time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    left = sorted(p.name for p in out.iterdir())
    assert left[0] == LOCK_NAME and left[1].startswith(STAGING_PREFIX) and len(left) == 2, left
    assert run(source, out) == 0
    assert_report_lists_the_folder(out)
