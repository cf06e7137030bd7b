"""Forward operators: geometry, linearity, k-space physics, noise statistics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_volume
from inference_backend.evaluation.cases import in_plane_case, through_plane_case
from inference_backend.imaging.target import target_grid
from inference_backend.operators.degradation import (
    AxisOperator,
    SeparableOperator,
    bicubic_matrix,
    crop_to_multiple,
    kspace_truncation_matrix,
    lr_grid,
    rician_noise,
    slice_profile_matrix,
)

MATRICES = {
    "gaussian": lambda n, f: slice_profile_matrix(n, f, "gaussian"),
    "box": lambda n, f: slice_profile_matrix(n, f, "box"),
    "sinc": lambda n, f: slice_profile_matrix(n, f, "sinc"),
    "box-gap": lambda n, f: slice_profile_matrix(n, f, "box", thickness=0.75 * f),
    "kspace": kspace_truncation_matrix,
    "bicubic": bicubic_matrix,
}


@pytest.mark.parametrize("name", MATRICES)
def test_shapes_and_constant_preservation(name):
    matrix = MATRICES[name](24, 4)
    assert matrix.shape == (6, 24)
    np.testing.assert_allclose(matrix @ np.ones(24), np.ones(6), atol=1e-9)  # DC gain 1


@pytest.mark.parametrize("name", MATRICES)
def test_separable_operator_is_linear(name):
    generator = torch.Generator().manual_seed(0)
    operator = SeparableOperator([AxisOperator(1, MATRICES[name](20, 4)), AxisOperator(2, MATRICES[name](12, 2))], ndim=3)
    x, z = (torch.randn(2, 7, 20, 12, generator=generator, dtype=torch.float64) for _ in range(2))
    a, b = torch.tensor(0.7, dtype=torch.float64), torch.tensor(-1.3, dtype=torch.float64)
    torch.testing.assert_close(operator(a * x + b * z), a * operator(x) + b * operator(z))
    assert operator(x).shape == (2, 7, 5, 6)


def test_slice_profiles_have_the_thickness_they_claim():
    """A box profile averages exactly `factor` HR slices; the Gaussian has FWHM = thickness."""
    box = slice_profile_matrix(16, 4, "box")
    np.testing.assert_allclose(box[1], np.r_[np.zeros(4), np.full(4, 0.25), np.zeros(8)], atol=1e-9)
    fine = slice_profile_matrix(400, 40, "gaussian")[2]  # 40-voxel slices, densely sampled
    above_half = np.flatnonzero(fine >= fine.max() / 2)
    assert above_half.size == pytest.approx(40, abs=2)
    assert (above_half.min() + above_half.max()) / 2 == pytest.approx(2.5 * 40 - 0.5, abs=1)  # centred on its slice


def test_sinc_profile_rings_but_box_does_not():
    sinc = slice_profile_matrix(96, 8, "sinc", thickness=8)
    assert sinc.min() < 0 and slice_profile_matrix(96, 8, "box").min() >= 0


def test_kspace_truncation_keeps_low_frequencies_and_removes_high_ones():
    """Analytic phantom: a cosine below the new Nyquist survives, sampled at the LR centres; one above vanishes."""
    n, factor = 64, 4
    matrix = kspace_truncation_matrix(n, factor)
    positions = np.arange(n)
    centres = (np.arange(n // factor) + 0.5) * factor - 0.5
    low = np.cos(2 * np.pi * 3 * positions / n + 0.4)
    np.testing.assert_allclose(matrix @ low, np.cos(2 * np.pi * 3 * centres / n + 0.4), atol=1e-9)
    high = np.cos(2 * np.pi * 20 * positions / n)  # 20 cycles > 8 (Nyquist of 16 samples)
    np.testing.assert_allclose(matrix @ high, 0.0, atol=1e-9)


def test_rician_noise_statistics():
    generator = torch.Generator().manual_seed(1)
    sigma = 0.1
    background = rician_noise(torch.zeros(200_000, dtype=torch.float64), sigma, generator)
    assert float(background.mean()) == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.01)  # Rayleigh mean
    bright = rician_noise(torch.full((200_000,), 5.0, dtype=torch.float64), sigma, generator)
    assert float(bright.std()) == pytest.approx(sigma, rel=0.02)  # ~Gaussian at high SNR
    assert float(bright.mean()) == pytest.approx(5.0 + sigma**2 / 10, rel=1e-3)


def test_lr_grid_and_case_geometry_map_back_onto_the_reference():
    volume = make_volume(shape=(18, 16, 14), spacing=(1.0, 1.2, 0.9))
    case = through_plane_case("t", volume, factor=4, axis=2)
    assert case.reference.grid.size == (18, 16, 12)
    assert case.degraded.grid.size == (18, 16, 3) and case.degraded.grid.spacing[2] == pytest.approx(3.6)
    assert target_grid(case.degraded.grid, scale=case.factors).matches(case.reference.grid, tolerance_mm=1e-9)
    in_plane = in_plane_case("i", volume, factor=2, slice_axis=2)
    assert in_plane.degraded.grid.size == (9, 8, 14)
    assert target_grid(in_plane.degraded.grid, scale=in_plane.factors).matches(in_plane.reference.grid, tolerance_mm=1e-9)
    with pytest.raises(ValueError):
        lr_grid(volume.grid, (1, 1, 4))
    assert crop_to_multiple(volume, (1, 1, 4)).grid.origin == volume.grid.origin
