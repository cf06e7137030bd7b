"""Time and peak memory of every method per volume, beside B-spline in the same run; the rates
the Slicer panel and ``mrisr methods`` quote.

    .venv/bin/python benchmarks/speed.py [--device cpu] [--machine "2-core CPU"] [--methods ...]

Two central crops of the MNI152 head (181 x 217 x 181, the size users bring, and 128^3), each
degraded to 4 mm slices along z and brought back to 1 mm (x4 through-plane), through the same
``process`` call as ``mrisr run``; InverseSR on its own task, 1 of every 4 slices acquired.
Stochastic methods also run with several samples (the variance map). From the two sizes, each
method's fixed cost and seconds per million output voxels are fitted and written to
``inference_backend/measured_speed.json`` (results for other devices are kept).
Writes benchmarks/results/speed/results.{json,md} (a run of some methods replaces their rows only).
"""
from __future__ import annotations

import argparse
import json

from inference_backend.data.datasets import SOURCE_CHECKOUT
from inference_backend.devices import resolve_device
from inference_backend.evaluation.benchmark import run_case
from inference_backend.evaluation.cases import (
    SPEED_SIZES,
    Case,
    mni_crop,
    slice_masking_case,
    speed_case,
)
from inference_backend.evaluation.report import write_document
from inference_backend.pipeline import library_versions
from inference_backend.time_estimates import RATES_FILE

SAMPLES = {"res-srdiff": 2, "msp-sr": 4}  # the multi-sample run of each stochastic method (on the head)
METHODS = ("interpolation", "res-srdiff", "msp-sr", "srmri", "inverse-sr")


def timed(case: Case, method: str, samples: int, device: str) -> dict:
    outputs, wall, peak_mb = run_case(case, method, {"kind": "bspline"} if method == "interpolation" else {}, samples, device)
    scores = case.score(outputs.sr.array)
    return {
        "method": "bspline" if method == "interpolation" else method,
        "size": "x".join(map(str, case.reference.grid.size)),
        "output_mvoxels": round(case.reference.grid.num_voxels / 1e6, 3),
        "samples": samples,
        "device": outputs.report["device"],
        "engine": outputs.report["resolved_options"].get("engine", {}).get("engine", "-"),
        "wall_time_s": round(wall, 1),
        "peak_rss_mb": round(peak_mb),
        "psnr": round(scores["psnr"], 2),
        "ssim": round(scores["ssim"], 4),
    }


def fitted_rate(rows: list[dict]) -> dict[str, float]:
    """Fixed seconds and seconds per million voxels from the one-sample runs on the two sizes;
    further samples from the multi-sample run (or as the first where there is none)."""
    one = sorted((r for r in rows if r["samples"] == 1), key=lambda r: r["output_mvoxels"])
    small, large = one[0], one[-1]
    per = (large["wall_time_s"] - small["wall_time_s"]) / (large["output_mvoxels"] - small["output_mvoxels"])
    per = max(per, 0.0)
    fixed = max(0.0, large["wall_time_s"] - per * large["output_mvoxels"])
    several = [r for r in rows if r["samples"] > 1]
    further = per
    if several:
        r = several[0]
        further = max(0.0, (r["wall_time_s"] - large["wall_time_s"]) / ((r["samples"] - 1) * r["output_mvoxels"]))
    return {"fixed_s": round(fixed, 2), "first_sample_s_per_mvoxel": round(per, 3), "further_sample_s_per_mvoxel": round(further, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--machine", default="a 2-core CPU", help="how the rate's source is named to users")
    parser.add_argument("--methods", default=",".join(METHODS), help="B-spline always runs first (the ratio's reference)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    kind = device.split(":")[0]
    rows = []
    for method in ["interpolation"] + [m for m in args.methods.split(",") if m != "interpolation"]:
        for name, size in SPEED_SIZES.items():
            case = slice_masking_case("speed", mni_crop(size)) if method == "inverse-sr" else speed_case(size)
            runs = [1] + ([SAMPLES[method]] if method in SAMPLES and name == "head" else [])
            for samples in runs:
                rows.append(timed(case, method, samples, device))
                print(json.dumps(rows[-1]), flush=True)
    bspline = {r["size"]: r["wall_time_s"] for r in rows if r["method"] == "bspline"}
    for row in rows:
        row["x_bspline"] = round(row["wall_time_s"] / max(bspline[row["size"]], 0.1), 1)

    results_path = SOURCE_CHECKOUT / "benchmarks" / "results" / "speed" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    kept = [r for r in results.get(kind, {}).get("rows", []) if r["method"] not in {row["method"] for row in rows}]
    rows = kept + rows  # a run of some methods replaces their rows only
    results[kind] = {"machine": args.machine, "rows": rows, "versions": library_versions()}
    description = (
        "MNI152 crops, 4 mm slices along z brought back to 1 mm (x4 through-plane); InverseSR: 1 of every 4 slices "
        "acquired. One `process` call per row, as `mrisr run`; `x bspline`: the time over B-spline's on the same size in the same run."
    )
    lines = ["# Time and memory per volume", "", description, ""]
    for device_kind, result in results.items():
        lines += [f"## {device_kind}: {result['machine']}", "", "| method | output | samples | engine | time (s) | x bspline | peak RSS (MB) | PSNR | SSIM |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [
            f"| {r['method']} | {r['size']} | {r['samples']} | {r['engine']} | {r['wall_time_s']} | {r['x_bspline']} | {r['peak_rss_mb']} | {r['psnr']} | {r['ssim']} |"
            for r in result["rows"]
        ]
        lines.append("")
    lines.append(f"Reproduce: `.venv/bin/python benchmarks/speed.py --device {args.device}` (nothing else running).")
    write_document(results_path.parent, results, lines)

    rates = json.loads(RATES_FILE.read_text()) if RATES_FILE.exists() else {"rates": {}, "machines": {}}
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        by_method.setdefault("interpolation" if row["method"] == "bspline" else row["method"], []).append(row)
    rates["rates"][kind] = {method: fitted_rate(method_rows) for method, method_rows in by_method.items()}
    rates["machines"][kind] = args.machine
    rates["source"] = "benchmarks/speed.py -> benchmarks/results/speed/results.json"
    RATES_FILE.write_text(json.dumps(rates, indent=2) + "\n")


if __name__ == "__main__":
    main()
