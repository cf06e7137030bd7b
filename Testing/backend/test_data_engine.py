"""The synthetic generator and the training-pair stream: determinism, ranges, consistency with inference."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from conftest import smooth_phantom
from inference_backend.data import training_data
from inference_backend.data.synth import (
    LabelPriors,
    SyntheticBrainGenerator,
    augment_real,
    deform_labels,
)
from inference_backend.data.training_data import (
    SlicePairStream,
    default_sources,
    draw_degradation,
)
from inference_backend.imaging.resampling import bspline_upsampling_matrix, resample
from inference_backend.imaging.target import target_grid
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.operators.degradation import slice_profile_matrix
from inference_backend.operators.slice_degradation import Degradation, degrade_slice


def toy_priors() -> LabelPriors:
    """Three tissue classes with T1-like and T2-like means (background, 'grey', 'white')."""
    means = {"t1_hr": np.array([[0, 120, 200], [0, 5, 5]], float), "t2": np.array([[0, 90, 60], [0, 5, 5]], float)}
    stds = {c: np.array([[0, 8, 8], [0, 1, 1]], float) for c in means}
    return LabelPriors(labels=np.array([0, 3, 2]), classes=np.array([0, 1, 2]), means=means, stds=stds)


def toy_labels() -> np.ndarray:
    grid = np.meshgrid(*[np.linspace(-1, 1, 40)] * 3, indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grid))
    return np.where(radius < 0.5, 2, np.where(radius < 0.8, 3, 0)).astype(np.int16)


def test_generator_is_deterministic_under_a_seed_and_varies_across_seeds():
    generator = SyntheticBrainGenerator([toy_labels()], toy_priors())
    first, again = generator.sample(np.random.default_rng(5)), generator.sample(np.random.default_rng(5))
    other = generator.sample(np.random.default_rng(6))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_the_random_contrast_share_decides_how_often_tissue_order_follows_a_prior():
    """Priors: white matter brighter than grey (T1) or darker (T2), 5 units apart at most;
    uniform contrasts (SynthSR's randomisation) put the two classes anywhere in 10-255."""

    def far_from_priors(share: float) -> float:
        generator = SyntheticBrainGenerator([toy_labels()], toy_priors(), random_contrast_share=share)
        rng = np.random.default_rng(0)
        draws = [generator.class_intensities(rng)[0] for _ in range(400)]
        prior_pairs = ((120, 200), (90, 60))
        return np.mean([min(abs(m[1] - g) + abs(m[2] - w) for g, w in prior_pairs) > 40 for m in draws])

    assert far_from_priors(0.0) == 0.0
    assert far_from_priors(1.0) > 0.8
    assert far_from_priors(0.7) == pytest.approx(0.7 * far_from_priors(1.0), abs=0.08)


def test_generated_images_have_the_normalised_range_and_tissue_contrast():
    generator = SyntheticBrainGenerator([toy_labels()], toy_priors())
    for seed in range(4):
        image = generator.sample(np.random.default_rng(seed))
        assert image.shape == (40, 40, 40) and np.isfinite(image).all()
        assert -1.05 <= image.min() and np.percentile(image, 99) <= 1.1
        assert (image > -0.5).mean() > 0.1  # a head, not an empty frame
        assert image.std() > 0.3  # contrast between background and tissue


def test_deformation_keeps_labels_and_moves_them():
    labels = toy_labels()
    warped = deform_labels(labels, np.random.default_rng(0))
    assert set(np.unique(warped)) <= set(np.unique(labels))
    assert (warped != labels).mean() > 0.005


def test_degrade_slice_matches_the_inference_path():
    """Training conditioning = thick-slice acquisition then the exact B-spline of `mrisr run`."""
    rng = np.random.default_rng(0)
    hr = np.tanh(smooth_phantom((30, 41, 1))[:, :, 0] / 100).astype(np.float32)
    degradation = Degradation("through-plane", "gaussian", 4, 4.0, 0.0)
    cropped, conditioning = degrade_slice(hr, degradation, rng)
    assert cropped.shape == conditioning.shape == (30, 40)
    low = cropped.astype(np.float64) @ slice_profile_matrix(40, 4, "gaussian", 4.0).T
    lr_volume = Volume(np.repeat(low[:, :, None], 2, axis=2).transpose(0, 2, 1).astype(np.float32), Grid((30, 2, 10), (1, 1, 4), (0, 0, 0), np.eye(3)))
    expected = resample(lr_volume, target_grid(lr_volume.grid, scale=(1, 1, 4)), "bspline").array[:, 0, :]
    np.testing.assert_allclose(conditioning, expected, atol=1e-4)


def test_bspline_matrix_is_interpolating_at_coarse_centres():
    matrix = bspline_upsampling_matrix(12, 3)
    # fine voxel 3j+1 sits exactly on coarse centre j: interpolation returns the sample there
    np.testing.assert_allclose(matrix[1::3], np.eye(12), atol=1e-5)


def test_degradation_draws_cover_the_families():
    draws = [draw_degradation(np.random.default_rng(s)) for s in range(300)]
    assert {d.family for d in draws} == {"through-plane", "in-plane"}
    assert {d.factor for d in draws if d.family == "through-plane"} == {2, 3, 4, 5, 6}
    assert {d.operator for d in draws} == {"gaussian", "box", "sinc", "kspace", "bicubic"}
    assert all(0.8 * d.factor - 1e-9 <= d.thickness <= d.factor for d in draws if d.family == "through-plane")


def test_degradation_draws_keep_to_the_asked_protocol():
    draws = [draw_degradation(np.random.default_rng(s), factors=(4,), in_plane_share=0.0) for s in range(100)]
    assert {(d.family, d.factor) for d in draws} == {("through-plane", 4)}
    assert {d.operator for d in draws} == {"gaussian", "box", "sinc"}  # the slice profile stays unknown


def test_stream_is_deterministic_and_well_formed():
    generator = SyntheticBrainGenerator([toy_labels()], toy_priors())
    volume = torch.from_numpy(smooth_phantom((40, 36, 30))).numpy() / 100 - 1
    sources = [(generator.sample, 0.5), (lambda rng: augment_real(volume, rng), 0.5)]
    first = list(itertools.islice(iter(SlicePairStream(sources, patch_size=32, pairs_per_refresh=4, seed=9)), 10))
    again = list(itertools.islice(iter(SlicePairStream(sources, patch_size=32, pairs_per_refresh=4, seed=9)), 10))
    for a, b in zip(first, again):
        assert a["hr"].shape == a["conditioning"].shape == (1, 32, 32)
        assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["conditioning"], b["conditioning"])
    assert not torch.equal(first[0]["hr"], first[1]["hr"])


def test_a_context_stream_gives_the_neighbouring_slices_degraded_alike(monkeypatch):
    """On a volume that is a ramp along every axis, noise-free neighbours differ from the centre
    by exactly the ramp's step; with dropout 1 they are the centre itself."""
    noisy = training_data.draw_degradation
    monkeypatch.setattr(training_data, "draw_degradation", lambda *args: dataclasses.replace(noisy(*args), noise=0.0))
    ramp = np.add.outer(np.add.outer(np.arange(40.0), np.arange(40.0)), np.arange(40.0)).astype(np.float32) / 120 - 0.5
    source = [(lambda rng: ramp, 1.0)]
    pairs = list(itertools.islice(iter(SlicePairStream(source, patch_size=16, seed=3, context=2)), 6))
    for pair in pairs:
        assert pair["context"].shape == (4, 16, 16) and pair["conditioning"].shape == pair["hr"].shape == (1, 16, 16)
        offsets = (pair["context"] - pair["conditioning"]).mean(dim=(1, 2)) * 120
        np.testing.assert_allclose(offsets.numpy(), [-2, -1, 1, 2], atol=1e-3)  # slices -2, -1, +1, +2 (inside the volume)
    plain = next(iter(SlicePairStream(source, patch_size=16, seed=3)))
    assert "context" not in plain
    dropped = next(iter(SlicePairStream(source, patch_size=16, seed=3, context=1, context_dropout=1.0)))
    assert torch.equal(dropped["context"], dropped["conditioning"].repeat(2, 1, 1))


def test_default_sources_on_the_development_data(shared_data):
    sources = default_sources(shared_data)
    assert len(sources) == 3 and sum(w for _, w in sources) == pytest.approx(1.0)
    synthetic = sources[0][0](np.random.default_rng(0))
    assert synthetic.shape == (148, 187, 155) and -1.05 <= synthetic.min() and np.percentile(synthetic, 99.9) < 1.6
