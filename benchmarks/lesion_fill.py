"""Lesion filling on healthy volumes with synthetic lesions (the truth under the mask is known).

    .venv/bin/python benchmarks/lesion_fill.py

Ellipsoidal lesions of radius 3, 6 and 10 mm are placed in white and grey matter (MNI152 with
its tissue probability maps; the held-out seg3D_MR with multi-Otsu classes when the development
data is present); every fill replaces the voxels under the mask, and the error against the
original is measured there. Writes benchmarks/results/studies/lesion_fill/results.{json,md} and a PNG.
"""
from __future__ import annotations

import json
import time

import numpy as np

from inference_backend.data.datasets import (
    SOURCE_CHECKOUT,
    load_mni152,
    package_data_file,
    shared_data_dir,
)
from inference_backend.evaluation.panels import Tile, save_panel
from inference_backend.evaluation.synthetic_lesions import RADII_MM, otsu_tissues, synthetic_lesions
from inference_backend.imaging.io import read_volume
from inference_backend.methods.lesion_fill import FILLS


def mni_tissues() -> dict[str, np.ndarray]:
    maps = {}
    for tissue, code in (("white matter", "wm"), ("grey matter", "gm")):
        path = package_data_file("nilearn", f"datasets/data/mni_icbm152_{code}_tal_nlin_sym_09a_converted.nii.gz")
        maps[tissue] = read_volume(path).array >= 128
    return maps


def evaluate(name: str, array: np.ndarray, spacing: tuple[float, ...], tissues: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[list[dict], dict]:
    span = float(np.percentile(array[array > 0], 99.5))
    rows, example = [], {}
    for tissue_name, radius, mask in synthetic_lesions(tissues, spacing, rng):
        row = {"volume": name, "tissue": tissue_name, "radius_mm": radius, "voxels": int(mask.sum())}
        for fill_name, fill in FILLS.items():
            started = time.perf_counter()
            filled = fill(array, mask)
            error = filled[mask] - array[mask]
            row[f"{fill_name}_mae_pct"] = round(100 * float(np.abs(error).mean()) / span, 3)
            row[f"{fill_name}_s"] = round(time.perf_counter() - started, 3)
            if tissue_name == "white matter" and radius == RADII_MM[-1] and name == "mni152":
                example[fill_name] = filled
                example["mask"], example["original"] = mask, array
        rows.append(row)
    return rows, example


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["volume"], row["tissue"], row["radius_mm"]), []).append(row)
    summary = []
    for (volume, tissue, radius), members in groups.items():
        entry = {"volume": volume, "tissue": tissue, "radius_mm": radius, "lesions": len(members)}
        for fill_name in FILLS:
            entry[f"{fill_name}_mae_pct"] = round(float(np.mean([m[f"{fill_name}_mae_pct"] for m in members])), 2)
        summary.append(entry)
    return summary


def main() -> None:
    rng = np.random.default_rng(0)
    mni = load_mni152()
    rows, example = evaluate("mni152", mni.array, mni.grid.spacing, mni_tissues(), rng)
    data = shared_data_dir()
    if data is not None:
        scan = read_volume(data / "real" / "seg3D_MR.nii.gz")
        more, _ = evaluate("seg3D_MR", scan.array.astype(np.float32), scan.grid.spacing, otsu_tissues(scan.array.astype(np.float32)), rng)
        rows += more
    out = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "lesion_fill"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    (out / "results.json").write_text(json.dumps({"summary": summary, "lesions": rows}, indent=2) + "\n")
    header = "| volume | tissue | radius (mm) | lesions | " + " | ".join(f"{f} MAE (% of range)" for f in FILLS) + " |"
    lines = ["# Lesion filling on synthetic lesions (truth known)", "", "Mean absolute error inside the mask, in % of the 99.5th intensity percentile. Lower is better.", "", header, "|" + "---|" * (4 + len(FILLS))]
    for entry in summary:
        lines.append(f"| {entry['volume']} | {entry['tissue']} | {entry['radius_mm']} | {entry['lesions']} | " + " | ".join(str(entry[f"{f}_mae_pct"]) for f in FILLS) + " |")
    lines += ["", "![example](example.png)", "", "Reproduce: `.venv/bin/python benchmarks/lesion_fill.py`."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    if example:
        centre = np.argwhere(example["mask"]).mean(axis=0).astype(int)
        cut = lambda a: np.rot90(a[:, centre[1], :])  # noqa: E731 - coronal view through the lesion
        low, high = np.percentile(example["original"], [0.5, 99.5])
        tiles = [Tile("original", cut(example["original"]), vmin=low, vmax=high), Tile("mask (10 mm, WM)", cut(example["mask"]).astype(float), cmap="magma")]
        tiles += [Tile(name, cut(example[name]), vmin=low, vmax=high) for name in FILLS]
        save_panel(out / "example.png", [tiles], suptitle="Synthetic white-matter lesion on MNI152, filled")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
