"""Image-quality and uncertainty metrics, computed in 3D on the HR grid inside a head mask.

PSNR and SSIM follow scikit-image (SSIM: Gaussian window sigma 1.5, the map averaged inside
the mask); the data range is the reference's range inside the mask. GMSD follows Xue et al.
(2014) with 3D Sobel gradients. For stochastic methods: the negative log-likelihood of the
reference under the per-voxel sample histogram (256 bins), the coverage of central intervals,
and the Spearman rank correlation between the per-voxel standard deviation and the error.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage, stats
from skimage.metrics import structural_similarity

GMSD_C = 170.0 / 255.0**2  # stability constant of GMSD for images scaled to [0, 1]


def data_range(reference: np.ndarray, mask: np.ndarray) -> float:
    values = reference[mask]
    return float(values.max() - values.min())


def psnr(reference: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> float:
    mse = float(np.mean((reference[mask].astype(np.float64) - estimate[mask]) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range(reference, mask) ** 2 / mse)


def ssim(reference: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> float:
    _, ssim_map = structural_similarity(
        reference.astype(np.float64),
        estimate.astype(np.float64),
        data_range=data_range(reference, mask),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    return float(ssim_map[mask].mean())


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    return np.sqrt(sum(ndimage.sobel(image, axis=a, mode="nearest") ** 2 for a in range(image.ndim)))


def gmsd(reference: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> float:
    """Gradient magnitude similarity deviation (lower is better), images scaled by the reference range."""
    low, span = float(reference[mask].min()), data_range(reference, mask)
    ref, est = (reference - low) / span, (estimate - low) / span
    g_ref, g_est = gradient_magnitude(ref), gradient_magnitude(est)
    similarity = (2 * g_ref * g_est + GMSD_C) / (g_ref**2 + g_est**2 + GMSD_C)
    return float(similarity[mask].std())


def image_metrics(reference: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    return {
        "psnr": round(psnr(reference, estimate, mask), 4),
        "ssim": round(ssim(reference, estimate, mask), 5),
        "gmsd": round(gmsd(reference, estimate, mask), 5),
    }


def sample_nll(reference: np.ndarray, samples: np.ndarray, mask: np.ndarray, bins: int = 256) -> float:
    """Mean negative log-likelihood (nats) of the reference under each voxel's sample histogram.

    Intensities are scaled to [0, 1] by the reference's masked range and quantised to ``bins``;
    each voxel's histogram over its samples gets add-one (Laplace) smoothing so unseen bins
    have finite cost. ``samples`` has the sample axis first.
    """
    low, span = float(reference[mask].min()), data_range(reference, mask)

    def quantise(values: np.ndarray) -> np.ndarray:
        return np.clip(((values - low) / span * bins).astype(np.int64), 0, bins - 1)

    truth = quantise(reference[mask])
    drawn = quantise(samples[:, mask])
    hits = (drawn == truth[None, :]).sum(axis=0)
    probability = (hits + 1.0) / (samples.shape[0] + bins)
    return float(-np.log(probability).mean())


def interval_coverage(reference: np.ndarray, samples: np.ndarray, mask: np.ndarray, level: float = 0.9) -> float:
    """Fraction of voxels whose reference lies inside the samples' central ``level`` interval."""
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples[:, mask], [tail, 1.0 - tail], axis=0)
    truth = reference[mask]
    return float(np.mean((truth >= low) & (truth <= high)))


def std_error_correlation(reference: np.ndarray, mean: np.ndarray, variance: np.ndarray, mask: np.ndarray) -> float:
    """Spearman correlation between per-voxel standard deviation and absolute error."""
    error = np.abs(mean[mask] - reference[mask])
    return float(stats.spearmanr(np.sqrt(np.maximum(variance[mask], 0)), error).statistic)
