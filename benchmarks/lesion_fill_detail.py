"""Does the InverseSR prior know anything inside a lesion that the neighbourhood fill does not?

    .venv/bin/python benchmarks/lesion_fill_detail.py

InverseSR's fill is the neighbourhood (biharmonic) fill N plus the decoder's detail D (what the
decoder puts inside the lesion beyond the biharmonic continuation of its own surroundings; the
fills are linear in the data, so I = N + D exactly). D helps only as far as it correlates with
what N misses, R = truth - N: the best shrunken fill N + lambda D has lambda = <D, R> / <D, D>.
Pooled over all lesions, the best lambda per distance from the lesion's border says how far
inside the prior still knows something. Synthetic lesions (as in benchmarks/lesion_fill.py,
another seed) on the tuning scans spm152 (no model trained on it) and chris_t1 (the prior did).
Writes benchmarks/results/studies/lesion_fill_detail/results.{json,md}.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from inference_backend.data.datasets import SOURCE_CHECKOUT, shared_data_dir
from inference_backend.evaluation.report import markdown_table, write_results
from inference_backend.evaluation.synthetic_lesions import otsu_tissues, synthetic_lesions
from inference_backend.imaging.io import read_volume
from inference_backend.methods.lesion_fill import fill_inverse_sr, fill_neighbourhood

SCANS = ("spm152", "chris_t1")
BORDER_BINS_VOXELS = (0, 1, 2, 3, 4, 6, np.inf)  # the prior works on voxels, so distances in voxels
SHRINKAGE = (0.0, 0.25, 0.5, 1.0)


def lesion_row(array: np.ndarray, mask: np.ndarray, span: float, pooled: list[np.ndarray]) -> dict:
    """One lesion's scores; appends (what N misses, D, distance to the border) to ``pooled``."""
    truth, neighbourhood = array[mask], fill_neighbourhood(array, mask)[mask]
    detail = fill_inverse_sr(array, mask)[mask] - neighbourhood
    missed = truth - neighbourhood
    pooled.append(np.stack([missed / span, detail / span, ndimage.distance_transform_edt(mask)[mask]]))
    row = {
        "voxels": int(mask.sum()),
        "correlation": round(float(np.corrcoef(detail, missed)[0, 1]), 3),
        "best_lambda": round(float((detail * missed).sum() / (detail * detail).sum()), 3),
    }
    for shrinkage in SHRINKAGE:
        row[f"mae_pct_lambda_{shrinkage:g}"] = round(100 * float(np.abs(neighbourhood + shrinkage * detail - truth).mean()) / span, 3)
    return row


def best_lambda_by_border_distance(pooled: list[np.ndarray]) -> list[dict]:
    missed, detail, distance = np.concatenate(pooled, axis=1)
    rows = []
    for low, high in zip(BORDER_BINS_VOXELS[:-1], BORDER_BINS_VOXELS[1:]):
        inside = (distance > low) & (distance <= high)
        lam = float((detail[inside] * missed[inside]).sum() / (detail[inside] ** 2).sum())
        rows.append({"border_distance_voxels": f"({low:g}, {high:g}]", "voxels": int(inside.sum()), "best_lambda": round(lam, 3)})
    return rows


def main() -> None:
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs the development data (../shared/data)")
    rng = np.random.default_rng(1)
    rows, pooled = [], []
    for scan_name in SCANS:
        scan = read_volume(data / "real" / f"{scan_name}.nii.gz")
        array = scan.array.astype(np.float32)
        span = float(np.percentile(array[array > 0], 99.5))
        for tissue_name, radius, mask in synthetic_lesions(otsu_tissues(array), scan.grid.spacing, rng):
            rows.append({"scan": scan_name, "tissue": tissue_name, "radius_mm": radius, **lesion_row(array, mask, span, pooled)})
            print(rows[-1], flush=True)
    by_distance = best_lambda_by_border_distance(pooled)
    markdown = write_results(
        SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "lesion_fill_detail",
        "InverseSR's detail inside synthetic lesions (tuning scans)",
        "Per lesion: correlation of the prior's detail D with what the neighbourhood fill misses, the best "
        "shrinkage lambda, and the MAE (% of the 99.5th percentile) of N + lambda D (lambda 0: the neighbourhood "
        "fill, 1: InverseSR's fill).",
        rows,
        {"scans": list(SCANS), "best_lambda_by_border_distance": by_distance},
        ["Pooled over all lesions, by distance from the lesion's border:", "", *markdown_table(by_distance), "",
         "Reproduce: `.venv/bin/python benchmarks/lesion_fill_detail.py`."],
    )
    print(markdown)


if __name__ == "__main__":
    main()
