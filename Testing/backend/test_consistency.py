"""Data consistency: the projection onto the acquired data, zero-filling, and their use by the methods."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_volume
from inference_backend.errors import InputError
from inference_backend.imaging.volume import Volume
from inference_backend.job import JobOptions
from inference_backend.operators import consistency
from inference_backend.operators.degradation import (
    AXIS_OPERATORS,
    downsampling_operator,
    kspace_matrix,
)
from inference_backend.pipeline import process
from inference_backend.registry import get_method


def acquire(volume: np.ndarray, name: str, lr_shape: tuple[int, int, int]) -> np.ndarray:
    """The acquisition model applied along every axis whose size changes."""
    return downsampling_operator(name, volume.shape, lr_shape)(torch.from_numpy(volume.astype(np.float64))).numpy()


def test_every_listed_acquisition_model_builds_and_is_offered_for_consistency():
    for name in AXIS_OPERATORS:
        assert downsampling_operator(name, (8, 8, 8), (8, 8, 4)) is not None
    consistency_option = next(o for o in get_method("res-srdiff").options if o.name == "consistency")
    assert consistency_option.choices == ("auto", "none", *AXIS_OPERATORS)


@pytest.mark.parametrize("coarse, expected", [((0, 1), "kspace"), ((2,), "none"), ((0, 1, 2), "none")])
def test_auto_projects_only_in_plane_reconstructions(coarse, expected):
    assert consistency.resolve("auto", coarse) == expected
    assert consistency.resolve("sinc-slices", coarse) == "sinc-slices"


@pytest.mark.parametrize("name, lr_shape", [("kspace", (6, 5, 14)), ("gaussian-slices", (12, 10, 7)), ("bicubic", (6, 10, 14))])
def test_projection_reproduces_the_measurement_and_is_idempotent(name, lr_shape):
    rng = np.random.default_rng(0)
    estimate = rng.normal(size=(12, 10, 14)).astype(np.float32)
    measured = rng.normal(size=lr_shape).astype(np.float32)
    projected = consistency.project(estimate, measured, name)
    np.testing.assert_allclose(acquire(projected, name, lr_shape), measured, atol=1e-4)
    np.testing.assert_allclose(consistency.project(projected, measured, name), projected, atol=1e-4)
    # only the part the acquisition cannot see is kept from the estimate: the change is in A's row space
    change = (projected - estimate).astype(np.float64)
    np.testing.assert_allclose(consistency.project(change, np.zeros(lr_shape), name), 0.0, atol=1e-4)


def test_kspace_matrix_keeps_band_limited_signals_and_centres_its_samples():
    """A cosine below the LR Nyquist frequency survives truncation, sampled at (j + 0.5) n / m - 0.5."""
    n, m = 24, 8
    hr_positions = np.arange(n)
    signal = np.cos(2 * np.pi * 2 * hr_positions / n + 0.3)
    lr_positions = (np.arange(m) + 0.5) * n / m - 0.5
    np.testing.assert_allclose(kspace_matrix(n, m) @ signal, np.cos(2 * np.pi * 2 * lr_positions / n + 0.3), atol=1e-12)
    np.testing.assert_allclose(kspace_matrix(n, m).sum(axis=1), 1.0, atol=1e-12)


def test_zero_fill_recovers_a_band_limited_volume_exactly():
    x, y = np.meshgrid(np.arange(16), np.arange(12), indexing="ij")
    hr = np.repeat((np.cos(2 * np.pi * x / 16) + np.sin(2 * np.pi * 2 * y / 12))[:, :, None], 3, axis=2).astype(np.float32)
    lr = acquire(hr, "kspace", (8, 6, 3)).astype(np.float32)
    volume = make_volume(shape=(8, 6, 3), spacing=(2.0, 2.0, 1.0))
    volume = Volume(lr, volume.grid)
    outputs = process(volume, JobOptions(method="interpolation", method_options={"kind": "zero-fill"}, scale=(2, 2, 1)))
    np.testing.assert_allclose(outputs.sr.array, hr, atol=1e-4)


def test_zero_fill_refuses_a_grid_over_another_field_of_view():
    volume = make_volume(shape=(8, 6, 3), spacing=(2.0, 2.0, 1.0))
    shifted = volume.grid.with_spacing((1.0, 1.0, 1.0))
    shifted = type(shifted)(shifted.size, shifted.spacing, tuple(np.add(shifted.origin, 5.0)), shifted.direction)
    with pytest.raises(InputError, match="field of view"):
        process(volume, JobOptions(method="interpolation", method_options={"kind": "zero-fill"}, target=shifted))


def test_in_plane_reconstruction_agrees_with_the_acquired_scan(tiny_model):
    volume = make_volume(shape=(10, 8, 4), spacing=(2.0, 2.0, 1.5))
    volume = volume.with_array(volume.array - 50)  # not a magnitude image: no non-negativity or zero background to take precedence
    options = JobOptions(method="res-srdiff", method_options={"model": "tiny-res-srdiff"}, scale=(2, 2, 1), device="cpu")
    outputs = process(volume, options)
    resolved = outputs.report["resolved_options"]
    assert {k: resolved[k] for k in ("consistency", "sampler", "adapt_steps")} == {"consistency": "kspace", "sampler": "mean", "adapt_steps": 0}
    np.testing.assert_allclose(acquire(outputs.sr.array, "kspace", (10, 8, 4)), volume.array, atol=1e-3 * np.ptp(volume.array))
    unprojected = process(volume, JobOptions(**{**options.__dict__, "method_options": {"model": "tiny-res-srdiff", "consistency": "none"}}))
    assert np.abs(acquire(unprojected.sr.array, "kspace", (10, 8, 4)) - volume.array).max() > 1e-2 * np.ptp(volume.array)
