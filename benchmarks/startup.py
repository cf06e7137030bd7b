"""Start-up of the light commands: ``mrisr --help``, ``mrisr methods`` and an interpolation run
of a tiny volume, each as a whole process, against a bare ``python -c "import numpy"``.

    .venv/bin/python benchmarks/startup.py [--runs 15] [--checkout DIR] [--label NAME]

``--checkout`` times another checkout's code with this environment (``PYTHONPATH``), e.g. a
worktree of an earlier commit, for before-and-after figures. Median of ``--runs`` runs after
one warm-up. Writes benchmarks/results/studies/startup/<label>.json and results.md (every label so far).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from inference_backend.data.datasets import SOURCE_CHECKOUT
from inference_backend.evaluation.report import write_document
from inference_backend.imaging.io import write_volume
from inference_backend.imaging.volume import Grid, Volume

OUT = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "startup"


def commands(volume: Path, out: Path) -> dict[str, list[str]]:
    mrisr = [sys.executable, "-m", "inference_backend"]
    return {
        'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
        "mrisr --help": [*mrisr, "--help"],
        "mrisr methods": [*mrisr, "methods"],
        "mrisr run (interpolation, 32x32x12 -> x3)": [*mrisr, "run", str(volume), "--method", "interpolation", "--scale", "1,1,3",
                                                      "--out", str(out), "--overwrite", "--progress", "none"],  # fmt: skip
    }


def median_seconds(command: list[str], runs: int, environment: dict[str, str], checkout: Path) -> float:
    times = []
    for run in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, env=environment, cwd=checkout, capture_output=True, check=True)  # `-m` looks in the working folder first
        if run:  # the first run warms the file cache
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--checkout", type=Path, default=SOURCE_CHECKOUT)
    parser.add_argument("--label", default="now")
    args = parser.parse_args()
    environment = dict(os.environ, PYTHONPATH=str(args.checkout.resolve()))
    with tempfile.TemporaryDirectory() as folder:
        array = np.random.default_rng(0).normal(300, 40, (32, 32, 12)).astype(np.float32)
        volume = Path(folder) / "tiny.nii.gz"
        write_volume(Volume(array, Grid(array.shape, (1.0, 1.0, 3.0), (0.0, 0.0, 0.0), np.eye(3))), volume)
        seconds = {name: round(median_seconds(command, args.runs, environment, args.checkout.resolve()), 3) for name, command in commands(volume, Path(folder) / "out").items()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.label}.json").write_text(json.dumps({"label": args.label, "runs": args.runs, "median_s": seconds}, indent=2) + "\n")
    labels = [json.loads(path.read_text()) for path in sorted(OUT.glob("*.json")) if path.name != "results.json"]
    names = list(seconds)
    baseline = 'python -c "import numpy"'
    lines = ["# Start-up of the light commands", "", f"Median wall seconds of {args.runs} runs after a warm-up, each command a whole process, "
             "on a 2-core CPU; in brackets: times a bare `python -c \"import numpy\"`.", "",
             "| command | " + " | ".join(entry["label"] for entry in labels) + " |", "|---|" + "---|" * len(labels)]  # fmt: skip
    for name in names:
        cells = [f"{entry['median_s'][name]:.2f} s ({entry['median_s'][name] / entry['median_s'][baseline]:.1f}x)" for entry in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Reproduce: `.venv/bin/python benchmarks/startup.py --label now`; an earlier commit: "
              "`git worktree add /tmp/before <commit>` then `.venv/bin/python benchmarks/startup.py --checkout /tmp/before --label before`."]  # fmt: skip
    print(write_document(OUT, {"labels": labels}, lines))


if __name__ == "__main__":
    main()
