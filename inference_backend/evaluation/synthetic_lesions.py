"""Synthetic lesions in healthy scans, where the truth under every lesion is known: ellipsoids
placed in a tissue class (white matter from a probability map or multi-Otsu classes), for
lesion filling and for measuring whether super-resolution keeps, erases or invents lesions."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_multiotsu

RADII_MM = (3, 6, 10)
PLACEMENTS = 3  # lesions per tissue and radius


def otsu_tissues(array: np.ndarray) -> dict[str, np.ndarray]:
    """White = brightest, grey = middle of three classes inside the head (T1-weighted)."""
    low, high = threshold_multiotsu(array[array > np.percentile(array, 30)], classes=3)
    return {"white matter": ndimage.binary_erosion(array >= high, iterations=1), "grey matter": (array >= low) & (array < high)}


def ellipsoid(shape: tuple[int, ...], centre: np.ndarray, radii_vox: np.ndarray) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii_vox)) <= 1.0


def place_lesions(
    tissue: np.ndarray, spacing: tuple[float, ...], radius_mm: float, rng: np.random.Generator, minimum_overlap: float,
    count: int = PLACEMENTS,
) -> list[np.ndarray]:
    """Up to ``count`` ellipsoids of about ``radius_mm`` (each radius 70-130% of it) centred in
    ``tissue`` and lying in it for at least ``minimum_overlap`` of their voxels."""
    candidates = np.argwhere(ndimage.binary_erosion(tissue, iterations=2))
    lesions, attempts = [], 0
    while len(lesions) < count and attempts < 500:
        attempts += 1
        centre = candidates[rng.integers(len(candidates))]
        radii = radius_mm * rng.uniform(0.7, 1.3, 3) / np.asarray(spacing)
        mask = ellipsoid(tissue.shape, centre, radii)
        if mask.sum() >= 7 and (tissue[mask].mean() >= minimum_overlap):
            lesions.append(mask)
    return lesions


def synthetic_lesions(tissues: dict[str, np.ndarray], spacing: tuple[float, ...], rng: np.random.Generator) -> Iterator[tuple[str, int, np.ndarray]]:
    """(tissue, radius in mm, mask) of every lesion: mostly inside white matter, and inside grey
    matter for small ones; large grey-matter lesions need only 40% overlap (the cortex is thin)."""
    for tissue_name, tissue in tissues.items():
        for radius in RADII_MM:
            overlap = 0.8 if tissue_name == "white matter" or radius <= 3 else 0.4
            for mask in place_lesions(tissue, spacing, radius, rng, overlap):
                yield tissue_name, radius, mask
