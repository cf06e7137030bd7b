"""Forward (degradation) models: how a low-resolution MR image arises from the true one.

Every linear degradation here acts on each image axis separately, so it is held as one
matrix per axis (``n_lr x n_hr``) and applied with a tensor contraction, batched, on CPU or
GPU. Posterior-sampling methods (SRMRI, MSP-SR,
InverseSR) take gradients through these same operators.

Sampling geometry: low-resolution sample ``j`` of an axis with factor ``f`` sits at
high-resolution index ``(j + 0.5) f - 0.5``: the LR voxel covers exactly the ``f`` HR voxels
it replaces (the grids of :meth:`Grid.with_spacing`). The HR axis is cropped to a multiple
of ``f`` first (:func:`crop_to_multiple`).

Physics of the families:

* **thick slices** (through-plane): slice ``j`` integrates the tissue weighted by the slice
  profile centred on it. ``gaussian`` (FWHM = thickness), ``box`` (ideal rectangle) and
  ``sinc`` (the band-limited rectangle excited by a truncated-sinc RF pulse, time-bandwidth 4:
  rounded edges with Gibbs ripples). Slice spacing ``f`` = thickness + gap.
* **k-space truncation** (in-plane): a coarser acquisition matrix over the same field of view
  keeps only the central ``n / f`` spatial frequencies (a sinc point-spread function).
* **Gaussian blur + decimation** and **anti-aliased bicubic** resizing: the usual image-
  processing models (bicubic is PyTorch's, as in SR3 / SRMRI).
* **Rician noise**: the non-linear nuisance of magnitude images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.special import sici

from inference_backend.imaging.volume import Grid, Volume
from inference_backend.operators import AXIS_OPERATORS
from inference_backend.operators.acquisition import kspace_matrix

PROFILES = ("gaussian", "box", "sinc")
SINC_TIME_BANDWIDTH = 4.0


def crop_to_multiple(volume: Volume, factors: tuple[int, int, int]) -> Volume:
    """Drop trailing voxels so each axis is a multiple of its factor (the grid origin is kept)."""
    return volume.crop((0, 0, 0), tuple(n - n % f for n, f in zip(volume.grid.size, factors)))


def lr_grid(hr: Grid, factors: tuple[int, int, int]) -> Grid:
    """The grid of the low-resolution acquisition (HR size must be a multiple of the factors)."""
    if any(n % f for n, f in zip(hr.size, factors)):
        raise ValueError(f"HR size {hr.size} is not a multiple of {factors}; crop_to_multiple first")
    return hr.with_spacing(tuple(s * f for s, f in zip(hr.spacing, factors)))


def _profile(offsets: np.ndarray, profile: str, thickness: float) -> np.ndarray:
    """Slice sensitivity at ``offsets`` (HR voxels) from the slice centre."""
    if profile == "gaussian":
        sigma = thickness / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        return np.exp(-0.5 * (offsets / sigma) ** 2)
    if profile == "box":
        return (np.abs(offsets) <= thickness / 2.0).astype(float)
    if profile == "sinc":
        # rect(z / thickness) low-passed at the RF pulse's bandwidth: (Si(a(u+1/2)) - Si(a(u-1/2))) / pi
        scale = math.pi * SINC_TIME_BANDWIDTH / 2.0
        u = offsets / thickness
        return (sici(scale * (u + 0.5))[0] - sici(scale * (u - 0.5))[0]) / math.pi
    raise ValueError(f"unknown slice profile {profile!r}; one of {PROFILES}")


@lru_cache(maxsize=4096)
def slice_profile_matrix(n: int, factor: int, profile: str = "gaussian", thickness: float | None = None) -> np.ndarray:
    """Thick-slice acquisition along one axis: ``(n // factor) x n``, rows sum to 1.

    ``thickness`` (HR voxels, default ``factor``) is the FWHM for ``gaussian``; the gap is
    ``factor - thickness``. Each HR voxel's weight is the profile integrated over the voxel.
    """
    thickness = float(factor if thickness is None else thickness)
    centres = (np.arange(n // factor) + 0.5) * factor - 0.5
    sub = (np.arange(16) + 0.5) / 16 - 0.5  # 16-point integration across each HR voxel
    positions = np.arange(n)[None, :, None] + sub[None, None, :]
    weights = _profile(positions - centres[:, None, None], profile, thickness).mean(axis=2)
    return weights / weights.sum(axis=1, keepdims=True)


def kspace_truncation_matrix(n: int, factor: int) -> np.ndarray:
    """Keep the central ``n // factor`` frequencies: ``(n // factor) x n``, DC gain 1."""
    return kspace_matrix(n, n // factor)


@lru_cache(maxsize=256)
def bicubic_matrix(n: int, factor: int) -> np.ndarray:
    """Anti-aliased bicubic down-sampling by ``factor`` (PyTorch's kernel): ``(n // factor) x n``."""
    return resize_matrix(n, n // factor, "bicubic")


@lru_cache(maxsize=256)
def resize_matrix(n: int, m: int, mode: str) -> np.ndarray:
    """PyTorch's anti-aliased resizing from ``n`` to ``m`` samples (bicubic, bilinear or area) as an ``m x n`` matrix."""
    identity = torch.eye(n, dtype=torch.float64)[:, None, :, None].repeat(1, 1, 1, 4)
    extra = {} if mode == "area" else {"antialias": True}
    out = torch.nn.functional.interpolate(identity, size=(m, 4), mode=mode, **extra)
    return out[:, 0, :, 0].T.numpy()


@lru_cache(maxsize=256)
def lanczos_matrix(n: int, factor: int, lobes: int = 3) -> np.ndarray:
    """Lanczos (windowed sinc, ``lobes`` lobes) down-sampling by ``factor``: ``(n // factor) x n``, rows sum to 1."""
    centres = (np.arange(n // factor) + 0.5) * factor - 0.5
    x = (np.arange(n)[None, :] - centres[:, None]) / factor
    weights = np.sinc(x) * np.sinc(x / lobes) * (np.abs(x) < lobes)
    return weights / weights.sum(axis=1, keepdims=True)




def axis_operator_matrix(name: str, n: int, m: int, thickness: float = 1.0) -> np.ndarray:
    """A named down-sampling along one axis, ``m x n``: anti-aliased resizing (bicubic, linear,
    box), Lanczos, k-space truncation, or thick slices of a profile whose FWHM is ``thickness``
    times the LR spacing (1: slices as thick as their spacing; below 1: a gap between them;
    ignored by the other operators)."""
    if name in ("bicubic", "linear", "box"):
        return resize_matrix(n, m, {"bicubic": "bicubic", "linear": "bilinear", "box": "area"}[name])
    if name == "kspace":
        return kspace_matrix(n, m)
    if name not in AXIS_OPERATORS:
        raise ValueError(f"unknown operator {name!r}; one of {AXIS_OPERATORS}")
    factor = max(1, round(n / m))
    if name == "lanczos":
        matrix = lanczos_matrix(n, factor)
    else:
        matrix = slice_profile_matrix(n, factor, name.removesuffix("-slices"), None if thickness == 1.0 else thickness * factor)
    return np.pad(matrix, [(0, max(0, m - len(matrix))), (0, 0)], mode="edge")[:m]


def downsampling_operator(
    name: str, size: tuple[int, ...], lr_size: tuple[int, ...], thickness: tuple[float, ...] | None = None
) -> "SeparableOperator":
    """The named down-sampling from ``size`` onto ``lr_size`` along every axis whose size
    changes (slices: 2 sizes; volumes: 3); ``thickness``: per axis, the slice thickness over
    the LR spacing for the thick-slice profiles (default 1 on every axis)."""
    thickness = thickness or (1.0,) * len(size)
    axes = [
        AxisOperator(axis, axis_operator_matrix(name, n, m, thickness[axis]))
        for axis, (n, m) in enumerate(zip(size, lr_size))
        if n != m
    ]
    return SeparableOperator(axes, ndim=len(size))


@dataclass(frozen=True)
class AxisOperator:
    """A linear map along one image axis: ``matrix`` is ``n_out x n_in``."""

    axis: int
    matrix: np.ndarray


class SeparableOperator:
    """Product of per-axis linear maps, applied to the last ``ndim`` dims of a torch tensor.

    ``ndim`` is 3 for volumes (..., X, Y, Z) and 2 for slices (..., H, W); ``axis`` counts
    within those dims.
    """

    def __init__(self, axis_operators: list[AxisOperator], ndim: int) -> None:
        self.axis_operators = list(axis_operators)
        self.ndim = ndim
        self._cache: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}

    def _matrix(self, index: int, like: torch.Tensor) -> torch.Tensor:
        key = (index, like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.axis_operators[index].matrix, dtype=like.dtype, device=like.device)
        return self._cache[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for index, operator in enumerate(self.axis_operators):
            dim = x.ndim - self.ndim + operator.axis
            x = torch.movedim(torch.tensordot(x, self._matrix(index, x), dims=([dim], [1])), -1, dim)
        return x

    def pseudo_inverse(self) -> "SeparableOperator":
        """A^+, per axis: the pseudo-inverse of a Kronecker product is that of its factors."""
        return SeparableOperator([AxisOperator(op.axis, np.linalg.pinv(op.matrix)) for op in self.axis_operators], self.ndim)


def rician_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Magnitude of the signal plus complex Gaussian noise of std ``sigma`` per channel."""
    real = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    imaginary = sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.sqrt(real**2 + imaginary**2)
