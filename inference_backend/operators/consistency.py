"""Data consistency: make an HR estimate reproduce the acquired scan exactly.

Given the acquisition model A (one matrix per coarse axis: what the scanner did to the true
image) and the acquired scan y, the estimate x is replaced by its orthogonal projection onto
{x : A x = y}: ``x + A^+ (y - A x)``. A learned method then keeps only the part of its output
the scan cannot see (e.g. the k-space periphery beyond the acquisition matrix) and takes the
rest from the measurement, instead of re-inventing it. A, and so its pseudo-inverse, is
separable: per-axis matrices (:class:`~inference_backend.operators.degradation.SeparableOperator`).

The projection is only as right as the model: a coarser in-plane acquisition matrix *is*
k-space truncation (``kspace``), whereas a thick slice's profile is scanner- and
sequence-specific, so ``auto`` projects in-plane reconstructions (two coarse axes) only.
The thick-slice models take the slice thickness where it differs from the spacing (a gap,
``--slice-thickness`` or DICOM (0018,0050)): their profile's FWHM is the thickness.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from inference_backend.operators.degradation import (
    SeparableOperator,
    downsampling_operator,
)


def resolve(choice: str, coarse_axes: tuple[int, ...]) -> str:
    """The acquisition model ``auto`` stands for: k-space truncation when two axes are coarse
    (an in-plane acquisition matrix), none otherwise (thick slices of an unknown profile)."""
    if choice == "auto":
        return "kspace" if len(coarse_axes) == 2 else "none"
    return choice


def _projected(x: torch.Tensor, measured: torch.Tensor, forward: SeparableOperator, inverse: SeparableOperator) -> torch.Tensor:
    return x + inverse(measured - forward(x))


def project(estimate: np.ndarray, measured: np.ndarray, name: str, thickness: tuple[float, ...] | None = None) -> np.ndarray:
    """``estimate + A^+ (measured - A estimate)``, A the ``name`` model along every axis whose
    size differs between the two volumes (float64 inside; float32 out); ``thickness``: per
    axis, the slice thickness over the slice spacing for the thick-slice models (default 1)."""
    return project_with(estimate, measured, downsampling_operator(name, estimate.shape, measured.shape, thickness))


def project_with(estimate: np.ndarray, measured: np.ndarray, forward: SeparableOperator) -> np.ndarray:
    """:func:`project` for a given acquisition model A (float64 inside; float32 out)."""
    x = torch.from_numpy(estimate.astype(np.float64))
    return _projected(x, torch.from_numpy(measured.astype(np.float64)), forward, forward.pseudo_inverse()).float().numpy()


def slice_projection(
    name: str, size: tuple[int, int], measured: torch.Tensor, thickness: tuple[float, float] | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The same projection for a batch of 2D slices padded beyond their true ``size`` (the
    slice engine's batches): the slices are projected, the padding is left as it is. A^+ is
    computed once here, not at every sampler step that projects. ``thickness`` as for :func:`project`."""
    forward = downsampling_operator(name, size, tuple(measured.shape[-2:]), thickness)
    inverse = forward.pseudo_inverse()
    height, width = size

    def apply(x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        out[..., :height, :width] = _projected(x[..., :height, :width], measured.to(x.dtype), forward, inverse)
        return out

    return apply
