"""Calibrate each stochastic method's variance map on training scans; write it into the model card.

    .venv/bin/python benchmarks/calibrate_variance.py [--methods res-srdiff,msp-sr,srmri] [--samples 8]

On the whole of chris_t1 and of stroke_T1 (scans the models were trained on, which no evaluation
uses; whole volumes, not central slabs: a slab holds little of the cortex and CSF, where the errors
are largest, and its factor left the volume's own 90% interval covering 86%), each method runs
``--samples`` samples with its raw variance (``--opt variance=raw``) at thick slices x2, x3, x4
and in-plane x2. From disjoint runs of 2, 4 and 8 of those samples (what a job of that
many samples gives), the factor c on the standard deviation (the spread pooled over each voxel's
neighbours, as a job pools it) that puts 90% of the head's voxels
within mean +- 1.645 c sigma (split conformal) is found per scan, and the mean over the scans
(each counted once, whatever its size: one scanner's error is not the next one's, and a factor
fitted on chris_t1 alone left the held-out seg3D_MR's interval covering 84%) is stored per sample
count, acquisition and factor
under ``variance_calibration`` in ``inference_backend/models/<model>.json``, which every later job
applies (``inference_backend/methods/variance_calibration.py``). The weights do not change.
Writes benchmarks/results/studies/variance-calibration/fit/results.{json,md}.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy import stats

from inference_backend.assets import BUNDLED_DIR
from inference_backend.data.datasets import SOURCE_CHECKOUT
from inference_backend.evaluation.benchmark import acquisition_cases, real_scans
from inference_backend.evaluation.calibration import interval_scale, standardised_errors_of_runs, subset_statistics
from inference_backend.evaluation.report import write_results
from inference_backend.job import JobOptions
from inference_backend.methods.variance_calibration import POOLING_SD_VOXELS, pooled, sampling_options
from inference_backend.pipeline import process
from inference_backend.registry import METHODS

LEVEL = 0.9
CALIBRATION_SCANS = ("chris_t1", "stroke_T1")
SAMPLE_COUNTS = (2, 4, 8)
Z = float(stats.norm.ppf(0.5 + LEVEL / 2))
FIT = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "variance-calibration" / "fit"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="res-srdiff,msp-sr,srmri")
    parser.add_argument("--samples", type=int, default=8, help="samples per case; runs of 2, 4 and 8 of them are calibrated")
    args = parser.parse_args()
    cases = acquisition_cases(real_scans(CALIBRATION_SCANS))
    methods = args.methods.split(",")
    earlier = FIT / "results.json"
    rows = [{"pooling_sd_voxels": 0.0} | row for row in json.loads(earlier.read_text())["rows"] if row["method"] not in methods] if earlier.exists() else []
    for method in methods:
        model = METHODS[method].weights[0]
        per_scan: dict[tuple[str, str, str], list[float]] = {}  # (samples, acquisition, factor) -> each scan's factor
        fitted = []  # (row, key, standardised errors): each case's coverage is scored once the scans' mean is known
        for case in cases:
            job = JobOptions(
                method=method, method_options={"variance": "raw"}, scale=tuple(float(f) for f in case.factors), samples=args.samples, keep_samples=True
            )
            samples = process(case.degraded, job).samples
            for count in [c for c in SAMPLE_COUNTS if c <= args.samples]:
                runs = [(mean, pooled(variance, POOLING_SD_VOXELS)) for mean, variance in subset_statistics(samples, count)]
                z = standardised_errors_of_runs(case.reference.array, runs, case.mask).astype(np.float32)
                key = (str(count), case.acquisition, str(max(case.factors)))
                scale = interval_scale(z, LEVEL)
                per_scan.setdefault(key, []).append(scale)
                fitted.append(({"pooling_sd_voxels": POOLING_SD_VOXELS, "method": method, "case": case.name, "samples": count, "runs": len(runs),
                                "coverage_90_raw": round(float(np.mean(z <= Z)), 4), "scale_on_std": round(scale, 3)}, key, z))  # fmt: skip
        scales: dict[str, dict[str, dict[str, float]]] = {}
        for (count, acquisition, factor), factors in per_scan.items():
            scales.setdefault(count, {}).setdefault(acquisition, {})[factor] = round(float(np.mean(factors)), 4)
        for row, (count, acquisition, factor), z in fitted:
            stored = scales[count][acquisition][factor]
            rows.append(row | {"stored_scale": stored, "coverage_90_calibrated": round(float(np.mean(z <= Z * stored)), 4)})
            print(json.dumps(rows[-1]), flush=True)
        card_path = BUNDLED_DIR / f"{model}.json"
        card = json.loads(card_path.read_text())
        card["variance_calibration"] = {
            "level": LEVEL,
            "z": round(Z, 4),
            "data": f"the whole of {' and '.join(CALIBRATION_SCANS)}, training scans no evaluation uses (the mean of their factors)",
            "options": sampling_options(METHODS[method].options_type()),  # the defaults it ran with: a job with others is not calibrated
            "pooling_sd_voxels": POOLING_SD_VOXELS,  # the spread is pooled before the factor
            "scales": scales,  # samples -> acquisition -> factor -> factor on the standard deviation
            "command": f"benchmarks/calibrate_variance.py --samples {args.samples}",
        }
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    write_results(
        FIT,
        "Variance calibration, fitted on training scans",
        f"The whole of {' and '.join(CALIBRATION_SCANS)}; per case and sample count the factor c on the samples' standard deviation that "
        f"puts {LEVEL:.0%} of the head's voxels within mean +- 1.645 c sigma, pooled over the disjoint runs of that many of the "
        f"{args.samples} samples (runs); the model card stores the mean of the scans' factors (stored_scale), and "
        "coverage_90_calibrated is each case's coverage with it.",
        rows,
        {},
        [
            f"Reproduce: `.venv/bin/python benchmarks/calibrate_variance.py --methods {args.methods} --samples {args.samples}` "
            "(the other methods' rows and cards stand as fitted before, on the central slab their case names show: pooling_sd_voxels 0 is their raw spread)."
        ],
    )


if __name__ == "__main__":
    main()
