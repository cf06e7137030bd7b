"""Throughput of the data engine on this machine, beside the training step it must keep fed.

    .venv/bin/python benchmarks/data_engine.py [--data ../shared/data]

Writes benchmarks/results/studies/data_engine/results.{json,md}.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from inference_backend.data.datasets import SOURCE_CHECKOUT, shared_data_dir
from inference_backend.data.synth import SyntheticBrainGenerator
from inference_backend.data.training_data import SlicePairStream, default_sources
from inference_backend.methods.res_srdiff.method import ResSRDiffNet
from inference_backend.schedulers.residual_shift import ResidualShiftSchedule


def measure(data: Path, pairs: int = 600, batch: int = 16) -> dict:
    torch.set_num_threads(1)
    generator = SyntheticBrainGenerator.from_directory(data / "labels")
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(3):
        generator.sample(rng)
    volume_s = (time.perf_counter() - started) / 3
    stream = iter(SlicePairStream(default_sources(data), patch_size=64, seed=1))
    next(stream)
    started = time.perf_counter()
    for _ in itertools.islice(stream, pairs):
        pass
    pairs_per_s = pairs / (time.perf_counter() - started)
    torch.set_num_threads(2)
    model = ResSRDiffNet(ResidualShiftSchedule(), {"channels": (32, 64, 128, 256)})
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    x0 = torch.randn(batch, 1, 64, 64)
    index = torch.randint(0, 4, (batch,))
    timings = []
    for _ in range(6):
        started = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x0, x0, index), x0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - started)
    step_s = float(np.median(timings[1:]))
    return {
        "cpu_cores": os.cpu_count(),
        "synthetic_volume_s": round(volume_s, 3),
        "pairs_per_s_one_thread": round(pairs_per_s, 1),
        "training_step_s_two_threads": round(step_s, 3),
        "pairs_needed_per_s": round(batch / step_s, 1),
        "note": "pairs: 64x64 (HR, conditioning) patches incl. volume generation (a pool of 4 volumes, one replaced every 48 pairs), one worker "
        "thread; training step: Res-SRDiff CompactUNet (32,64,128,256), batch 16, forward+backward+AdamW.",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    args = parser.parse_args()
    results = measure(args.data)
    out = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "data_engine"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    verdict = "not data-bound" if results["pairs_per_s_one_thread"] >= results["pairs_needed_per_s"] else "DATA-BOUND"
    rows = "\n".join(f"| {k} | {v} |" for k, v in results.items() if k != "note")
    (out / "results.md").write_text(
        f"# Data engine throughput\n\n| quantity | value |\n|---|---|\n{rows}\n\n"
        f"One data worker thread produces {results['pairs_per_s_one_thread']} pairs/s; a training step consumes "
        f"{results['pairs_needed_per_s']} pairs/s: **{verdict}**.\n\n{results['note']}\n"
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
