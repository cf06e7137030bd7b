"""The ``clinical-real`` suite: the methods on real clinical 2D scans, measured against slices
the scanner really acquired.

    .venv/bin/python benchmarks/clinical_real.py [--methods "interpolation:kind=bspline res-srdiff msp-sr"]
                                                 [--scans p03,p12] [--contrasts FLAIR,T2W] [--slice-drop-only | --whole-scans-only]
                                                 [--update] [--panels] [--out FOLDER]

Every scan of ``../shared/data/clinical`` (FLAIR and T2 with 3-4 mm slices, T1 with 3 mm):

* **slice-drop** (inference_backend/evaluation/slice_drop.py): every other acquired slice
  removed (factor 2), and two of every three where the scan has 40 slices or more (factor 3);
  the rest super-resolved onto a grid about 1 mm fine along the slice axis (the slice thickness
  given: the removed slices leave gaps), averaged over each acquired slice's slab and scored at
  the removed slices against what the scanner measured;
* **consistency** of each method's result on the whole scan, 3x finer along the slice axis,
  with its acquired slices (inference_backend/operators/consistency_map.py): RMS and the share
  of head voxels beyond 3 noise SDs; and the share of negative voxels (a magnitude image has none);
* **two visits**: the patients scanned twice in one contrast, the two results of the whole
  scans registered rigidly: do they agree better than the two B-spline ones? And, since a
  smoother pair agrees more whether or not it is right: how well does each visit's result,
  moved onto the other visit and averaged over that visit's slabs, predict the slices the
  scanner acquired there (PSNR, both directions averaged)?

Patients p03 and p12 are held out of every training (inference_backend/data/clinical.py); their
rows are the ones the targets are read on. ``--panels`` adds, for a held-out FLAIR and T2,
the input's slices, B-spline, the default with its consistency and variance (4 samples).
Writes benchmarks/results/clinical-real/results.{json,md} and the panels.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from inference_backend.data.clinical import HELD_OUT_PATIENTS, ClinicalScan, clinical_scans
from inference_backend.data.datasets import SOURCE_CHECKOUT, shared_data_dir
from inference_backend.evaluation.benchmark import Entry
from inference_backend.evaluation.panels import Tile, save_panel
from inference_backend.evaluation.report import commands_so_far, markdown_table, reproduce_line, write_document
from inference_backend.evaluation.slice_drop import rigid_transform, slice_drop, slice_drop_scores, two_visit_agreement, two_visit_prediction
from inference_backend.imaging.io import read_volume
from inference_backend.imaging.uncertainty import sd_percent, tint_range
from inference_backend.imaging.volume import Volume
from inference_backend.job import JobOptions
from inference_backend.pipeline import process

OUT = SOURCE_CHECKOUT / "benchmarks" / "results" / "clinical-real"
DEFAULT_METHODS = "interpolation:kind=bspline res-srdiff msp-sr"
FACTOR_3_MIN_SLICES = 40
WHOLE_SCAN_REFINEMENT = 3  # the whole scans: 3x finer along the slice axis
PANEL_SCANS = ("p03_v1_FLAIR", "p12_v1_T2W")


def run(volume: Volume, entry: Entry, options: JobOptions):
    started = time.perf_counter()
    outputs = process(volume, replace(options, method=entry.method, method_options=entry.options))
    return outputs, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--scans", default="", help="only these patients (e.g. p03,p12)")
    parser.add_argument("--contrasts", default="", help="only these contrasts (FLAIR, T1W, T2W)")
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument("--slice-drop-only", action="store_true", help="factor 2 slice-drop only: no whole scans, no two visits")
    parts.add_argument("--whole-scans-only", action="store_true", help="the whole scans and two visits only: no slice-drop")
    parser.add_argument("--update", action="store_true", help="keep the earlier results' rows of other methods and scans")
    parser.add_argument("--panels", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    out = args.out
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs the development data (../shared/data): skipped")
    entries = [Entry.parse(text) for text in args.methods.split()]
    patients = tuple(p for p in args.scans.split(",") if p) or None
    earlier = json.loads((out / "results.json").read_text()) if args.update and (out / "results.json").exists() else {}
    labels = {entry.label for entry in entries}

    contrasts = tuple(c for c in args.contrasts.split(",") if c) or None

    def kept(row: dict) -> bool:  # an earlier row this run does not measure again
        return row["method"] not in labels or bool(patients and row["patient"] not in patients) or bool(contrasts and row["contrast"] not in contrasts)

    rows = [row for row in earlier.get("slice_drop", []) if kept(row) or args.whole_scans_only]
    whole = [row for row in earlier.get("whole_scan", []) if kept(row) or args.slice_drop_only]
    results: dict[tuple[str, str], Volume] = {}  # (scan, method) -> whole-scan result
    acquired_scans: dict[str, Volume] = {}  # scan -> what the scanner acquired, for the scans run whole
    scans = clinical_scans(data, patients, contrasts)
    for scan in scans:
        acquired = read_volume(scan.path)
        acquired = acquired.with_array(acquired.array.astype(np.float32))
        held_out = scan.patient in HELD_OUT_PATIENTS
        three = acquired.grid.size[int(np.argmax(acquired.grid.spacing))] >= FACTOR_3_MIN_SLICES and not args.slice_drop_only
        for factor in () if args.whole_scans_only else (2, 3) if three else (2,):
            drop = slice_drop(acquired, factor)
            options = JobOptions(target=drop.target, slice_thickness=drop.thickness_mm)
            for entry in entries:
                outputs, seconds = run(drop.kept, entry, options)
                rows.append({"scan": scan.name, "patient": scan.patient, "contrast": scan.contrast, "held_out": held_out, "factor": factor,
                             "method": entry.label, **slice_drop_scores(drop, outputs.sr), "seconds": round(seconds, 1)})  # fmt: skip
                print(rows[-1], flush=True)
        if args.slice_drop_only:
            continue
        axis = int(np.argmax(acquired.grid.spacing))
        scale = tuple(float(WHOLE_SCAN_REFINEMENT) if a == axis else 1.0 for a in range(3))
        acquired_scans[scan.name] = acquired
        for entry in entries:
            outputs, seconds = run(acquired, entry, JobOptions(scale=scale))
            results[(scan.name, entry.label)] = outputs.sr
            consistency = outputs.report["consistency"]
            whole.append({"scan": scan.name, "patient": scan.patient, "contrast": scan.contrast, "held_out": held_out, "method": entry.label,
                          "consistency_rms_sd": consistency["rms_sd"], "beyond_3sd_share": consistency["beyond_3sd_share"],
                          "negative_share": round(float((outputs.sr.array < 0).mean()), 6), "seconds": round(seconds, 1)})  # fmt: skip
            print(whole[-1], flush=True)
    visits = [row for row in earlier.get("two_visits", []) if kept(row) or args.slice_drop_only] + two_visits(scans, entries, results, acquired_scans)
    summary = summarise(rows)
    commands = commands_so_far("benchmarks/clinical_real.py", earlier)
    if args.panels:
        panels(scans, out)
    lines = [
        "# Benchmark suite `clinical-real`: real clinical 2D scans", "", __doc__.split("\n\n", 2)[2].split("Writes")[0].strip(), "",
        "## Slice-drop: the default's gain over B-spline, mean over the scans (held-out patients apart)", "", *markdown_table(summary, "(no slice-drop run)"), "",
        "## Slice-drop, every scan", "", *markdown_table(rows, "(no slice-drop run)"), "",
        "## The whole scans: consistency with the acquired slices, negative voxels", "", *markdown_table(whole, "(no whole scan run)"), "",
        "## Two visits: agreement of the registered pair (PSNR / SSIM outside the 2% of the head that changed most), and how well each visit's",
        "result predicts the slices the other visit acquired (`*_predicts_psnr`, both directions averaged)", "",
        *markdown_table(visits, "(no patient with two visits of a contrast among the scans run)"), "",
        *([f"![{name}]({name}.png)" for name in PANEL_SCANS] if args.panels or earlier.get("panels") else []), "",
        reproduce_line(commands),
    ]  # fmt: skip
    data_out = {"slice_drop": rows, "whole_scan": whole, "two_visits": visits, "summary": summary, "panels": bool(args.panels or earlier.get("panels")),
                "commands": commands}  # fmt: skip
    print(write_document(out, data_out, lines))


def summarise(rows: list[dict]) -> list[dict]:
    """Per method, contrast, factor and held-out status: the mean gain over B-spline on the same scans."""
    baseline = {(r["scan"], r["factor"]): r for r in rows if r["method"] == "bspline"}
    groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        base = baseline.get((row["scan"], row["factor"]))
        if row["method"] == "bspline" or base is None:
            continue
        groups[(row["method"], row["contrast"], row["factor"], row["held_out"])].append((row["psnr"] - base["psnr"], row["ssim"] - base["ssim"]))
    return [
        {"method": method, "contrast": contrast, "factor": factor, "patients": "held out" if held_out else "training",
         "scans": len(gains), "psnr_gain_db": round(float(np.mean([g for g, _ in gains])), 3),
         "ssim_gain": round(float(np.mean([s for _, s in gains])), 4), "worst_psnr_gain_db": round(float(min(g for g, _ in gains)), 3),
         "worst_ssim_gain": round(float(min(s for _, s in gains)), 4)}
        for (method, contrast, factor, held_out), gains in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1], item[0][2], not item[0][3]))
    ]  # fmt: skip


def two_visits(scans: list[ClinicalScan], entries: list[Entry], results: dict[tuple[str, str], Volume], acquired: dict[str, Volume]) -> list[dict]:
    """Per patient with two visits of a contrast and per learned method: the registered pair's
    agreement, and how well each visit's result predicts the other visit's acquired slices."""
    by_contrast: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for scan in scans:
        by_contrast[(scan.patient, scan.contrast)][scan.visit] = scan.name
    rows = []
    for (patient, contrast), names in sorted(by_contrast.items()):
        if len(names) < 2 or (names[1], "bspline") not in results:
            continue
        first, second = names[1], names[2]
        transform = rigid_transform(results[(first, "bspline")], results[(second, "bspline")])  # first's points into second's
        for entry in entries:
            if entry.label == "bspline":
                continue
            scores = two_visit_agreement(results[(first, entry.label)], results[(second, entry.label)],
                                         results[(first, "bspline")], results[(second, "bspline")], transform)  # fmt: skip
            made = {name: {"result": results[(name, entry.label)], "bspline": results[(name, "bspline")]} for name in (first, second)}
            predicted = two_visit_prediction((acquired[first], acquired[second]), (made[first], made[second]), transform)
            scores |= {f"{key}_predicts_psnr": value for key, value in predicted.items()}
            rows.append({"patient": patient, "contrast": contrast, "method": entry.label, **scores})
            print(rows[-1], flush=True)
    return rows


def panels(scans: list, out: Path) -> None:
    """Held-out scans: coronal cuts of the input, B-spline, the default (mean of 4 samples), where
    it contradicts the acquired slices and its uncertainty."""
    out.mkdir(parents=True, exist_ok=True)
    for scan in scans:
        if scan.name not in PANEL_SCANS:
            continue
        acquired = read_volume(scan.path)
        acquired = acquired.with_array(acquired.array.astype(np.float32))
        axis = int(np.argmax(acquired.grid.spacing))
        scale = tuple(float(WHOLE_SCAN_REFINEMENT) if a == axis else 1.0 for a in range(3))
        bspline = process(acquired, JobOptions(method="interpolation", scale=scale)).sr.array
        default = process(acquired, JobOptions(scale=scale, samples=4))
        along = 1 if axis != 1 else 0  # a cut that holds the slice axis
        column = acquired.grid.size[along] // 2
        cut = lambda volume, column=column, along=along: np.rot90(np.take(volume, column, axis=along))  # noqa: E731
        low, high = np.percentile(acquired.array, [1, 99.5])
        ratio = acquired.grid.spacing[axis] / acquired.grid.spacing[0]
        percent = sd_percent(default.variance.array, default.sr.array)
        save_panel(out / f"{scan.name}.png", [[
            Tile(f"acquired ({acquired.grid.spacing[axis]:g} mm slices)", cut(acquired.array), vmin=low, vmax=high, aspect=ratio),
            Tile("B-spline", cut(bspline), vmin=low, vmax=high, aspect=1 / WHOLE_SCAN_REFINEMENT * ratio),
            Tile(f"default ({default.report['method']}, 4 samples)", cut(default.sr.array), vmin=low, vmax=high, aspect=ratio / WHOLE_SCAN_REFINEMENT),
            Tile("result - acquired (noise SDs)", cut(default.consistency.array), cmap="coolwarm", vmin=-6, vmax=6, aspect=ratio),
            Tile("uncertainty", cut(default.sr.array), vmin=low, vmax=high, aspect=ratio / WHOLE_SCAN_REFINEMENT, overlay=cut(percent),
                 overlay_range=tint_range(percent), overlay_label="1 SD, % of median head intensity"),
        ]], suptitle=f"{scan.name} (held-out patient): real {acquired.grid.spacing[axis]:g} mm slices, coronal cut")  # fmt: skip


if __name__ == "__main__":
    main()
