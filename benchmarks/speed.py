"""Per-volume time of each method beside B-spline, on the volume size users bring.

    .venv/bin/python benchmarks/speed.py [--methods res-srdiff] [--device cpu]

A 181 x 217 x 181 crop of the MNI152 template is degraded to 4 mm slices and brought back to
1 mm (x4 through-plane), one sample, through the same ``process`` call as ``mrisr run``.
Writes benchmarks/results/studies/speed/results.{json,md} (results for other devices are kept).
"""
from __future__ import annotations

import argparse
import json
import time

from inference_backend.data.datasets import REPO_ROOT, load_mni152
from inference_backend.devices import resolve_device
from inference_backend.evaluation.benchmark import PeakMemory
from inference_backend.evaluation.cases import through_plane_case
from inference_backend.job import JobOptions
from inference_backend.pipeline import library_versions, process

SIZE = (181, 217, 181)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="res-srdiff")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    mni = load_mni152()
    start = tuple((n - s) // 2 for n, s in zip(mni.grid.size, SIZE))
    case = through_plane_case("speed", mni.crop(start, tuple(a + s for a, s in zip(start, SIZE))), factor=4)
    rows = []
    for method, options in [("interpolation", {"kind": "bspline"})] + [(m, {}) for m in args.methods.split(",") if m]:
        job = JobOptions(method=method, method_options=options, scale=tuple(float(f) for f in case.factors), device=device)
        with PeakMemory() as memory:
            started = time.perf_counter()
            outputs = process(case.degraded, job)
            wall = time.perf_counter() - started
        rows.append({"method": method if method != "interpolation" else "bspline", "device": outputs.report["device"], "wall_time_s": round(wall, 1), "peak_rss_mb": round(memory.peak_mb), **case.score(outputs.sr.array)})
        print(rows[-1], flush=True)
    out = REPO_ROOT / "benchmarks" / "results" / "studies" / "speed"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[device.split(":")[0]] = {
        "input": f"{'x'.join(map(str, case.degraded.grid.size))} at {case.degraded.grid.spacing} mm",
        "output": "x".join(map(str, case.reference.grid.size)),
        "rows": rows,
        "versions": library_versions(),
    }
    path.write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# Per-volume time, x4 through-plane, one sample", ""]
    for device_kind, result in results.items():
        lines += [f"## {device_kind}: {result['input']} -> {result['output']}", "", "| method | device | time (s) | peak RSS (MB) | PSNR | SSIM |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['device']} | {r['wall_time_s']} | {r['peak_rss_mb']} | {r['psnr']:.2f} | {r['ssim']:.4f} |" for r in result["rows"]]
        lines.append("")
    lines.append("Reproduce: `.venv/bin/python benchmarks/speed.py --device cpu` (2-core CPU here).")
    (out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
