"""One draw of an MRI forward model applied to 2D slices: the pairs (HR slice, its acquisition
up-sampled back onto the HR grid with inference's own B-spline) that training streams and that
a method's adaptation to a scan makes from the scan's own slices."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inference_backend.imaging.resampling import bspline_upsampling_matrix
from inference_backend.operators.degradation import (
    bicubic_matrix,
    kspace_truncation_matrix,
    rician_noise,
    slice_profile_matrix,
)


@dataclass(frozen=True)
class Degradation:
    """One draw of the forward model for a 2D slice."""

    family: str  # "through-plane" or "in-plane"
    operator: str  # slice profile, or kspace / bicubic / gaussian
    factor: int
    thickness: float  # in HR pixels (through-plane), FWHM for gaussian
    noise: float  # Rician sigma as a fraction of the [0, 1] intensity range

    def matrix(self, n: int) -> np.ndarray:
        """The ``(n // factor) x n`` acquisition matrix along one axis."""
        if self.operator == "kspace":
            return kspace_truncation_matrix(n, self.factor)
        if self.operator == "bicubic":
            return bicubic_matrix(n, self.factor)
        return slice_profile_matrix(n, self.factor, self.operator, self.thickness)


def projection_matrix(degradation: Degradation, n: int) -> np.ndarray:
    """``n x n``: acquisition then the inference B-spline up-sampling, noise-free (the operator A
    that maps an HR slice axis onto its conditioning image)."""
    return bspline_upsampling_matrix(n // degradation.factor, degradation.factor) @ degradation.matrix(n)


def degrade_slice(hr: np.ndarray, degradation: Degradation, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(HR cropped to a multiple of the factor, its acquisition up-sampled back onto that grid).

    ``hr`` is a 2D slice, or a stack of them (the slice axes last), all degraded alike."""
    f = degradation.factor
    axes = (hr.ndim - 1,) if degradation.family == "through-plane" else (hr.ndim - 2, hr.ndim - 1)
    hr = hr[tuple(slice(0, n - n % f) if a in axes else slice(None) for a, n in enumerate(hr.shape))]
    low = hr.astype(np.float64)
    for axis in axes:
        low = np.moveaxis(np.tensordot(degradation.matrix(hr.shape[axis]), np.moveaxis(low, axis, 0), axes=1), 0, axis)
    if degradation.noise > 0:
        unit = torch.from_numpy((low + 1.0) / 2.0)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        low = rician_noise(unit, degradation.noise, generator).numpy() * 2.0 - 1.0
    for axis in axes:
        up = bspline_upsampling_matrix(low.shape[axis], f)
        low = np.moveaxis(np.tensordot(up, np.moveaxis(low, axis, 0), axes=1), 0, axis)
    return hr.astype(np.float32), low.astype(np.float32)


def random_window(image: np.ndarray, window: int, rng: np.random.Generator, tries: int = 6) -> np.ndarray:
    """A ``window`` x ``window`` crop of the last two axes (edge-padded if the slice is smaller),
    preferring tissue."""
    image = np.pad(image, [(0, max(0, window - n) if a >= image.ndim - 2 else 0) for a, n in enumerate(image.shape)], mode="edge")
    for attempt in range(tries):
        top, left = (int(rng.integers(0, n - window + 1)) for n in image.shape[-2:])
        crop = image[..., top : top + window, left : left + window]
        if (crop > -0.8).mean() > 0.25 or attempt == tries - 1:
            return crop
    raise AssertionError("unreachable")


def patch_window(patch_size: int, factor: int) -> tuple[int, slice]:
    """(the side of the window degraded for a patch, the patch inside it): a margin of two LR
    samples, so the patch has no crop-edge effects, at a fraction of the work of the whole slice."""
    margin = 2 * factor
    return -(-(patch_size + 2 * margin) // factor) * factor, slice(margin, margin + patch_size)


def degraded_patch(image: np.ndarray, degradation: Degradation, patch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(HR patch, its conditioning) from a random window of a 2D image (or a stack of them),
    contiguous float32."""
    window, centre = patch_window(patch_size, degradation.factor)
    hr, conditioning = degrade_slice(random_window(image, window, rng), degradation, rng)
    return np.ascontiguousarray(hr[..., centre, centre]), np.ascontiguousarray(conditioning[..., centre, centre])
