"""Calibrate each stochastic method's variance map on a training scan; write it into the model card.

    .venv/bin/python benchmarks/calibrate_variance.py [--methods res-srdiff,msp-sr,srmri] [--samples 8]

On the whole of chris_t1 (a scan the models were trained on, which no evaluation uses; the whole
volume, not a central slab: the slab holds little of the cortex and CSF, where the errors are
largest, and its factor left the volume's own 90% interval covering 86%), each method runs
``--samples`` samples with its raw variance (``--opt variance=raw``) at thick slices x2, x3, x4
and in-plane x2. From disjoint runs of 2, 4 and 8 of those samples (what a job of that
many samples gives), the factor c on the standard deviation (the spread pooled over each voxel's
neighbours, as a job pools it) that puts 90% of the head's voxels
within mean +- 1.645 c sigma (split conformal) is stored per sample count, acquisition and factor
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
from inference_backend.evaluation.calibration import coverage, pooled_conformal_scale, subset_statistics
from inference_backend.evaluation.report import write_results
from inference_backend.job import JobOptions
from inference_backend.methods.variance_calibration import POOLING_SD_VOXELS, pooled, sampling_options
from inference_backend.pipeline import process
from inference_backend.registry import METHODS

LEVEL = 0.9
CALIBRATION_SCAN = "chris_t1"
SAMPLE_COUNTS = (2, 4, 8)
FIT = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "variance-calibration" / "fit"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="res-srdiff,msp-sr,srmri")
    parser.add_argument("--samples", type=int, default=8, help="samples per case; runs of 2, 4 and 8 of them are calibrated")
    args = parser.parse_args()
    cases = acquisition_cases(real_scans((CALIBRATION_SCAN,)))
    methods = args.methods.split(",")
    earlier = FIT / "results.json"
    rows = [{"pooling_sd_voxels": 0.0} | row for row in json.loads(earlier.read_text())["rows"] if row["method"] not in methods] if earlier.exists() else []
    for method in methods:
        model = METHODS[method].weights[0]
        scales: dict[str, dict[str, dict[str, float]]] = {}
        for case in cases:
            job = JobOptions(
                method=method, method_options={"variance": "raw"}, scale=tuple(float(f) for f in case.factors), samples=args.samples, keep_samples=True
            )
            samples = process(case.degraded, job).samples
            reference, mask = case.reference.array, case.mask
            for count in [c for c in SAMPLE_COUNTS if c <= args.samples]:
                estimates = [(mean, pooled(variance, POOLING_SD_VOXELS)) for mean, variance in subset_statistics(samples, count)]
                scale = pooled_conformal_scale(reference, estimates, mask, LEVEL)
                scales.setdefault(str(count), {}).setdefault(case.acquisition, {})[str(max(case.factors))] = round(scale, 4)
                rows.append({
                    "pooling_sd_voxels": POOLING_SD_VOXELS, "method": method, "case": case.name, "samples": count, "runs": len(estimates),
                    "coverage_90_raw": round(float(np.mean([coverage(reference, m, v, mask, LEVEL) for m, v in estimates])), 4),
                    "scale_on_std": round(scale, 3),
                    "coverage_90_calibrated": round(float(np.mean([coverage(reference, m, v * scale**2, mask, LEVEL) for m, v in estimates])), 4),
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
        card_path = BUNDLED_DIR / f"{model}.json"
        card = json.loads(card_path.read_text())
        card["variance_calibration"] = {
            "level": LEVEL,
            "z": round(float(stats.norm.ppf(0.5 + LEVEL / 2)), 4),
            "data": f"the whole of {CALIBRATION_SCAN}, a training scan no evaluation uses",
            "options": sampling_options(METHODS[method].options_type()),  # the defaults it ran with: a job with others is not calibrated
            "pooling_sd_voxels": POOLING_SD_VOXELS,  # the spread is pooled before the factor
            "scales": scales,  # samples -> acquisition -> factor -> factor on the standard deviation
            "command": f"benchmarks/calibrate_variance.py --samples {args.samples}",
        }
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    write_results(
        FIT,
        "Variance calibration, fitted on a training scan",
        f"The whole of {CALIBRATION_SCAN}; per case and sample count the factor c on the samples' standard deviation that "
        f"puts {LEVEL:.0%} of the head's voxels within mean +- 1.645 c sigma (written into each model card), pooled over the "
        f"disjoint runs of that many of the {args.samples} samples (runs).",
        rows,
        {},
        [f"Reproduce: `.venv/bin/python benchmarks/calibrate_variance.py --methods {args.methods} --samples {args.samples}` "
         "(the other methods' rows and cards stand as fitted before, on the central slab their case names show: pooling_sd_voxels 0 is their raw spread)."],
    )


if __name__ == "__main__":
    main()
