"""Does a lesion fill look like normal tissue? Metrics for fills on real lesions (no truth inside).

On a real lesion the healthy tissue under the mask is unknown, so a fill is judged by what it is
for: downstream tools (tissue segmentation, registration, cortical reconstruction) should treat
the filled voxels as the normal-appearing white matter (NAWM) around them.

* :func:`fit_tissue_model` + :meth:`TissueModel.classify`: a 1-D Gaussian mixture of the brain's
  intensities (CSF, grey, white matter on T1, by ascending mean), the model behind FAST/SPM-style
  segmentation. Written with numpy (EM, deterministic start) so the backend needs no scikit-learn.
  Classification uses the thresholds where neighbouring weighted densities cross, so it is
  monotone in intensity (an unequal-variance argmax could label a very bright voxel as CSF).
* :func:`class_fractions` / :func:`white_matter_fraction`: where the filled voxels land.
* :func:`histogram_distance`: the 1-D Wasserstein distance between the filled voxels'
  intensities and NAWM's, in units of NAWM's standard deviation. A fill can be classified as
  white matter and still look wrong: a constant fill sits at the mean and scores
  E|X - mean| / std (sqrt(2/pi) ~ 0.80 for a normal NAWM), a fill with NAWM's texture scores ~0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TissueModel:
    """A 1-D Gaussian mixture, classes ordered by ascending mean (T1: CSF, grey, white matter)."""

    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray

    @property
    def classes(self) -> int:
        return len(self.means)

    def weighted_densities(self, values: np.ndarray) -> np.ndarray:
        """weight_k * N(value; mean_k, std_k), shape (len(values), classes)."""
        z = (np.asarray(values, dtype=np.float64)[:, None] - self.means) / self.stds
        return self.weights * np.exp(-0.5 * z * z) / (self.stds * np.sqrt(2.0 * np.pi))

    def thresholds(self) -> np.ndarray:
        """The intensity between each pair of neighbouring classes where the brighter class
        becomes the more likely one (searched on a fine grid between the two means)."""
        edges = []
        for low, high in zip(range(self.classes - 1), range(1, self.classes)):
            candidates = np.linspace(self.means[low], self.means[high], 4001)
            density = self.weighted_densities(candidates)
            brighter = np.flatnonzero(density[:, high] >= density[:, low])
            edges.append(candidates[brighter[0]] if len(brighter) else self.means[high])
        return np.asarray(edges)

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Class index (0 = darkest) of each value, monotone in intensity."""
        return np.searchsorted(self.thresholds(), np.asarray(values), side="right")


def fit_tissue_model(values: np.ndarray, classes: int = 3, iterations: int = 200, tolerance: float = 1e-7) -> TissueModel:
    """Maximum-likelihood Gaussian mixture of ``values`` by EM, started from equal-count quantile
    bins (deterministic: the same image always gives the same classes)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    bins = np.array_split(np.sort(x), classes)
    means = np.array([b.mean() for b in bins])
    stds = np.array([max(b.std(), 1e-6 * (x.std() + 1e-12)) for b in bins])
    weights = np.full(classes, 1.0 / classes)
    floor = 1e-3 * x.std() + 1e-12  # no class collapses onto one value
    previous = -np.inf
    for _ in range(iterations):
        model = TissueModel(means, stds, weights)
        density = model.weighted_densities(x) + 1e-300
        total = density.sum(axis=1, keepdims=True)
        likelihood = float(np.log(total).mean())
        responsibility = density / total
        counts = responsibility.sum(axis=0) + 1e-12
        weights = counts / len(x)
        means = (responsibility * x[:, None]).sum(axis=0) / counts
        stds = np.maximum(np.sqrt((responsibility * (x[:, None] - means) ** 2).sum(axis=0) / counts), floor)
        if likelihood - previous < tolerance:
            break
        previous = likelihood
    order = np.argsort(means)
    return TissueModel(means[order], stds[order], weights[order])


def class_fractions(model: TissueModel, values: np.ndarray) -> np.ndarray:
    """Fraction of ``values`` in each class (sums to 1)."""
    labels = model.classify(values)
    return np.bincount(labels, minlength=model.classes) / max(len(labels), 1)


def white_matter_fraction(model: TissueModel, values: np.ndarray) -> float:
    """Fraction of ``values`` classified as the brightest class (white matter on T1)."""
    return float(class_fractions(model, values)[-1])


def histogram_distance(values: np.ndarray, reference: np.ndarray) -> float:
    """1-D Wasserstein (earth mover's) distance between the two intensity distributions, in
    units of the reference's standard deviation (so it reads the same on any intensity scale)."""
    from scipy.stats import wasserstein_distance

    reference = np.asarray(reference, dtype=np.float64).ravel()
    return float(wasserstein_distance(np.asarray(values, dtype=np.float64).ravel(), reference) / reference.std())
