"""Lesion-fill metrics for real lesions (tissue classes of the fill, histogram distance to NAWM),
on tiny synthetic intensity samples with known answers; no development data needed."""
from __future__ import annotations

import numpy as np
import pytest

from inference_backend.evaluation.lesion_metrics import (
    TissueModel,
    class_fractions,
    fit_tissue_model,
    histogram_distance,
    white_matter_fraction,
)

MEANS, STDS, COUNTS = (80.0, 280.0, 360.0), (30.0, 25.0, 12.0), (1000, 5000, 3000)


def three_tissues(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(m, s, n) for m, s, n in zip(MEANS, STDS, COUNTS)])


def test_mixture_recovers_csf_grey_and_white_matter_in_order():
    model = fit_tissue_model(three_tissues())
    np.testing.assert_allclose(model.means, MEANS, atol=3.0)
    np.testing.assert_allclose(model.stds, STDS, rtol=0.1)
    np.testing.assert_allclose(model.weights, np.array(COUNTS) / sum(COUNTS), atol=0.02)
    low, high = model.thresholds()
    assert MEANS[0] < low < MEANS[1] < high < MEANS[2]


def test_mixture_is_deterministic_and_scale_free():
    values = three_tissues(1)
    first, again = fit_tissue_model(values), fit_tissue_model(values)
    np.testing.assert_array_equal(first.means, again.means)
    scaled = fit_tissue_model(values * 0.01 + 5.0)
    np.testing.assert_allclose(scaled.means, first.means * 0.01 + 5.0, rtol=1e-4)


def test_classification_is_monotone_even_where_a_wide_class_dominates_the_tails():
    # the darkest class is so wide that its density exceeds white matter's far above it
    model = TissueModel(np.array([0.0, 10.0]), np.array([20.0, 1.0]), np.array([0.5, 0.5]))
    assert model.classify(np.array([-50.0, 0.0, 10.0, 60.0])).tolist() == [0, 0, 1, 1]


def test_white_matter_fraction_counts_the_brightest_class():
    model = TissueModel(np.array([80.0, 280.0, 360.0]), np.array([30.0, 25.0, 12.0]), np.array([0.1, 0.55, 0.35]))
    assert white_matter_fraction(model, np.full(10, 360.0)) == 1.0
    assert white_matter_fraction(model, np.full(10, 280.0)) == 0.0
    assert white_matter_fraction(model, np.array([360.0, 365.0, 280.0, 80.0])) == 0.5
    np.testing.assert_allclose(class_fractions(model, np.array([70.0, 290.0, 290.0, 400.0])), [0.25, 0.5, 0.25])


def test_histogram_distance_known_answers():
    reference = np.random.default_rng(2).normal(360.0, 12.0, 200_000)
    assert histogram_distance(reference, reference) == 0.0
    # a shift moves every unit of mass by the shift: one reference std
    assert histogram_distance(reference + 12.0, reference) == pytest.approx(1.0, rel=1e-3)
    # a constant fill at the mean (nawm-mean): E|X - mean| / std = sqrt(2 / pi) for a normal
    assert histogram_distance(np.full(50, 360.0), reference) == pytest.approx(np.sqrt(2 / np.pi), rel=0.01)
    # in units of the reference's std: the same on any intensity scale
    assert histogram_distance(np.full(50, 3.6), reference / 100) == pytest.approx(np.sqrt(2 / np.pi), rel=0.01)
