"""The `mrisr` command line: outputs, report, progress lines, cancellation (bad input: test_bad_inputs.py)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, make_volume
from inference_backend.cli import main
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.target import target_grid
from inference_backend.imaging.volume import Volume


def test_run_writes_result_and_report(tmp_path, volume_file, capsys):
    out = tmp_path / "out"
    assert main(["run", str(volume_file), "--method", "interpolation", "--scale", "1,1,3", "--out", str(out), "--progress", "none"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "scan_consistency.nii.gz", "scan_sr.nii.gz"]
    result, source = read_volume(out / "scan_sr.nii.gz"), read_volume(volume_file)
    assert result.grid.matches(target_grid(source.grid, scale=(1, 1, 3)), tolerance_mm=1e-4)
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "interpolation" and report["options"] == {"kind": "bspline"}
    assert report["output_grid"]["size"] == list(result.grid.size)
    assert report["device"] == "cpu" and report["wall_time_s"] > 0 and report["peak_memory_mb"]["cpu_rss"] > 0
    assert {"torch", "numpy", "SimpleITK"} <= set(report["versions"])


def test_output_dtype_input_keeps_integer_type(tmp_path):
    path = tmp_path / "u8.nrrd"
    write_volume(make_volume(dtype=np.uint8), path)
    out = tmp_path / "out"
    main(["run", str(path), "--method", "interpolation", "--scale", "2,1,1", "--out", str(out), "--output-dtype", "input", "--progress", "none"])
    assert read_volume(out / "u8_sr.nii.gz").array.dtype == np.uint8


def test_lesion_mask_writes_lesion_filled_volume(tmp_path, volume_file):
    source = read_volume(volume_file)
    mask = np.zeros(source.grid.size, np.uint8)
    mask[8:12, 7:11, 5:7] = 1
    mask_path = tmp_path / "lesion.nrrd"
    write_volume(Volume(mask, source.grid), mask_path)
    out = tmp_path / "out"
    code = main(["run", str(volume_file), "--method", "interpolation", "--scale", "1,1,2", "--out", str(out), "--lesion-mask", str(mask_path), "--progress", "none"])
    assert code == 0
    filled, sr = read_volume(out / "scan_lesion_filled.nii.gz"), read_volume(out / "scan_sr.nii.gz")
    assert filled.grid.matches(sr.grid, tolerance_mm=1e-6)
    changed = filled.array != sr.array
    assert changed.any() and changed.sum() <= mask.sum() * 2 * 1.5  # only around the up-sampled mask


def test_methods_lists_interpolation(capsys):
    assert main(["methods", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    interpolation = next(m for m in listing if m["name"] == "interpolation")
    assert interpolation["weights_present"] and interpolation["options"][0]["choices"] == ["linear", "bspline", "lanczos", "zero-fill"]


# --- the real process: exit status, JSON progress lines, signals -------------------------------


def mrisr(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "inference_backend", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_subprocess_error_has_no_traceback(tmp_path):
    process = mrisr("run", str(tmp_path / "absent.nii"), "--method", "interpolation", "--scale", "2", "--out", str(tmp_path / "o"))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert err.strip() == f"mrisr: error: {tmp_path / 'absent.nii'}: file not found"


def test_jsonl_progress_lines_parse_and_end_at_one(tmp_path, volume_file):
    process = mrisr("run", str(volume_file), "--method", "interpolation", "--scale", "1,1,4", "--out", str(tmp_path / "o"), "--progress", "jsonl")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    fractions = [line["fraction"] for line in lines]
    assert len(lines) > 5 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"read", "super-resolve", "write", "done"} <= {line["stage"] for line in lines}
    assert all(set(line) == {"fraction", "stage", "message"} for line in lines)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_cancels_cleanly_and_leaves_no_files(tmp_path, sig):
    big = tmp_path / "big.nii.gz"
    write_volume(make_volume(shape=(128, 128, 48), spacing=(1, 1, 4)), big)
    out = tmp_path / "out"
    process = mrisr("run", str(big), "--method", "interpolation", "--scale", "2,2,4", "--opt", "kind=lanczos", "--out", str(out), "--progress", "jsonl")
    for line in process.stdout:
        if json.loads(line)["stage"] == "super-resolve":
            break
    time.sleep(0.2)
    process.send_signal(sig)
    rest, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "cancelled" in err and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big.nii.gz"]


def catches(pid: int, sig: int) -> bool:
    """Whether the process has a handler for ``sig`` (``SigCgt`` in /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught >> (sig - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's state in /proc")
@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT], [signal.SIGINT, signal.SIGINT]], ids=["TERM", "INT", "INT-INT"])
def test_a_signal_while_starting_stops_cleanly(tmp_path, volume_file, signals):
    """Handlers come first in main, before torch loads: a signal in the first seconds (a second
    Ctrl-C too) gives exit 130, the JSON error line, no traceback, no folder."""
    out = tmp_path / "out"
    process = mrisr("run", str(volume_file), "--method", "interpolation", "--scale", "2", "--out", str(out), "--progress", "jsonl")
    deadline = time.monotonic() + 30
    while not catches(process.pid, signal.SIGTERM) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert "libtorch" not in Path(f"/proc/{process.pid}/maps").read_text()  # still loading: the handlers came first
    for sig in signals:
        process.send_signal(sig)
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "mrisr: error: cancelled: no output was written"
    assert [json.loads(line) for line in stdout.splitlines()] == [{"error": "cancelled: no output was written", "exit_code": 130}]
    assert not out.exists()


def test_a_closed_stdout_ends_quietly():
    """``mrisr methods | head -1``: the reader leaves early; no error, the status a SIGPIPE gives."""
    process = mrisr("methods")
    process.stdout.close()  # gone before the first line arrives
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141
    assert stderr == ""


def test_usage_errors_give_a_json_line_in_jsonl_mode(volume_file, capsys):
    assert main(["run", str(volume_file), "--method", "interpolation", "--scale", "2", "--progress", "jsonl"]) == 2
    captured = capsys.readouterr()
    message = "the following arguments are required: --out (see `mrisr run --help`)"
    assert [json.loads(line) for line in captured.out.splitlines()] == [{"error": message, "exit_code": 2}]
    assert captured.err.strip() == f"mrisr: error: {message}"


def test_the_run_path_needs_no_unix_only_module(tmp_path, volume_file):
    """Windows has no ``resource``: a run there works and says its peak memory is unknown."""
    script = (
        "import sys; sys.modules['resource'] = None\n"
        "from inference_backend.cli import main\n"
        f"sys.exit(main(['run', {str(volume_file)!r}, '--scale', '1,1,2', '--out', {str(tmp_path / 'out')!r}, '--progress', 'none']))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["peak_memory_mb"] == {"cpu_rss": None}


def test_devices_lists_what_this_python_can_use(capsys):
    assert main(["devices", "--json"]) == 0
    devices = json.loads(capsys.readouterr().out)
    assert devices[0]["id"] == "cpu" and {"name", "total_memory_gb", "free_memory_gb"} <= set(devices[0])


def test_job_options_round_trip_through_their_command_line():
    """The Slicer module's subprocess runner and the batch workers pass a job as arguments."""
    from inference_backend.cli import build_parser
    from inference_backend.job import JobOptions

    options = JobOptions(
        method="res-srdiff", method_options={"adapt_steps": "5", "sampler": "mean"}, spacing=(0.9, 0.9, 1.25), samples=3,
        seed=7, device="cpu", max_voxels=10**7, lesion_fill="nawm-mean", dilate_mask_mm=1.5,
    )
    args = build_parser().parse_args(["run", "in.nii.gz", "--out", "o", *options.arguments()])
    assert JobOptions.from_arguments(args) == options
    with pytest.raises(ValueError, match="no command line"):
        JobOptions(scale=(1, 1, 2), keep_samples=True).arguments()


def test_every_command_the_readme_shows_parses():
    """The README's examples are commands users paste: each one must be accepted as written."""
    import re
    import shlex

    from inference_backend.cli import build_parser

    blocks = re.findall(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.DOTALL)
    lines = [line.split("#")[0] for block in blocks for line in block.splitlines() if line.startswith("mrisr ")]
    commands = [part.strip() for line in lines for part in line.split(";") if part.strip()]
    assert len(commands) >= 8
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "mrisr", command
        build_parser().parse_args(words[1:])  # argparse exits (SystemExit) on anything it does not accept
