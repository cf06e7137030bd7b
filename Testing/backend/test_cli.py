"""The `mrisr` command line: outputs, report, bad input, progress lines and cancellation."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import REPO_ROOT, make_volume
from inference_backend.cli import main
from inference_backend.io import read_volume, write_volume
from inference_backend.target import target_grid
from inference_backend.volume import Grid, Volume


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_writes_result_and_report(tmp_path, volume_file, capsys):
    out = tmp_path / "out"
    assert main(["run", str(volume_file), "--scale", "1,1,3", "--out", str(out), "--progress", "none"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "scan_sr.nii.gz"]
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
    main(["run", str(path), "--scale", "2,1,1", "--out", str(out), "--output-dtype", "input", "--progress", "none"])
    assert read_volume(out / "u8_sr.nii.gz").array.dtype == np.uint8


def test_lesion_mask_writes_lesion_filled_volume(tmp_path, volume_file):
    source = read_volume(volume_file)
    mask = np.zeros(source.grid.size, np.uint8)
    mask[8:12, 7:11, 5:7] = 1
    mask_path = tmp_path / "lesion.nrrd"
    write_volume(Volume(mask, source.grid), mask_path)
    out = tmp_path / "out"
    code = main(["run", str(volume_file), "--scale", "1,1,2", "--out", str(out), "--lesion-mask", str(mask_path), "--progress", "none"])
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


# --- bad input: one line on stderr, non-zero exit, nothing written, input untouched ---------------


def write_sitk(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


def bad_inputs(tmp: Path, good: Path) -> dict[str, tuple[list[str], int, str]]:
    corrupt = tmp / "corrupt.nii.gz"
    corrupt.write_bytes(os.urandom(2000))
    truncated = tmp / "truncated.nii.gz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    raw = tmp / "raw.nii"
    sitk.WriteImage(sitk.ReadImage(str(good)), str(raw))
    truncated_raw = tmp / "truncated_raw.nii"
    truncated_raw.write_bytes(raw.read_bytes()[:-100])
    text = tmp / "notes.txt"
    text.write_text("not an image")
    flat = sitk.GetImageFromArray(np.ones((10, 12), np.float32))
    series = sitk.JoinSeries([sitk.GetImageFromArray(np.random.rand(5, 6, 7).astype(np.float32))] * 3)
    rgb = sitk.GetImageFromArray(np.random.randint(0, 255, (5, 6, 7, 3), np.uint8), isVector=True)
    zero = make_volume()
    zero.array[:] = 0
    nan = make_volume()
    nan.array[1, 2, 3] = np.nan
    for name, volume in {"zero.nii.gz": zero, "nan.nii.gz": nan}.items():
        write_volume(volume, tmp / name)
    other_grid = Volume(np.ones((5, 5, 5), np.uint8), Grid((5, 5, 5), (1, 1, 1), (0, 0, 0), np.eye(3)))
    write_volume(other_grid, tmp / "mask_other.nii.gz")
    run = ["--out", str(tmp / "out"), "--progress", "none"]
    scale = ["--scale", "1,1,2"]
    return {
        "missing": (["run", str(tmp / "nope.nii.gz"), *scale, *run], 2, "not found"),
        "corrupt": (["run", str(corrupt), *scale, *run], 2, "cannot be read"),
        "truncated": (["run", str(truncated), *scale, *run], 2, "corrupt or truncated"),
        "truncated-raw": (["run", str(truncated_raw), *scale, *run], 2, "truncated"),
        "extension": (["run", str(text), *scale, *run], 2, "unsupported file type"),
        "2d": (["run", str(write_sitk(flat, tmp / "flat.nii.gz")), *scale, *run], 2, "2D image"),
        "4d": (["run", str(write_sitk(series, tmp / "series.nii.gz")), *scale, *run], 2, "4D"),
        "rgb": (["run", str(write_sitk(rgb, tmp / "rgb.nrrd")), *scale, *run], 2, "RGB"),
        "all-zero": (["run", str(tmp / "zero.nii.gz"), *scale, *run], 2, "empty"),
        "nan": (["run", str(tmp / "nan.nii.gz"), *scale, *run], 2, "NaN/Inf"),
        "scale-zero": (["run", str(good), "--scale", "1,0,2", *run], 2, "positive"),
        "scale-below-one": (["run", str(good), "--scale", "1,0.5,2", *run], 2, "below 1"),
        "budget": (["run", str(good), "--scale", "4,4,4", "--max-voxels", "1000", *run], 4, "budget"),
        "mask-grid": (["run", str(good), *scale, "--lesion-mask", str(tmp / "mask_other.nii.gz"), *run], 2, "grid"),
        "no-gpu": (["run", str(good), *scale, "--method", "interpolation", "--device", "cuda:7", *run], 4, "GPU"),
        "method": (["run", str(good), *scale, "--method", "magic", *run], 2, "unknown method"),
        "option": (["run", str(good), *scale, "--opt", "kind=cubicle", *run], 2, "kind"),
    }


BAD_INPUT_NAMES = ["missing", "corrupt", "truncated", "truncated-raw", "extension", "2d", "4d", "rgb", "all-zero", "nan",
                   "scale-zero", "scale-below-one", "budget", "mask-grid", "no-gpu", "method", "option"]  # fmt: skip


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
def test_bad_input_gives_one_clear_line(tmp_path, volume_file, capsys, name):
    args, code, message = bad_inputs(tmp_path, volume_file)[name]
    before = digest(volume_file)
    assert main(args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrisr: error:") and message in err[0], err
    assert not (tmp_path / "out").exists()
    assert digest(volume_file) == before


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
    process = mrisr("run", str(tmp_path / "absent.nii"), "--scale", "2", "--out", str(tmp_path / "o"))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert err.strip() == f"mrisr: error: {tmp_path / 'absent.nii'}: file not found"


def test_jsonl_progress_lines_parse_and_end_at_one(tmp_path, volume_file):
    process = mrisr("run", str(volume_file), "--scale", "1,1,4", "--out", str(tmp_path / "o"), "--progress", "jsonl")
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
    process = mrisr("run", str(big), "--scale", "2,2,4", "--opt", "kind=lanczos", "--out", str(out), "--progress", "jsonl")
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
