"""Where a whole-head run spends its time, per method: the job's stages and the functions under them.

    .venv/bin/python benchmarks/profile_methods.py --methods res-srdiff,msp-sr [--samples 1] [--tag before]

The speed volume (a 181 x 217 x 181 MNI152 head, 4 mm slices, x4 back to 1 mm) is written to a
file and run through ``run_job`` (read, super-resolve, write: what ``mrisr run`` does) under
cProfile. Two views of the same run:

* stages: wall time between the progress reports of each stage (adaptation, sampling, ...);
* kinds of work: each function's own time (cProfile ``tottime``, which sums to the total),
  grouped by where it lives: ONNX Runtime, network and autograd kernels (torch), SciPy (resampling,
  filters), NumPy, file I/O (nibabel, SimpleITK, gzip), the backend's own Python, other Python.

Writes benchmarks/results/studies/profile/<tag>/results.{json,md}.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from inference_backend.data.datasets import SOURCE_CHECKOUT
from inference_backend.evaluation.cases import SPEED_SIZES, speed_case
from inference_backend.evaluation.report import write_document
from inference_backend.imaging.io import write_volume
from inference_backend.job import JobOptions
from inference_backend.pipeline import run_job
from inference_backend.progress import Progress

KINDS = (  # (kind, substrings of the function's file or name), first match wins
    ("autograd backward", ("run_backward",)),
    ("ONNX Runtime (the network at inference)", ("onnxruntime",)),
    ("torch kernels (network, optimiser)", ("torch", "_C.")),
    ("SciPy (resampling, filters)", ("scipy",)),
    ("file I/O", ("nibabel", "SimpleITK", "gzip", "zlib", "io.", "posix")),
    ("NumPy", ("numpy",)),
    ("backend Python", ("inference_backend",)),
)


def kind_of(function: tuple[str, int, str]) -> str:
    filename, _, name = function
    text = f"{filename}:{name}"
    for kind, keys in KINDS:
        if any(key in text for key in keys):
            return kind
    return "other Python"


class StageClock:
    """A progress sink: the wall time of each innermost stage, in the order they ran."""

    def __init__(self) -> None:
        self.times: dict[str, float] = defaultdict(float)
        self._stage, self._since = None, time.perf_counter()

    def __call__(self, fraction: float, stage: str, message: str) -> None:
        now = time.perf_counter()
        if stage != self._stage:
            if self._stage is not None:
                self.times[self._stage] += now - self._since
            self._stage, self._since = stage, now


def profile(method: str, samples: int, input_path: Path, out_dir: Path) -> dict:
    clock = StageClock()
    job = JobOptions(method=method, method_options={"kind": "bspline"} if method == "interpolation" else {}, scale=(1.0, 1.0, 4.0), samples=samples)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    run_job(input_path, out_dir / method, job, progress=Progress([clock]))
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats
    kinds: dict[str, float] = defaultdict(float)
    for function, (_, _, own, _, _) in stats.items():
        kinds[kind_of(function)] += own
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:12]
    return {
        "method": method,
        "samples": samples,
        "wall_s": round(wall, 1),
        "stages_s": {k: round(v, 2) for k, v in clock.times.items() if v >= 0.05},
        "kinds_s": {k: round(v, 2) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
        "top_functions": [{"function": f"{Path(f[0]).name}:{f[1]}({f[2]})", "calls": v[1], "own_s": round(v[2], 2)} for f, v in top],
    }


def markdown(rows: list[dict], tag: str, size: str) -> list[str]:
    shape = "x".join(map(str, SPEED_SIZES[size]))
    lines = [f"# Profile of one run ({tag})", "", f"A {shape} crop of MNI152 at 4 mm slices -> 1 mm, `run_job` under cProfile, 2-core CPU.", ""]
    for row in rows:
        lines += [f"## {row['method']} ({row['samples']} sample(s)): {row['wall_s']} s", "", "| stage | s |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in row["stages_s"].items()]
        lines += ["", "| kind of work (own time) | s |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in row["kinds_s"].items()]
        lines += ["", "| function | calls | own s |", "|---|---|---|"]
        lines += [f"| `{t['function']}` | {t['calls']} | {t['own_s']} |" for t in row["top_functions"]]
        lines.append("")
    lines.append(f"Reproduce: `.venv/bin/python benchmarks/profile_methods.py --methods {','.join(r['method'] for r in rows)} --size {size} --tag {tag}`.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="interpolation,res-srdiff")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--tag", default="profile")
    parser.add_argument("--size", choices=sorted(SPEED_SIZES), default="head", help="the speed volume: head (181x217x181) or half (128^3)")
    args = parser.parse_args()
    case = speed_case(SPEED_SIZES[args.size])
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        input_path = Path(scratch) / "head_4mm.nii.gz"
        write_volume(case.degraded, input_path)
        for method in args.methods.split(","):
            rows.append(profile(method, args.samples, input_path, Path(scratch)))
            print(json.dumps(rows[-1]), flush=True)
    write_document(SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "profile" / args.tag, {"rows": rows}, markdown(rows, args.tag, args.size))


if __name__ == "__main__":
    main()
