"""Soak check: back-to-back `mrisr run`s with SIGTERM and SIGKILL at random moments, all into
one output root; afterwards no completed result is corrupt or lost, and nothing partial or
locked outlives the next run into its folder.

    .venv/bin/python benchmarks/soak.py [--runs 200] [--workers 3] [--seed 0] [--root DIR]

Each run is the interpolation method on a tiny volume (one of three: NIfTI, NRRD, oblique), in
its own subfolder of the root, except three in every fifteen, which go together into one of
three shared folders with --overwrite, so that runs meet the folder lock and replace each
other. Each run's fate is drawn: left to finish, SIGTERM or SIGKILL, sent after a random delay
from the start (most land while Python starts) or at a progress event (reading,
super-resolving, writing, done), then checked:

* exit 0: its report lists every output with its size and SHA-256; the files must match, read
  back finite, and be the only outputs in the folder (a shared folder's may have been replaced
  since by a later run, as --overwrite asks);
* exit 130 (cancelled): exactly one stderr line and the JSON error line, no folder left;
* killed: whatever it left (a lock, a staging folder) must be gone after one more run into its
  folder (the sweep), which must succeed; no lock and no `.mrisr-partial-*` may remain anywhere.

Also counted: SIGTERMs that arrived before Python ran main (the default action ends the process:
nothing can be written then), runs refused because their folder was in use, tracebacks (must
be 0), and whether the inputs changed (must not).
Writes benchmarks/results/studies/soak/results.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference_backend.data.datasets import SOURCE_CHECKOUT
from inference_backend.evaluation.report import markdown_table, write_results
from inference_backend.evaluation.soak_checks import check_folder, digests, leftovers, make_inputs

STAGES = ("read", "super-resolve", "write", "done")
CANCELLED = "mrisr: error: cancelled: no output was written"


@dataclass
class Run:
    """One planned run and what became of it."""

    index: int
    source: Path
    folder: Path
    shared: bool
    fate: str  # "finish", "term" or "kill"
    delay_s: float | None = None  # the signal after this long, or
    at_stage: str | None = None  # at the first progress line of this stage
    returncode: int | None = None
    stderr: str = ""
    last_line: dict = field(default_factory=dict)
    signalled_at: str | None = None  # the stage of the last progress line seen when the signal went
    started: float = 0.0
    ended: float = 0.0

    @property
    def outcome(self) -> str:
        if self.returncode == 0:
            return "completed"
        if self.returncode == 130:
            clean = self.stderr.strip() == CANCELLED and self.last_line.get("exit_code") == 130
            return "cancelled" if clean else "unclean cancel"
        if self.returncode == -signal.SIGKILL:
            return "killed"
        if self.returncode == -signal.SIGTERM:
            return "terminated while Python started"
        if self.returncode == 2 and "is in use by another run" in self.stderr:
            return "refused: folder in use"
        return "unexpected"


def plan(count: int, inputs: list[Path], root: Path, rng: random.Random) -> list[Run]:
    runs = []
    for index in range(count):
        shared = index % 15 < 3
        folder = root / (f"shared-{index // 15 % 3}" if shared else f"run-{index:03d}")
        fate = rng.choices(["finish", "term", "kill"], weights=[0.5, 0.3, 0.2])[0]
        run = Run(index, rng.choice(inputs), folder, shared, fate)
        if fate != "finish" and rng.random() < 0.5:
            run.delay_s = rng.uniform(0.0, 3.0)
        elif fate != "finish":
            run.at_stage = rng.choice(STAGES)
        runs.append(run)
    return runs


def command(source: Path, folder: Path, seed: int, overwrite: bool) -> list[str]:
    arguments = [sys.executable, "-m", "inference_backend", "run", str(source), "--scale", "1,1,3"]
    arguments += ["--out", str(folder), "--seed", str(seed), "--progress", "jsonl"]
    return arguments + (["--overwrite"] if overwrite else [])


def execute(run: Run, rng: random.Random) -> Run:
    """Start the run, send its signal when due, wait for it."""
    stop = {"term": signal.SIGTERM, "kill": signal.SIGKILL}.get(run.fate)
    run.started = time.monotonic()
    arguments = command(run.source, run.folder, run.index, run.shared)
    process = subprocess.Popen(arguments, cwd=SOURCE_CHECKOUT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stage = "start-up"

    def send() -> None:
        if process.poll() is None and run.signalled_at is None:
            run.signalled_at = stage
            process.send_signal(stop)

    timer = threading.Timer(run.delay_s, send) if run.delay_s is not None else None
    if timer is not None:
        timer.start()
    for line in process.stdout:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by SIGKILL
            continue
        run.last_line = record
        stage = record.get("stage", stage)
        if run.at_stage is not None and stage == run.at_stage:
            time.sleep(rng.uniform(0.0, 0.03))
            send()
    run.stderr = process.stderr.read()
    run.returncode = process.wait(timeout=300)
    if timer is not None:
        timer.cancel()
    run.ended = time.monotonic()
    return run


def verify(runs: list[Run]) -> dict:
    """What the storm left, folder by folder: completed results corrupt or lost, cancelled runs
    that left a folder, killed runs' leftovers."""
    folders: dict[Path, list[Run]] = {}
    for run in runs:
        folders.setdefault(run.folder, []).append(run)
    found = Counter()
    for folder, into in folders.items():
        state, report, verified = check_folder(folder) if folder.exists() else ("absent", {}, 0)
        seed = report.get("seed")
        found["files verified"] += verified
        found["corrupt"] += state == "corrupt"
        completed = [run for run in into if run.outcome == "completed"]
        if not into[0].shared:
            run = into[0]
            found["lost"] += run.outcome == "completed" and (state != "complete" or seed != run.index)
            found["cancelled runs that left their folder"] += run.outcome == "cancelled" and folder.exists()
            continue
        writers = {run.index for run in into if run.outcome in ("completed", "killed")}  # killed after commit: complete
        found["wrong report"] += state == "complete" and seed not in writers
        last = max(completed, key=lambda run: run.ended) if completed else None
        overwritten_by_killed = last is not None and any(r.outcome == "killed" and r.ended > last.ended for r in into)
        found["lost"] += last is not None and state != "complete" and not overwritten_by_killed
    return dict(found)


def sweep(runs: list[Run], root: Path) -> list[int]:
    """One more run, not interrupted, into every folder holding a lock, a staging folder or no
    report; returns their exit statuses."""
    dirty = {path.parent for paths in leftovers(root).values() for path in paths}
    dirty |= {run.folder for run in runs if run.folder.exists() and not (run.folder / "report.json").exists()}
    sources = {run.folder: run.source for run in runs}
    statuses = []
    for number, folder in enumerate(sorted(dirty)):
        arguments = command(sources[folder], folder, 100_000 + number, True)
        statuses.append(subprocess.run(arguments, cwd=SOURCE_CHECKOUT, capture_output=True, text=True).returncode)
    return statuses


def summary(runs: list[Run], found: dict, left: dict, statuses: list[int], after: dict, states: Counter, inputs_changed: bool):
    """The outcome rows and the check rows (with what each must be) of the results."""
    outcomes = Counter(run.outcome for run in runs)
    rows = [
        {"outcome": "completed (exit 0)", "runs": outcomes["completed"], "checked": "every listed file present, size and SHA-256 match, reads back finite"},
        {"outcome": "cancelled cleanly (exit 130)", "runs": outcomes["cancelled"], "checked": "one stderr line, the JSON error line, no folder left"},
        {"outcome": "killed (SIGKILL)", "runs": outcomes["killed"], "checked": "its lock and staging folder gone after the sweep"},
        {"outcome": "SIGTERM while Python started (before main)", "runs": outcomes["terminated while Python started"], "checked": "nothing written"},
        {"outcome": "refused: folder in use (exit 2)", "runs": outcomes["refused: folder in use"], "checked": "the lock of a live run"},
        {"outcome": "unexpected status or unclean cancel", "runs": outcomes["unexpected"] + outcomes["unclean cancel"], "checked": "must be 0"},
    ]  # fmt: skip
    checks = [
        ("completed results corrupt", found.get("corrupt", 0), 0),
        ("completed results lost", found.get("lost", 0), 0),
        ("shared folders holding a report of a run that never wrote", found.get("wrong report", 0), 0),
        ("cancelled runs that left their folder", found.get("cancelled runs that left their folder", 0), 0),
        ("output files verified (SHA-256) after the storm", found.get("files verified", 0), None),
        ("tracebacks on stderr", sum("Traceback" in run.stderr for run in runs), 0),
        ("inputs changed", int(inputs_changed), 0),
        ("staging folders left by killed runs", left["staging"], None),
        ("locks left by killed runs", left["locks"], None),
        ("sweep runs (into folders with leftovers or no report)", len(statuses), None),
        ("sweep runs that failed", sum(status != 0 for status in statuses), 0),
        ("staging folders after the sweep", after["staging"], 0),
        ("locks after the sweep", after["locks"], 0),
        ("folders complete after the sweep", states["complete"], None),
        ("folders not complete after the sweep", sum(n for state, n in states.items() if state != "complete"), 0),
    ]
    return rows, [{"check": name, "count": count, "must be": "" if must is None else must} for name, count, must in checks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, help="output root (default: a temporary folder, removed after)")
    parser.add_argument("--out", type=Path, default=SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "soak")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="mrisr-soak-"))
    inputs = make_inputs(root / "inputs", np.random.default_rng(args.seed))
    before = digests(inputs)
    runs = plan(args.runs, inputs, root / "out", random.Random(args.seed))
    started = time.monotonic()
    with ThreadPoolExecutor(args.workers) as pool:
        runs = list(pool.map(lambda run: execute(run, random.Random(args.seed * 1000 + run.index)), runs))
    storm_s = time.monotonic() - started
    found = verify(runs)
    left = {kind: len(paths) for kind, paths in leftovers(root / "out").items()}
    statuses = sweep(runs, root / "out")
    after = {kind: len(paths) for kind, paths in leftovers(root / "out").items()}
    states = Counter(check_folder(folder)[0] for folder in sorted((root / "out").iterdir()))
    rows, checks = summary(runs, found, left, statuses, after, states, digests(inputs) != before)
    moments = Counter(f"{run.fate} at {run.signalled_at}" for run in runs if run.signalled_at)
    unexpected = [
        {"index": run.index, "status": run.returncode, "stderr": run.stderr[-300:]}
        for run in runs
        if run.outcome in ("unexpected", "unclean cancel")
    ]
    signalled = Counter(run.fate for run in runs if run.signalled_at)
    description = (
        f"{args.runs} runs of `mrisr run` (interpolation, 32x32x12 volumes, x3 through-plane), {args.workers} at a time on "
        f"a 2-core CPU, {storm_s / 60:.1f} min; {signalled['term']} were sent SIGTERM and {signalled['kill']} SIGKILL, "
        "after a random delay or at a progress event. Three in every fifteen runs went together into one of three shared "
        "folders with --overwrite. Then one more run went into every folder left with a lock, a staging folder or no "
        "report (the sweep)."
    )
    reproduce = f".venv/bin/python benchmarks/soak.py --runs {args.runs} --workers {args.workers} --seed {args.seed}"
    footer = [*markdown_table(checks), "", "Signals by the stage the run had reported when they were sent: "
              + ", ".join(f"{moment} {n}" for moment, n in sorted(moments.items())) + ".", "",
              f"Reproduce: `{reproduce}`."]  # fmt: skip
    extra = {"checks": checks, "signal_moments": dict(sorted(moments.items())), "unexpected": unexpected,
             "runs": args.runs, "workers": args.workers, "seed": args.seed, "storm_s": round(storm_s, 1)}  # fmt: skip
    print(write_results(args.out, "Soak: runs interrupted at random, into one output root", description, rows, extra, footer))
    if args.root is None:
        shutil.rmtree(root)
    failed = [check["check"] for check in checks if check["must be"] != "" and check["count"] != check["must be"]]
    sys.exit(1 if failed or unexpected else 0)


if __name__ == "__main__":
    main()
