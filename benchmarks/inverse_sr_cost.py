"""InverseSR on the CPU: wall time and peak memory of (a) filling a lesion of about 30 mm and
(b) imputing a whole 181 x 217 x 181 volume from 1 of every 4 slices, with the default settings.

    .venv/bin/python benchmarks/inverse_sr_cost.py [--steps N]

Uses the MNI152 template (never trained on). Writes benchmarks/results/studies/inverse_sr_cost/
results.{json,md} and a PNG of both results.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from inference_backend.data.datasets import SOURCE_CHECKOUT, load_mni152
from inference_backend.evaluation.benchmark import PeakMemory
from inference_backend.evaluation.cases import slice_masking_case
from inference_backend.evaluation.metrics import image_metrics
from inference_backend.evaluation.panels import Tile, central_slice, save_panel
from inference_backend.job import JobOptions
from inference_backend.methods.inverse_sr.options import InverseSROptions
from inference_backend.methods.lesion_fill import FILLS
from inference_backend.pipeline import library_versions, process

OUT = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "inverse_sr_cost"
LESION_DIAMETER_MM = 30.0


def timed(function, *args, **kwargs):
    with PeakMemory() as memory:
        started = time.perf_counter()
        result = function(*args, **kwargs)
        wall = time.perf_counter() - started
    return result, round(wall, 1), round(memory.peak_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=InverseSROptions.steps, help="inversion steps per tile (the method's default)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    mni = load_mni152()
    volume = mni.crop((8, 8, 4), (189, 225, 185))  # 181 x 217 x 181
    rows = []

    # (a) a spherical lesion of 30 mm in the centrum semiovale (white matter), truth known
    array = volume.array
    centre = np.array([115, 120, 120])
    grid = np.ogrid[tuple(slice(0, n) for n in array.shape)]
    radius = LESION_DIAMETER_MM / 2 / np.asarray(volume.grid.spacing)
    mask = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius)) <= 1
    fills = {}
    for name in ("neighbourhood", "nawm-mean", "inverse-sr"):
        fills[name], wall, peak = timed(FILLS[name], array, mask)
        error = np.abs(fills[name][mask] - array[mask]).mean() / (np.percentile(array, 99.5) - np.percentile(array, 0.5))
        rows.append({"task": f"lesion fill, {LESION_DIAMETER_MM:g} mm sphere ({int(mask.sum())} voxels)", "method": name,
                     "wall_time_s": wall, "peak_rss_mb": peak, "mae_percent_of_range": round(100 * float(error), 2)})  # fmt: skip

    # (b) whole-volume slice imputation, 1 of 4 slices
    case = slice_masking_case("mni152_imputation-1of4", volume, keep_every=4, axis=2)
    estimates = {}
    for method, options in (("interpolation", {"kind": "bspline"}), ("inverse-sr", {"steps": args.steps})):
        job = JobOptions(method=method, method_options=options, target=case.reference.grid, device="cpu")
        outputs, wall, peak = timed(process, case.degraded, job)
        estimates[method] = outputs.sr.array
        scores = image_metrics(case.reference.array, outputs.sr.array, case.mask)
        rows.append({"task": f"slice imputation, whole {'x'.join(map(str, case.reference.grid.size))} volume, 1 of 4 slices",
                     "method": method, "options": options, "wall_time_s": wall, "peak_rss_mb": peak,
                     "psnr": scores["psnr"], "ssim": scores["ssim"]})  # fmt: skip

    results = {"rows": rows, "versions": library_versions()}
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    lines = ["# InverseSR on the CPU: time and memory", "", "2-core CPU, nothing else running; MNI152 (never trained on).", "",
             "| task | method | wall time (s) | peak RSS (MB) | error / score |", "|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        score = f"MAE {row['mae_percent_of_range']}% of range" if "mae_percent_of_range" in row else f"{row['psnr']:.2f} dB / {row['ssim']:.4f}"
        lines.append(f"| {row['task']} | {row['method']} | {row['wall_time_s']} | {row['peak_rss_mb']} | {score} |")
    (OUT / "results.md").write_text("\n".join(lines + ["", "![panel](panel.png)", ""]))
    low, high = np.percentile(array, [0.5, 99.5])
    index = int(centre[1])
    tiles = [Tile("lesion (truth)", central_slice(array, 1, index), vmin=low, vmax=high)]
    tiles += [Tile(f"fill: {name}", central_slice(fill, 1, index), vmin=low, vmax=high) for name, fill in fills.items()]
    imputed = [Tile(f"imputation: {name}", central_slice(estimate, 0), vmin=low, vmax=high) for name, estimate in estimates.items()]
    save_panel(OUT / "panel.png", [tiles, imputed + [Tile("reference", central_slice(case.reference.array, 0), vmin=low, vmax=high)]])
    print((OUT / "results.md").read_text())


if __name__ == "__main__":
    main()
