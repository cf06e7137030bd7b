"""A job's acquisition model between its grids: what the scanner did to the true image to give
the acquired volume, as one matrix per refined axis (NumPy only: every job applies it, the
classical ones too, which never load torch).

* **thick slices**: each acquired slice integrates the tissue under its excitation profile, a
  Gaussian whose FWHM is the slice thickness (the data engine's model; a gap where it is below
  the slice spacing), centred on the slice; each output voxel contributes the profile's integral
  over its extent. Positions are taken from the two grids' geometry, so any factor is exact.
* **in-plane**: a coarser acquisition matrix over the same field of view keeps only the central
  spatial frequencies: k-space truncation.

The consistency map (:mod:`inference_backend.operators.consistency_map`) passes a result through
it; it is the scanner's model only as far as the scanner's profile is Gaussian.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import erf

from inference_backend.imaging.target import Refinement

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@lru_cache(maxsize=256)
def kspace_matrix(n: int, m: int) -> np.ndarray:
    """A coarser acquisition matrix over the same field of view: ``m x n``, DC gain 1.

    Keeps the ``m`` lowest frequencies of the ``n``-sample axis. A linear phase ramp moves the
    samples by half an LR voxel minus half an HR voxel so they sit at the centres
    ``(j + 0.5) n / m - 0.5``; the real part is taken (the exact magnitude of a real object,
    up to the Nyquist bin).
    """
    freqs = np.fft.fftfreq(n)  # cycles per HR voxel
    keep = np.fft.fftfreq(m) * m / n  # the m lowest frequencies, in HR cycles per voxel
    columns = np.fft.fft(np.eye(n), axis=0)  # spectra of unit impulses
    index = np.rint(keep * n).astype(int) % n
    shift = np.exp(2j * np.pi * freqs[index] * (n / m - 1) / 2.0)  # sample at (j+0.5)n/m-0.5, not j n/m
    spectra = columns[index] * shift[:, None]
    return np.real(np.fft.ifft(spectra, axis=0)) * m / n


def gaussian_slice_matrix(fine: np.ndarray, fine_spacing: float, coarse: np.ndarray, fwhm: float) -> np.ndarray:
    """``len(coarse) x len(fine)``: each coarse sample (slice centre, mm) the Gaussian profile of
    FWHM ``fwhm`` integrated over each fine voxel (centre, mm; width ``fine_spacing``); rows sum to 1."""
    sigma = fwhm * FWHM_TO_SIGMA
    upper = (fine[None, :] + fine_spacing / 2 - coarse[:, None]) / (sigma * math.sqrt(2.0))
    lower = (fine[None, :] - fine_spacing / 2 - coarse[:, None]) / (sigma * math.sqrt(2.0))
    weights = (erf(upper) - erf(lower)) / 2
    return weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class AcquisitionModel:
    """The acquisition from a job's output grid onto its input grid: ``(axis, matrix)`` pairs,
    matrix ``n_input x n_output`` along that axis; ``kind``: ``thick-slices``, ``in-plane``."""

    kind: str
    axes: tuple[tuple[int, np.ndarray], ...]

    @classmethod
    def of(cls, refinement: Refinement) -> AcquisitionModel | None:
        """The model of a thick-slice or in-plane job; None for others (no acquisition to hold
        the result against: isotropic up-sampling, or none)."""
        source, target = refinement.source, refinement.target
        if refinement.acquisition == "thick-slices":
            axis = refinement.axes[0]
            direction = source.direction_matrix[:, axis]
            fine = (target.index_to_physical(_along(axis, target.size[axis])) - np.asarray(source.origin)) @ direction
            coarse = (source.index_to_physical(_along(axis, source.size[axis])) - np.asarray(source.origin)) @ direction
            fwhm = refinement.slice_thickness_mm or source.spacing[axis]
            return cls("thick-slices", ((axis, gaussian_slice_matrix(fine, target.spacing[axis], coarse, fwhm)),))
        if refinement.acquisition == "in-plane":
            return cls("in-plane", tuple((axis, kspace_matrix(target.size[axis], source.size[axis])) for axis in refinement.axes))
        return None

    def __call__(self, volume: np.ndarray) -> np.ndarray:
        """The output-grid ``volume`` as the scanner would have acquired it (float64)."""
        result = volume.astype(np.float64)
        for axis, matrix in self.axes:
            result = np.moveaxis(np.tensordot(matrix, result, axes=([1], [axis])), 0, axis)
        return result


def _along(axis: int, count: int) -> np.ndarray:
    """Voxel indices 0..count-1 along ``axis`` (the others 0), shape (count, 3)."""
    indices = np.zeros((count, 3))
    indices[:, axis] = np.arange(count)
    return indices
