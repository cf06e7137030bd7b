"""Does super-resolution keep lesions, erase them, or invent them? Scores against the truth.

* **Contrast kept**, per lesion (a connected component of the lesion mask): the lesion's mean
  minus the mean of a 2-voxel shell of tissue around it, in the result, over the same in the
  truth (1: kept; below 0.5: **erased**). Small lesions (at most 30 voxels) are reported apart.
* **Lesion PSNR**: inside the lesions grown by one voxel.
* **A simple downstream segmentation**, the same rule on the truth, on B-spline and on every
  method: voxels beyond 3 robust standard deviations from the region's median (brighter for
  FLAIR/T2 lesions, darker for T1 lesions), in components of at least 3 voxels, within a region
  (the brain; for T1 its white matter, where dark CSF is not a lesion). Components of the result
  that touch none of the truth's are **invented blobs** (lesion-like structures the truth lacks);
  detection F1 counts the truth's components touched and the result's that touch nothing; the
  volume error is relative to the truth's segmented volume.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SHELL_VOXELS = 2
ERASED_BELOW = 0.5
SMALL_VOXELS = 30
RULE_SDS = 3.0
MIN_COMPONENT = 3
CONNECTIVITY = ndimage.generate_binary_structure(3, 3)


@dataclass(frozen=True)
class LesionTruth:
    """Where the lesions are (on the reference grid), which way they differ from tissue, and the
    region the segmentation rule runs in."""

    mask: np.ndarray
    polarity: int  # +1: brighter than the tissue around (FLAIR, T2), -1: darker (T1)
    region: np.ndarray


def lesion_contrasts(truth: np.ndarray, result: np.ndarray, lesions: LesionTruth) -> list[tuple[int, int, float]]:
    """(label, voxels, contrast kept) of every lesion with a measurable contrast in the truth
    (labels: ``ndimage.label(lesions.mask, CONNECTIVITY)``'s)."""
    labels, _ = ndimage.label(lesions.mask, structure=CONNECTIVITY)
    found = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        grown = tuple(slice(max(0, s.start - SHELL_VOXELS - 1), s.stop + SHELL_VOXELS + 1) for s in box)
        lesion = labels[grown] == index
        shell = ndimage.binary_dilation(lesion, iterations=SHELL_VOXELS) & ~lesions.mask[grown]  # tissue, no other lesion
        if shell.sum() < 3:
            continue
        contrast = float(truth[grown][lesion].mean() - truth[grown][shell].mean())
        if contrast * lesions.polarity <= 0:
            continue  # no contrast in the truth to keep (a mask drawn on another contrast)
        kept = float(result[grown][lesion].mean() - result[grown][shell].mean()) / contrast
        found.append((index, int(lesion.sum()), kept))
    return found


def segment(volume: np.ndarray, lesions: LesionTruth) -> np.ndarray:
    """The downstream rule: beyond RULE_SDS robust SDs from the region's median, in components
    of at least MIN_COMPONENT voxels."""
    values = volume[lesions.region]
    median = float(np.median(values))
    robust_sd = 1.4826 * float(np.median(np.abs(values - median)))
    beyond = (volume - median) * lesions.polarity > RULE_SDS * robust_sd
    labels, count = ndimage.label(beyond & lesions.region, structure=CONNECTIVITY)
    if count == 0:
        return np.zeros(volume.shape, bool)
    sizes = ndimage.sum(np.ones(volume.shape), labels, index=np.arange(1, count + 1))
    return np.isin(labels, np.flatnonzero(sizes >= MIN_COMPONENT) + 1)


def detection(truth_segmentation: np.ndarray, result_segmentation: np.ndarray) -> dict[str, float]:
    """Component-level detection of the truth's segmentation in the result's."""
    truth_labels, truth_count = ndimage.label(truth_segmentation, structure=CONNECTIVITY)
    result_labels, result_count = ndimage.label(result_segmentation, structure=CONNECTIVITY)
    detected = len(np.unique(truth_labels[result_segmentation & (truth_labels > 0)]))
    matched = len(np.unique(result_labels[truth_segmentation & (result_labels > 0)]))
    invented = result_count - matched
    missed = truth_count - detected
    f1 = 2 * detected / max(2 * detected + invented + missed, 1)
    volume = float(truth_segmentation.sum())
    return {"f1": round(f1, 4), "invented_blobs": int(invented), "missed_blobs": int(missed),
            "volume_error": round(abs(float(result_segmentation.sum()) - volume) / max(volume, 1.0), 4)}  # fmt: skip


def lesion_scores(truth: np.ndarray, result: np.ndarray, lesions: LesionTruth, head: np.ndarray) -> dict[str, float]:
    """Every lesion score of ``result`` against ``truth``."""
    contrasts = lesion_contrasts(truth, result, lesions)
    kept = np.array([k for _, _, k in contrasts])
    small = np.array([k for _, voxels, k in contrasts if voxels <= SMALL_VOXELS])
    grown = ndimage.binary_dilation(lesions.mask, iterations=1)
    span = float(truth[head].max() - truth[head].min())
    mse = float(np.mean((truth[grown].astype(np.float64) - result[grown]) ** 2))
    scores = {
        "lesions": len(contrasts),
        "contrast_kept_median": round(float(np.median(kept)), 4) if kept.size else float("nan"),
        "small_lesions": int(small.size),
        "small_contrast_kept_median": round(float(np.median(small)), 4) if small.size else float("nan"),
        "erased": int((kept < ERASED_BELOW).sum()),
        "lesion_psnr": round(10 * np.log10(span**2 / mse), 3) if mse > 0 else float("inf"),
    }
    return scores | detection(segment(truth, lesions), segment(result, lesions))


def erased_labels(truth: np.ndarray, result: np.ndarray, lesions: LesionTruth) -> set[int]:
    """The lesions (labels) the result erases."""
    return {label for label, _, kept in lesion_contrasts(truth, result, lesions) if kept < ERASED_BELOW}
