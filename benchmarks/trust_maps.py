"""How far the trust maps can be trusted: the uncertainty overlay's tint rule, the consistency
map's warning level, and how well the uncertainty ranks the error, on whole volumes.

    .venv/bin/python benchmarks/trust_maps.py [--methods res-srdiff,msp-sr] [--samples 4] [--scans ...] [--update]

Cases: the tuning volumes, where the levels are chosen (chris_t1, a training scan, and spm152,
which no model saw; 4 mm slices), and the held-out ones, where they are only measured
(seg3D_MR at 4 mm; ms_p07 FLAIR and stroke T2 at 5 mm). Per case and stochastic method (with
``--samples``):

* the overlay: for each candidate tint rule (a fixed level of 1 SD in % of the head's median
  intensity, or a multiple of the head's median SD), the share of the head tinted, how much larger
  the error is where it tints than where it does not, and the share of the largest errors it tints;
* the ranking: Spearman's correlation between each voxel's SD and its absolute error in the head,
  beside other predictors of the error (the samples' spread before it is pooled over each voxel's
  neighbours, pooled twice as wide, the map two of the samples give (against their own mean's
  error: does the ranking grow with the samples?), the detail the method added over B-spline,
  SD + detail, the consistency residual brought onto the result's grid, and the SD combined with
  it), and the coverage of the map's 90% interval (mean +- 1.645 SD);
* the consistency map of every result, B-spline's too, and of the result with a lesion erased
  and with its intensity shifted by 5% (what the map must catch).

Writes benchmarks/results/studies/trust-maps/results.{json,md}; ``--update`` keeps the earlier rows
of the scans not run again, and the results list every command that made them.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from scipy import ndimage, stats

from inference_backend.data.datasets import SOURCE_CHECKOUT, shared_data_dir
from inference_backend.evaluation.benchmark import real_scans, run_case
from inference_backend.evaluation.calibration import coverage
from inference_backend.evaluation.cases import Case, through_plane_case
from inference_backend.evaluation.report import commands_so_far, markdown_table, reproduce_line, write_document
from inference_backend.imaging.resampling import resample
from inference_backend.imaging.target import Refinement
from inference_backend.imaging.uncertainty import notable_level, sd_percent
from inference_backend.methods.variance_calibration import POOLING_SD_VOXELS, pooled
from inference_backend.operators.consistency_map import consistency_map

OUT = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "trust-maps"
LEVELS = (5.0, 10.0, 15.0, 20.0, 25.0)  # candidate fixed tint levels, % of the head's median intensity
RELATIVE = (1.5, 2.0, 3.0)  # candidate levels relative to the head's median SD
TUNING = (("chris_t1", 4, None), ("spm152", 4, None))
HELD_OUT = (("seg3D_MR", 4, None), ("ms_p07_FLAIR", 5, None), ("stroke_T2", 5, None))
# the consistency residual's weight beside the variance, sqrt(variance + w * pooled residual^2): the
# best of 1, 4 and 16 on the tuning scans (+0.002 and +0.008 over the SD alone there)
CONSISTENCY_WEIGHT = 16.0


def cases(scans: tuple) -> list[Case]:
    volumes = real_scans(tuple(scan for scan, _, _ in scans))
    return [through_plane_case(f"{scan}_x{factor}", volumes[scan], factor, thickness_mm=thickness) for scan, factor, thickness in scans]


def rank(reference: np.ndarray, estimate: np.ndarray, predictor: np.ndarray, head: np.ndarray) -> float:
    return round(float(stats.spearmanr(predictor[head], np.abs(estimate - reference)[head]).statistic), 4)


def overlay_rows(case: Case, method: str, estimate: np.ndarray, variance: np.ndarray) -> list[dict]:
    """Per tint rule: the share of the head tinted, how much larger the error is where it tints
    than where it does not, and the share of the largest errors (the head's top 10%) it tints.
    Rules: a fixed level (1 SD in % of the head's median intensity), or a multiple of the head's
    median SD (notable against this result's own typical uncertainty)."""
    head = case.mask
    percent = sd_percent(variance, estimate)
    error = np.abs(estimate - case.reference.array)
    largest = head & (error >= np.percentile(error[head], 90))
    typical = float(np.median(percent[head]))
    rules = [(f"{level:g}%", level) for level in LEVELS] + [(f"{k:g}x median SD ({k * typical:.1f}%)", k * typical) for k in RELATIVE]
    rules.append((f"the overlay's rule ({notable_level(percent):.1f}%)", notable_level(percent)))
    rows = []
    for rule, level in rules:
        tinted = (percent >= level) & head
        inside, outside = error[tinted], error[head & ~tinted]
        ratio = float(inside.mean() / outside.mean()) if inside.size and outside.size else float("nan")
        rows.append({"case": case.name, "method": method, "rule": rule, "tinted_share_of_head": round(float(tinted.sum() / head.sum()), 4),
                     "error_ratio_tinted_vs_not": round(ratio, 2), "largest_errors_tinted": round(float((tinted & largest).sum() / largest.sum()), 4)})  # fmt: skip
    return rows


def consistency_row(role: str, case: Case, result: str, summary: dict) -> dict:
    return {"role": role, "case": case.name, "result": result, "rms_sd": summary["rms_sd"], "beyond_3sd": summary["beyond_3sd_share"]}


def erased_lesion(estimate: np.ndarray, head: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The result with a bright 6 mm structure inside the head replaced by its surroundings."""
    smooth = ndimage.gaussian_filter(estimate, 1.0)
    candidates = np.argwhere(ndimage.binary_erosion(head, iterations=12) & (smooth > np.percentile(smooth[head], 85)))
    centre = candidates[rng.integers(len(candidates))]
    grid = np.ogrid[tuple(slice(0, n) for n in estimate.shape)]
    lesion = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= 3**2
    erased = estimate.copy()
    erased[lesion] = np.median(estimate[ndimage.binary_dilation(lesion, iterations=3) & ~lesion]) * 0.7
    return erased, lesion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="res-srdiff,msp-sr")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--scans", default="", help="only the scans whose name contains one of these (comma-separated)")
    parser.add_argument("--update", action="store_true", help="keep the earlier rows of the scans not run again")
    args = parser.parse_args()
    if shared_data_dir() is None:
        raise SystemExit("needs the development data (../shared/data)")
    rng = np.random.default_rng(0)
    wanted = [p for p in args.scans.split(",") if p]
    chosen = [scan for scan in TUNING + HELD_OUT if not wanted or any(w in scan[0] for w in wanted)]
    rerun = {f"{scan}_x{factor}" for scan, factor, _ in chosen}
    earlier = json.loads((OUT / "results.json").read_text()) if args.update else {}
    overlay, ranking, consistency = ([row for row in earlier.get(table, []) if row["case"] not in rerun] for table in ("overlay", "ranking", "consistency"))
    commands = commands_so_far("benchmarks/trust_maps.py", earlier)
    for role, scans in (("tuning", TUNING), ("held out", HELD_OUT)):
        for case in cases(tuple(scan for scan in scans if scan in chosen)):
            refinement = Refinement(case.degraded.grid, case.reference.grid, case.slice_thickness)
            bspline = run_case(case, "interpolation", {"kind": "bspline"}, 1, "cpu")[0].sr.array
            summary = consistency_map(case.reference.with_array(bspline), case.degraded, refinement).summary
            consistency.append(consistency_row(role, case, "B-spline", summary))
            for method in args.methods.split(","):
                outputs = run_case(case, method, {}, args.samples, "cpu", keep_samples=True)[0]
                estimate, variance = outputs.sr.array, outputs.variance.array
                overlay += [dict(row, role=role) for row in overlay_rows(case, method, estimate, variance)]
                detail = np.abs(estimate - bspline)
                spread, pair = outputs.samples.var(axis=0), outputs.samples[:2]
                head, reference = case.mask, case.reference.array
                contradiction = consistency_map(case.reference.with_array(estimate), case.degraded, refinement)
                residual = resample(contradiction.residual, case.reference.grid, "linear").array * contradiction.summary["noise_sd"]
                with_consistency = np.sqrt(variance + CONSISTENCY_WEIGHT * pooled(residual**2, POOLING_SD_VOXELS))
                ranking.append({"role": role, "case": case.name, "method": method, "spearman_sd": rank(reference, estimate, np.sqrt(variance), head),
                                "spearman_unpooled_spread": rank(reference, estimate, spread, head),
                                "spearman_pooled_2_voxels": rank(reference, estimate, pooled(spread, 2 * POOLING_SD_VOXELS), head),
                                "spearman_sd_2_samples": rank(reference, pair.mean(axis=0), pooled(pair.var(axis=0), POOLING_SD_VOXELS), head),
                                "spearman_detail": rank(reference, estimate, detail, head),
                                "spearman_sd_plus_detail": rank(reference, estimate, np.sqrt(variance) + detail, head),
                                "spearman_consistency": rank(reference, estimate, np.abs(residual), head),
                                "spearman_sd_with_consistency": rank(reference, estimate, with_consistency, head),
                                "coverage_90": round(coverage(reference, estimate, variance, head), 4)})  # fmt: skip
                consistency.append(consistency_row(role, case, f"{method}: result", contradiction.summary))
                for label, result in (("lesion erased", erased_lesion(estimate, head, rng)[0]), ("intensity +5%", estimate * 1.05)):
                    summary = consistency_map(case.reference.with_array(result), case.degraded, refinement).summary
                    consistency.append(consistency_row(role, case, f"{method}: {label}", summary))
                print(overlay[-len(LEVELS) - len(RELATIVE) - 1:], ranking[-1], consistency[-3:], flush=True)
    lines = ["# Trust maps on whole volumes", "", __doc__.split("\n\n", 2)[2].split("Writes")[0].strip(), "",
             "## The overlay's tint level", "", *markdown_table(overlay), "", "## How the uncertainty ranks the error", "", *markdown_table(ranking), "",
             "## The consistency map", "", *markdown_table(consistency), "",
             reproduce_line(commands)]  # fmt: skip
    results = {"overlay": overlay, "ranking": ranking, "consistency": consistency, "samples": args.samples, "commands": commands}
    print(write_document(OUT, results, lines))


if __name__ == "__main__":
    main()
