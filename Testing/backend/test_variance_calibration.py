"""A variance map that means what it says: the conformal scale, its card entry, and a job applying it."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from conftest import make_volume
from inference_backend.evaluation.calibration import (
    coverage,
    gaussian_nll,
    interval_scale,
    reliability,
    standardised_errors,
    standardised_errors_of_runs,
    subset_statistics,
)
from inference_backend.imaging.volume import Grid
from inference_backend.job import JobOptions
from inference_backend.methods.slicing import SlicePlan
from inference_backend.methods.variance_calibration import calibration_for, pooled
from inference_backend.pipeline import process

SCALES = {"8": {"thick-slices": {"2": 1.5, "4": 3.0}}, "2": {"thick-slices": {"4": 7.0}}}  # samples -> acquisition -> factor
CARD = {"variance_calibration": {"level": 0.9, "z": 1.645, "data": "a training slab", "scales": SCALES}}


def test_an_over_confident_map_is_scaled_until_its_intervals_hold():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(40, 40, 40))
    mean = reference + rng.normal(scale=2.0, size=reference.shape)  # the error's std is 2 ...
    variance = np.ones_like(reference)  # ... the map says 1
    mask = np.ones(reference.shape, bool)
    assert coverage(reference, mean, variance, mask) == pytest.approx(0.59, abs=0.02)  # P(|z| < 1.645 / 2)
    scale = interval_scale(standardised_errors(reference, mean, variance, mask))
    assert scale == pytest.approx(2.0, rel=0.03)
    assert coverage(reference, mean, variance * scale**2, mask) == pytest.approx(0.9, abs=0.005)
    assert gaussian_nll(reference, mean, variance * scale**2, mask) < gaussian_nll(reference, mean, variance, mask)
    levels, observed = zip(*reliability(reference, mean, variance * scale**2, mask))
    np.testing.assert_allclose(observed, levels, atol=0.02)  # on the diagonal at every level


def test_fewer_samples_need_a_wider_factor_and_their_runs_are_calibrated_together():
    """The spread of 2 samples is a noisy estimate of the sampler's spread: for the same 90%
    interval its factor is far larger than for 8 (Student's t with 1 against 7 degrees of freedom)."""
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(30, 30, 30))
    samples = rng.normal(size=(8, *reference.shape))  # truth and samples from one posterior: a sampler calibrated in the limit
    mask = np.ones(reference.shape, bool)
    pairs, eights = subset_statistics(samples, 2), subset_statistics(samples, 8)
    assert len(pairs) == 4 and len(eights) == 1
    np.testing.assert_allclose(pairs[1][0], samples[2:4].mean(0))
    np.testing.assert_allclose(eights[0][1], samples.var(0, ddof=1))
    # error of an N-sample mean over its std estimate: sqrt(1 + 1/N) t_{N-1}; 90% quantiles 6.31 * 1.22, 1.89 * 1.06
    assert interval_scale(standardised_errors_of_runs(reference, pairs, mask)) == pytest.approx(6.314 * np.sqrt(1.5) / 1.645, rel=0.05)
    assert interval_scale(standardised_errors_of_runs(reference, eights, mask)) == pytest.approx(1.895 * np.sqrt(1.125) / 1.645, rel=0.05)


def test_the_factor_is_the_standardised_errors_quantile_over_z_and_a_voxel_of_no_spread_does_not_count():
    errors = np.r_[np.linspace(0.0, 3.29, 1001), np.inf]  # one voxel the map holds certain but wrong
    assert interval_scale(errors, 0.9) == pytest.approx(0.9 * 3.29 / 1.6449, rel=1e-3)
    assert interval_scale(errors, 0.5) == pytest.approx(0.5 * 3.29 / 0.6745, rel=1e-3)


def test_the_card_entry_of_the_nearest_sample_count_and_factor_applies():
    grid = lambda spacing: Grid((8, 8, 8), spacing, (0, 0, 0), np.eye(3))  # noqa: E731
    fine = Grid((8, 8, 32), (1, 1, 1), (0, 0, 0), np.eye(3))
    at_x3_5 = calibration_for(CARD, SlicePlan.between(grid((1, 1, 3.5)), fine), samples=8)
    assert at_x3_5.scale == 3.0 and "90% of voxels within 1.645 sigma" in at_x3_5.meaning and "x4" in at_x3_5.meaning
    assert "8 samples" in at_x3_5.meaning
    assert calibration_for(CARD, SlicePlan.between(grid((1, 1, 2.2)), fine), samples=10).scale == 1.5
    two = calibration_for(CARD, SlicePlan.between(grid((1, 1, 4)), fine), samples=3)  # 3 is nearer 2 than 8 on a log scale
    assert two.scale == 7.0 and "2 samples" in two.meaning
    assert calibration_for(CARD, SlicePlan.between(grid((1, 1, 2)), fine), samples=2).scale == 7.0  # the nearest factor of that count
    assert calibration_for(CARD, SlicePlan.between(grid((2, 2, 1)), fine), samples=8) is None  # in-plane: not calibrated
    assert calibration_for({}, SlicePlan.between(grid((1, 1, 4)), fine), samples=8) is None


def test_a_job_applies_the_calibration_and_says_what_the_map_means(tiny_model):
    card_path = tiny_model / "tiny-res-srdiff.json"
    card = json.loads(card_path.read_text())
    fitted_with = {"adapt_steps": 0, "sampler": "auto"}  # what the calibration ran: it holds for these only
    card_path.write_text(json.dumps(card | {"variance_calibration": CARD["variance_calibration"] | {"options": fitted_with}}))
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))

    def run(variance: str, **more: str):
        options = {"model": "tiny-res-srdiff", "adapt_steps": 0, "variance": variance, **more}
        return process(volume, JobOptions(method="res-srdiff", method_options=options, scale=(1, 1, 3), samples=3))

    calibrated, raw, other_sampler = run("calibrated"), run("raw"), run("calibrated", sampler="deterministic")
    assert other_sampler.report["resolved_options"]["variance"]["calibrated"] is False
    assert "does not hold for sampler=deterministic (fitted with auto)" in other_sampler.report["resolved_options"]["variance"]["meaning"]
    assert calibrated.report["resolved_options"]["variance"]["calibrated"] is True
    assert "within 1.645 sigma" in calibrated.report["resolved_options"]["variance"]["meaning"]
    assert raw.report["resolved_options"]["variance"] == {"calibrated": False, "meaning": "the samples' spread, not calibrated: a relative map"}
    np.testing.assert_allclose(calibrated.variance.array, raw.variance.array * 7.0**2, rtol=1e-4)  # 3 samples, x3 -> the x4 entry of 2 samples
    np.testing.assert_array_equal(calibrated.sr.array, raw.sr.array)  # the estimate itself does not change


def test_a_card_fitted_on_the_pooled_spread_pools_it_before_its_factor(tiny_model):
    """A few samples' spread is noisy voxel by voxel: the card says it was calibrated on the spread
    pooled over each voxel's neighbours, and a job reads its map the same way."""
    card_path = tiny_model / "tiny-res-srdiff.json"
    card = json.loads(card_path.read_text())
    entry = CARD["variance_calibration"] | {"options": {"adapt_steps": 0, "sampler": "auto"}, "pooling_sd_voxels": 1.0}
    card_path.write_text(json.dumps(card | {"variance_calibration": entry}))
    volume = make_volume(shape=(32, 30, 10), spacing=(1.0, 1.0, 3.0))
    run = lambda variance: process(volume, JobOptions(method="res-srdiff", scale=(1, 1, 3), samples=3,  # noqa: E731
                                                      method_options={"model": "tiny-res-srdiff", "adapt_steps": 0, "variance": variance}))  # fmt: skip
    calibrated, raw = run("calibrated"), run("raw")
    how = calibrated.report["resolved_options"]["variance"]
    assert how["pooling_sd_voxels"] == 1.0 and "spread pooled over a Gaussian of 1 voxel x 7" in how["meaning"]
    expected = pooled(raw.variance.array, 1.0) * 7.0**2
    interior = ndimage.binary_erosion(calibrated.variance.array > 0, np.ones((3, 3, 3)), iterations=4)  # beyond the filter's reach of the zeroed background
    assert interior.sum() > 100
    np.testing.assert_allclose(calibrated.variance.array[interior], expected[interior], rtol=1e-3)
    assert np.std(calibrated.variance.array[interior]) < 0.8 * np.std(raw.variance.array[interior] * 7.0**2)  # smoother than the raw spread
