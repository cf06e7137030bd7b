"""Batch soak: `mrisr batch` again and again into one output root, from a folder and from a
manifest, stopped at random (Ctrl-C once or twice, SIGTERM, SIGKILL) and resumed; afterwards
nothing is lost, nothing was written outside the root, and every summary told the truth.

    .venv/bin/python benchmarks/batch_soak.py [--batches 100] [--seed 0]

The source holds seven tiny volumes in nested folders; the manifest lists five of them with
ids of every spelling (``m/one``, ``m/two/``, ``./m/three``), one without an id, one with its own
scale. Each batch draws its source, its request (the target and the seed: half the batches
change it, so results the root's batches made are redone, and replaced while being stopped)
and its fate: left to finish, stopped after a
random delay or when a scan ends, killed. After each batch:

* the tree outside the output root is unchanged (inputs, manifest, the root's parent);
* a finished batch (exit 0) lists every scan as done or up to date, and every folder of the
  scans it ran holds a complete result (every listed file present, its size and SHA-256);
* whatever the fate, every scan the summary calls done holds a complete result of the request
  the summary's batch made, and ``batch.json`` and ``summary.tsv`` agree (but after SIGKILL,
  which can fall between the writes of the two files: counted apart).

At the end one more batch of each source, not interrupted, must find every scan done or up to
date, and no lock or staging folder may be left anywhere.
Writes benchmarks/results/studies/batch-soak/results.{json,md}.
"""
from __future__ import annotations

import argparse
import csv
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
from pathlib import Path

import numpy as np

from inference_backend.data.datasets import SOURCE_CHECKOUT
from inference_backend.evaluation.report import markdown_table, write_results
from inference_backend.evaluation.soak_checks import check_folder, leftovers, make_inputs, tree_digest

VOLUMES = ("a/x1.nii.gz", "a/x2.nrrd", "b/y1.nii.gz", "b/c/y2_oblique.nii.gz", "z.nii.gz", "w.nii.gz", "v.nii.gz")
MANIFEST = (
    "input\tid\tscale\n"
    "src/a/x1.nii.gz\tm/one\t\n"
    "src/a/x2.nrrd\tm/two/\t\n"
    "src/b/y1.nii.gz\t./m/three\t\n"
    "src/z.nii.gz\t\t1,1,2\n"
    "src/b/c/y2_oblique.nii.gz\tm/four\t\n"
)
FATES = {"finish": 0.4, "interrupt": 0.2, "interrupt twice": 0.1, "terminate": 0.15, "kill": 0.15}
STOPS = {"interrupt": [signal.SIGINT], "interrupt twice": [signal.SIGINT, signal.SIGINT], "terminate": [signal.SIGTERM], "kill": [signal.SIGKILL]}


def batch_command(source: Path, out: Path, scale: str, workers: int, seed: int = 0) -> list[str]:
    return [sys.executable, "-m", "inference_backend", "batch", str(source), "--out", str(out), "--method", "interpolation",
            "--scale", scale, "--seed", str(seed), "--workers", str(workers), "--progress", "jsonl"]  # fmt: skip


def run_batch(command: list[str], fate: str, rng: random.Random) -> tuple[int, str, int]:
    """(exit status, stderr, scan events seen); the fate's signals sent after a random delay
    or when a scan ends."""
    process = subprocess.Popen(command, cwd=SOURCE_CHECKOUT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stops = list(STOPS.get(fate, []))
    lock = threading.Lock()

    def send() -> None:
        with lock:
            if stops and process.poll() is None:
                process.send_signal(stops.pop(0))

    delayed = rng.random() < 0.5
    timers = [threading.Timer(rng.uniform(0.5, 6.0) + 0.3 * n, send) for n in range(len(stops))] if delayed else []
    for timer in timers:
        timer.start()
    events = 0
    for line in process.stdout:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        events += record.get("event") == "scan"
        if not delayed and stops and rng.random() < 0.5:
            send()
    stderr = process.stderr.read()
    status = process.wait(timeout=600)
    for timer in timers:
        timer.cancel()
    return status, stderr, events


def summary_rows(out: Path) -> dict[str, dict]:
    state = json.loads((out / "batch.json").read_text())
    with open(out / "summary.tsv", newline="") as stream:
        table = {row["scan"]: row for row in csv.DictReader(stream, delimiter="\t")}
    rows = {row["scan_id"]: row for row in state["scans"]}
    if {scan: row["status"] for scan, row in rows.items()} != {scan: row["status"] for scan, row in table.items()}:
        raise AssertionError("batch.json and summary.tsv disagree")
    return rows


def check_batch(out: Path, status: int, scale: str, seed: int, manifest: bool, started: float, problems: list[str]) -> Counter:
    """What the root's summary says against the folders: every scan it calls done holds a
    complete result, of this batch's request where the summary is this batch's (a batch killed
    before its first summary leaves the previous one)."""
    found: Counter = Counter()
    if not (out / "batch.json").exists():
        found["no summary (killed before its first)"] += 1
        return found
    own = (out / "batch.json").stat().st_mtime >= started
    try:
        rows = summary_rows(out)
    except (AssertionError, ValueError, KeyError):
        # the three summary files are replaced one after the other: SIGKILL can fall between them
        found["summaries that disagree or do not parse" + (" (killed)" if status == -signal.SIGKILL else "")] += 1
        return found
    for scan, row in rows.items():
        if row["status"] not in ("done", "up to date"):
            found[f"scans left {row['status']}"] += 1
            continue
        state, report, verified = check_folder(out / scan)
        found["files verified"] += verified
        factor = float(("1,1,2" if (manifest and scan == "src/z") else scale).split(",")[-1])
        request = report.get("request", {})
        if state != "complete" or (own and (request["scale"][-1], request["seed"]) != (factor, seed)):
            found["scans called done without their complete result"] += 1
            problems.append(f"{scan}: {state}, {'this' if own else 'an earlier'} batch's summary, request {request.get('scale')} seed {request.get('seed')}")
    if status == 0 and any(row["status"] not in ("done", "up to date") for row in rows.values()):
        found["finished batches with a scan not done"] += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "batch-soak")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="mrisr-batch-soak-"))
    make_inputs(root / "src", np.random.default_rng(args.seed), VOLUMES)
    (root / "list.tsv").write_text(MANIFEST)
    out = root / "out"
    outside = tree_digest(root, skip=out)
    found: Counter = Counter()
    fates: Counter = Counter()
    statuses: Counter = Counter()
    tracebacks = 0
    problems: list[str] = []
    reported = 0
    started = time.monotonic()
    for number in range(args.batches):
        manifest = rng.random() < 0.5
        scale = rng.choices(["1,1,3", "1,1,2"], weights=[0.8, 0.2])[0]
        fate = rng.choices(list(FATES), weights=list(FATES.values()))[0]
        workers, seed = rng.choice([1, 2]), rng.choice([0, 1])  # another seed: another request, so the results are redone
        command = batch_command(root / "list.tsv" if manifest else root / "src", out, scale, workers, seed)
        began = time.time()
        status, stderr, _ = run_batch(command, fate, rng)
        fates[fate] += 1
        statuses[f"{fate}: exit {status}"] += 1
        tracebacks += "Traceback" in stderr
        found += check_batch(out, status, scale, seed, manifest, began, problems)
        if tree_digest(root, skip=out) != outside:
            found["batches that changed a file outside --out"] += 1
            outside = tree_digest(root, skip=out)
        print(f"batch {number + 1}/{args.batches}: {'manifest' if manifest else 'folder'} x{scale[-1]} seed {seed} {fate} -> {status}", flush=True)
        while len(problems) > reported:
            print(f"  {problems[reported]}", flush=True)
            reported += 1
    storm_s = time.monotonic() - started
    finals = []
    for source in (root / "src", root / "list.tsv"):
        began = time.time()
        status, stderr, _ = run_batch(batch_command(source, out, "1,1,3", 2), "finish", rng)
        finals.append(status)
        tracebacks += "Traceback" in stderr
        final = check_batch(out, status, "1,1,3", 0, source.suffix == ".tsv", began, problems)
        found["final: scans not done or up to date"] += sum(n for key, n in final.items() if key.startswith("scans left"))
        found["final: scans called done without their complete result"] += final["scans called done without their complete result"]
        found["final files verified"] += final["files verified"]
    left = {kind: len(paths) for kind, paths in leftovers(root).items()}
    checks = [
        ("files outside --out changed", found["batches that changed a file outside --out"], 0),
        ("scans a summary called done without their complete result", found["scans called done without their complete result"], 0),
        ("summaries where batch.json and summary.tsv disagree", found["summaries that disagree or do not parse"], 0),
        ("the same after SIGKILL fell between their writes (the next batch rewrites them)", found["summaries that disagree or do not parse (killed)"], None),
        ("finished batches (exit 0) with a scan not done", found["finished batches with a scan not done"], 0),
        ("tracebacks on stderr", tracebacks, 0),
        ("final batches (folder, manifest) that failed", sum(status != 0 for status in finals), 0),
        ("final: scans not done or up to date", found["final: scans not done or up to date"], 0),
        ("final: scans without their complete result", found["final: scans called done without their complete result"], 0),
        ("locks left", left["locks"], 0),
        ("staging folders left", left["staging"], 0),
        ("output files verified (size, SHA-256, finite) during the storm", found["files verified"], None),
        ("output files verified after the final batches", found["final files verified"], None),
    ]
    rows = [{"fate and exit status": key, "batches": count} for key, count in sorted(statuses.items())]
    checks_rows = [{"check": name, "count": count, "must be": "" if must is None else must} for name, count, must in checks]
    description = (
        f"{args.batches} runs of `mrisr batch` (interpolation, 7 tiny volumes, x2 or x3 through-plane, 1 or 2 workers) into one "
        f"output root, from a folder or a manifest, on a 2-core CPU, {storm_s / 60:.1f} min: "
        + ", ".join(f"{count} {fate}" for fate, count in sorted(fates.items()))
        + "; then one uninterrupted batch of each source."
    )
    reproduce = f".venv/bin/python benchmarks/batch_soak.py --batches {args.batches} --seed {args.seed}"
    footer = [*markdown_table(checks_rows), "", f"Reproduce: `{reproduce}`."]
    extra = {"checks": checks_rows, "problems": problems, "batches": args.batches, "seed": args.seed, "storm_s": round(storm_s, 1)}
    print(write_results(args.out, "Batch soak: batches stopped at random and resumed, into one output root", description, rows, extra, footer))
    shutil.rmtree(root)
    failed = [row["check"] for row in checks_rows if row["must be"] != "" and row["count"] != row["must be"]]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
