"""Batch throughput on this machine: scans per hour for 24 small real-derived volumes, as a loop
of `mrisr run` (a process and a model load per scan) and as `mrisr batch` with 1 and 2 local
workers and 1 and 2 Ray actors (on a local Ray instance), for interpolation and Res-SRDiff.

    .venv/bin/python benchmarks/batch_throughput.py [--scans 24]

The volumes: 64 x 64 x 48 blocks of four development scans (chris_t1, seg3D_MR, spm152,
stroke_T1; six places each), averaged into 4 mm slices, super-resolved back (--scale 1,1,4).
Res-SRDiff runs with adapt_steps=0: with its default 200 adaptation steps each scan costs ~25 s
of adaptation whatever the engine, which would hide what the engine changes (what a scan's
start-up and model load cost). Writes benchmarks/results/batch/throughput/results.{json,md}.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from inference_backend.data.datasets import shared_data_dir
from inference_backend.evaluation.report import write_results
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.volume import Volume

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "batch" / "throughput"
SCANS = ("chris_t1", "seg3D_MR", "spm152", "stroke_T1")
BLOCK = (64, 64, 48)
METHODS = {"interpolation": [], "res-srdiff": ["--method", "res-srdiff", "--opt", "adapt_steps=0"]}
ENGINES = {"loop of mrisr run": None, "batch, 1 worker": ["--workers", "1"], "batch, 2 workers": ["--workers", "2"],
           "batch, Ray, 1 actor": ["--engine", "ray", "--workers", "1"], "batch, Ray, 2 actors": ["--engine", "ray", "--workers", "2"]}  # fmt: skip


def thick_blocks(folder: Path, count: int) -> list[Path]:
    """``count`` thick-slice blocks of the development scans (4 slices averaged: 4 mm)."""
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs the development data (../shared/data)")
    paths = []
    for index in range(count):
        volume = read_volume(data / "real" / f"{SCANS[index % len(SCANS)]}.nii.gz")
        array = volume.array.astype(np.float32)
        place = index // len(SCANS)
        start = [(n - b) * (1 + place) // (2 + count // len(SCANS)) for n, b in zip(array.shape, BLOCK)]
        block = volume.crop(tuple(start), tuple(s + b for s, b in zip(start, BLOCK)))
        thick = block.array.reshape(BLOCK[0], BLOCK[1], -1, 4).mean(axis=3)
        spacing = (*block.grid.spacing[:2], block.grid.spacing[2] * 4)
        grid = block.grid.with_spacing(spacing)
        paths.append(folder / f"scan{index:02d}.nii.gz")
        write_volume(Volume(thick, grid), paths[-1])
    return paths


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=24)
    args = parser.parse_args()
    mrisr = [sys.executable, "-m", "inference_backend"]
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        (folder / "src").mkdir()
        sources = thick_blocks(folder / "src", args.scans)
        for method, method_arguments in METHODS.items():
            loop_seconds = None
            for engine, engine_arguments in ENGINES.items():
                out = folder / f"{method}-{len(rows)}"
                if engine_arguments is None:
                    seconds = sum(timed([*mrisr, "run", str(p), "--scale", "1,1,4", *method_arguments, "--out", str(out / p.stem),
                                         "--progress", "none"]) for p in sources)  # fmt: skip
                    loop_seconds = seconds
                else:
                    seconds = timed([*mrisr, "batch", str(folder / "src"), "--out", str(out), "--scale", "1,1,4", *method_arguments,
                                     *engine_arguments, "--progress", "none"])  # fmt: skip
                rows.append({
                    "method": method, "engine": engine, "scans": len(sources), "wall (s)": round(seconds, 1),
                    "s per scan": round(seconds / len(sources), 2), "scans per hour": round(3600 * len(sources) / seconds),
                    "saved per scan vs the loop (s)": round((loop_seconds - seconds) / len(sources), 2),
                })  # fmt: skip
                print(rows[-1], flush=True)
    description = (
        f"{args.scans} thick-slice blocks (64 x 64 x 12 at 4 mm) of chris_t1, seg3D_MR, spm152 and stroke_T1, "
        "--scale 1,1,4, on this 2-core CPU, nothing else running. Wall time of the whole command, start-up included: "
        "the loop starts one process and loads the model per scan; a batch worker does both once. Res-SRDiff with "
        "adapt_steps=0 (the default 200 adaptation steps add ~25 s per scan whatever the engine)."
    )
    footer = ["Reproduce: `.venv/bin/python benchmarks/batch_throughput.py` (about 6 minutes)."]
    print(write_results(OUT, "Batch throughput", description, rows, {}, footer))


if __name__ == "__main__":
    main()
