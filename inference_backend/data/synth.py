"""Synthetic brain images from label maps, in the spirit of SynthSR / SynthSeg.

A label map is deformed (random affine + smooth elastic field), each label gets an intensity
drawn from a Gaussian mixture whose per-class means and spreads come from the SynthSR priors
(T1 or T2) or, for contrast-agnostic training, from a uniform draw; then partial-volume blur,
a smooth bias field and a random gamma. Real scans get the intensity part of the same
augmentation. Every output is normalised like the methods' inputs
(:class:`~inference_backend.imaging.normalization.IntensityNormalizer`). Deterministic under a seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from inference_backend.imaging.io import read_volume
from inference_backend.imaging.normalization import IntensityNormalizer

CONTRASTS = ("t1_hr", "t2")
T1_SHARE_OF_PRIOR_DRAWS = 0.8  # the rest of the prior-drawn contrasts are T2


@dataclass(frozen=True)
class LabelPriors:
    """SynthSR's generation priors: label -> tissue class, per-class mean/std distributions."""

    labels: np.ndarray  # label values
    classes: np.ndarray  # tissue class of each label
    means: dict[str, np.ndarray]  # contrast -> (2, C): mean and spread of the class mean
    stds: dict[str, np.ndarray]  # contrast -> (2, C): mean and spread of the class std

    @classmethod
    def load(cls, directory: Path) -> "LabelPriors":
        return cls(
            labels=np.load(directory / "generation_labels.npy"),
            classes=np.load(directory / "generation_classes.npy"),
            means={c: np.load(directory / f"prior_means_{c}.npy") for c in CONTRASTS},
            stds={c: np.load(directory / f"prior_stds_{c}.npy") for c in CONTRASTS},
        )


def random_affine(rng: np.random.Generator, max_rotation_deg: float = 12.0, scale_range: float = 0.12) -> np.ndarray:
    """3x3 matrix: rotations about each axis, per-axis scaling and a small shear."""
    angles = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, 3))
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        rotation = np.eye(3)
        rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
        matrix = rotation @ matrix
    shear = np.eye(3) + np.triu(rng.uniform(-0.04, 0.04, (3, 3)), 1)
    return matrix @ shear @ np.diag(rng.uniform(1 - scale_range, 1 + scale_range, 3))


def deform_labels(labels: np.ndarray, rng: np.random.Generator, elastic_voxels: float = 3.0) -> np.ndarray:
    """Nearest-neighbour resampling of a label map through a random affine + elastic field."""
    shape = labels.shape
    centre = (np.asarray(shape) - 1) / 2.0
    affine = random_affine(rng)
    translation = rng.uniform(-6, 6, 3)
    coords = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), axis=-1)
    coords = (coords - centre) @ affine.T.astype(np.float32) + (centre + translation).astype(np.float32)
    coarse = torch.from_numpy(rng.normal(0, rng.uniform(0, elastic_voxels), (1, 3, 5, 5, 5)).astype(np.float32))
    field = torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0]
    coords += field.permute(1, 2, 3, 0).numpy()
    # grid_sample wants (x, y, z) = (last, middle, first) axis order, normalised to [-1, 1]
    normalised = 2.0 * coords / (np.asarray(shape, dtype=np.float32) - 1) - 1.0
    grid = torch.from_numpy(normalised[..., ::-1].astype(np.float32))[None]
    source = torch.from_numpy(labels.astype(np.float32))[None, None]
    warped = torch.nn.functional.grid_sample(source, grid, mode="nearest", padding_mode="zeros", align_corners=True)
    return warped[0, 0].numpy().astype(labels.dtype)


def bias_field_3d(shape: tuple[int, ...], rng: np.random.Generator, strength: float) -> np.ndarray:
    coarse = torch.from_numpy(rng.normal(0, strength, (1, 1, 4, 4, 4)).astype(np.float32))
    return torch.exp(torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear", align_corners=True))[0, 0].numpy()


def augment_intensity(image: np.ndarray, rng: np.random.Generator, bias_strength: float = 0.25) -> np.ndarray:
    """Bias field and gamma on a non-negative image, then the methods' normalisation."""
    image = np.maximum(image, 0) * bias_field_3d(image.shape, rng, rng.uniform(0, bias_strength))
    high = np.percentile(image, 99.9) or 1.0
    image = np.clip(image / high, 0, None) ** np.exp(rng.normal(0, 0.2))
    return IntensityNormalizer.fit(image).forward(image)


class SyntheticBrainGenerator:
    """Draws HR brain images of random contrast and shape from label maps."""

    def __init__(self, label_maps: list[np.ndarray], priors: LabelPriors, random_contrast_share: float = 0.25) -> None:
        self.label_maps = label_maps
        self.priors = priors
        self.random_contrast_share = random_contrast_share  # uniform class intensities (SynthSR): any contrast
        lookup_size = int(max(m.max() for m in label_maps)) + 1
        # label value -> tissue class; labels without a prior (e.g. 29) count as background (class 0)
        self.label_to_class = np.zeros(max(lookup_size, int(priors.labels.max()) + 1), dtype=np.int64)
        self.label_to_class[priors.labels] = priors.classes

    @classmethod
    def from_directory(cls, directory: Path, random_contrast_share: float = 0.25) -> "SyntheticBrainGenerator":
        maps = [read_volume(p).array.astype(np.int16) for p in sorted(directory.glob("brain*_labels.nii.gz"))]
        return cls(maps, LabelPriors.load(directory / "priors"), random_contrast_share)

    def class_intensities(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Per-class mean and std: uniform (contrast-agnostic) in ``random_contrast_share`` of the
        draws, else from a contrast prior (T1 or T2, :data:`T1_SHARE_OF_PRIOR_DRAWS`)."""
        draw, prior_share = rng.uniform(), 1.0 - self.random_contrast_share
        count = self.priors.means["t1_hr"].shape[1]
        if draw < prior_share:
            contrast = "t1_hr" if draw < T1_SHARE_OF_PRIOR_DRAWS * prior_share else "t2"
            means_prior, stds_prior = self.priors.means[contrast], self.priors.stds[contrast]
            means = rng.normal(means_prior[0], means_prior[1])
            stds = np.abs(rng.normal(stds_prior[0], stds_prior[1]))
        else:
            means, stds = rng.uniform(10, 255, count), rng.uniform(0, 15, count)
        means[0], stds[0] = 0.0, 0.0  # background
        return np.clip(means, 0, None), stds * rng.uniform(0.2, 0.6)  # milder texture than SynthSR's

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        labels = deform_labels(self.label_maps[rng.integers(len(self.label_maps))], rng)
        classes = self.label_to_class[labels]
        means, stds = self.class_intensities(rng)
        image = means[classes] + stds[classes] * rng.standard_normal(classes.shape)
        image = ndimage.gaussian_filter(image.astype(np.float32), rng.uniform(0.4, 1.0))  # partial volume
        return augment_intensity(image, rng)


def augment_real(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real scan with random left-right flip, bias field and gamma."""
    if rng.uniform() < 0.5:
        image = image[::-1]
    return augment_intensity(np.ascontiguousarray(image, dtype=np.float32), rng, bias_strength=0.15)
