"""Scale-out simulation: `mrisr batch`'s Ray engine on a local cluster of several logical nodes,
200 tiny volumes, and one node removed mid-batch (a preempted machine) with the actor it held.

    .venv/bin/python benchmarks/batch_scale_out.py [--scans 200] [--nodes 4] [--workers 3]

Counts what must hold on a real cluster: every scan completed, none lost, none written twice
(one report per scan folder, no staging or lock left), that the lost actor was replaced (as
many worker processes ended scans after the loss as before), and the time.
Then projects the hours for 10,000 whole-head scans on N machines from the per-volume times
measured in benchmarks/results/speed (a CPU figure: no GPU figure exists there yet, so a
GPU projection is not made). Writes benchmarks/results/batch/scale-out/results.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from inference_backend.batch.discovery import discover
from inference_backend.batch.engines import RayEngine
from inference_backend.batch.runner import BatchSettings, run_batch
from inference_backend.evaluation.report import write_results
from inference_backend.imaging.io import write_volume
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.job import JobOptions

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "batch" / "scale-out"
SPEED = ROOT / "benchmarks" / "results" / "studies" / "speed" / "results.json"


def tiny_volumes(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        array = rng.normal(100, 20, (16, 16, 6)).astype(np.float32)
        write_volume(Volume(array, Grid((16, 16, 6), (1.0, 1.0, 4.0), (0.0, 0.0, 0.0), np.eye(3))), folder / f"scan{index:03d}.nii.gz")


def remove_a_node_with_an_actor(cluster, ended: list[str], after: int, workers: int, removed: list[dict]) -> None:
    """Once ``after`` scans have ended, remove a worker node that hosts a ScanWorker actor."""
    import ray

    while len(ended) < after:
        time.sleep(0.05)
    places = [ray.get(ray.get_actor(f"mrisr-worker-{index}").where.remote()) for index in range(workers)]
    for node in cluster.worker_nodes:
        hosted = [place for place in places if place["node"] == node.node_id]
        if hosted:
            cluster.remove_node(node)
            removed.append({**hosted[0], "scans ended before": len(ended)})
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=4, help="logical nodes of one CPU each (the head included)")
    parser.add_argument("--workers", type=int, default=3, help="actors (fewer than nodes: a lost one can restart elsewhere)")
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    with tempfile.TemporaryDirectory() as temporary:
        source, out = Path(temporary) / "src", Path(temporary) / "out"
        source.mkdir()
        tiny_volumes(source, args.scans)
        scans, _ = discover(source)
        settings = BatchSettings(out, JobOptions(scale=(2, 2, 4), method_options={"kind": "linear"}))
        ended: list[str] = []
        removed: list[str] = []
        remover = threading.Thread(
            target=remove_a_node_with_an_actor, args=(cluster, ended, args.scans // 4, args.workers, removed), daemon=True
        )
        remover.start()
        started = time.perf_counter()
        workers_seen: list[str] = []

        def on_event(result, *_) -> None:
            ended.append(result.scan_id)
            workers_seen.append(result.worker)

        summary = run_batch(scans, settings, RayEngine(args.workers, cpus_per_worker=1), on_event=on_event)
        seconds = time.perf_counter() - started
        reports = sorted(out.rglob("report.json"))
        leftovers = [p for p in out.rglob("*") if p.name.startswith((".mrisr-partial-", ".mrisr-lock"))]
        outputs_per_scan = {p.parent.name: len([f for f in p.parent.iterdir() if f.name.endswith(".nii.gz")]) for p in reports}
        row = {
            "scans": args.scans,
            "nodes": args.nodes,
            "actors": args.workers,
            "node removed": bool(removed),
            "completed": summary.counts().get("done", 0),
            "failed": summary.counts().get("failed", 0),
            "lost (no result)": args.scans - len(set(ended)),
            "ended more than once": len(ended) - len(set(ended)),
            "scan folders with other than one result": sum(1 for n in outputs_per_scan.values() if n != 1) + (args.scans - len(reports)),
            "staging or locks left": len(leftovers),
            "worker processes that ended scans": len(set(workers_seen)),
            "lost actor replaced": bool(removed) and len(set(workers_seen[removed[0]["scans ended before"] + args.workers :])) == args.workers,
            "wall (s)": round(seconds, 1),
        }
    ray.shutdown()
    cluster.shutdown()
    projections = project(json.loads(SPEED.read_text()))
    description = (
        f"A local Ray cluster of {args.nodes} logical nodes (one CPU each, all on this 2-core machine), {args.workers} "
        f"ScanWorker actors, {args.scans} volumes of 16 x 16 x 6 (linear interpolation, --scale 2,2,4); after a quarter of "
        "the scans, the worker node hosting an actor is removed (its processes die, as on a preempted machine). Ray "
        "restarts the actor on a free node and retries its task; the scan folder's lock and staging keep it written once."
    )
    footer = ["## Projection: 10,000 whole-head scans (a projection, not a measurement)", "", *projections, "",
              "Reproduce: `.venv/bin/python benchmarks/batch_scale_out.py` (a few minutes)."]  # fmt: skip
    print(write_results(OUT, "Batch scale-out on a simulated cluster", description, [row], {"projection": projections}, footer))


def project(speed: dict) -> list[str]:
    """Hours for 10,000 scans from the measured per-volume time, on N identical machines,
    assuming scans are independent (no shared bottleneck but the file system)."""
    lines = ["| method | device | measured s per volume | 1 machine (h) | 10 machines (h) | 100 machines (h) |", "|---|---|---|---|---|---|"]
    for device, measured in speed.items():
        for case in measured["rows"]:
            seconds = case["wall_time_s"]
            hours = [10_000 * seconds / 3600 / n for n in (1, 10, 100)]
            lines.append(f"| {case['method']} | {device} (2 cores, {measured['input']}) | {seconds} | " + " | ".join(f"{h:.1f}" for h in hours) + " |")
    lines.append("")
    if not any(device.startswith("cuda") for device in speed):
        lines.append("No GPU time is measured in benchmarks/results/speed yet, so no GPU projection is given.")
    return lines


if __name__ == "__main__":
    main()
