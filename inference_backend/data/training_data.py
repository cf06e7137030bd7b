"""The streaming source of (HR, LR) training pairs shared by every training script.

HR volumes come from the synthetic generator (label maps) and from augmented real scans.
From each volume, 2D slices along a random axis are degraded by a randomly drawn forward
model, then up-sampled back onto the HR grid with the same B-spline as inference, so a
network sees exactly what the slice engine will feed it:

* through-plane (thick slices along the slice's last axis, W): profile gaussian/box/sinc,
  factor 2-6, slice thickness 80-100% of the spacing (the rest is gap);
* in-plane (both axes): k-space truncation, anti-aliased bicubic or Gaussian blur +
  decimation, factor uniform in 2-4;
* Rician noise on the acquisition (0-2% of the intensity range).

Deterministic under a seed (one ``numpy`` generator per worker, seeded from it).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference_backend.data.clinical import (
    HELD_OUT_PATIENTS,
    TRAINING_PATIENTS,
    clinical_scans,
    in_plane_slice_source,
)
from inference_backend.data.synth import T1_SHARE_OF_PRIOR_DRAWS, SyntheticBrainGenerator, augment_real
from inference_backend.imaging.io import read_volume
from inference_backend.operators.degradation import PROFILES
from inference_backend.operators.slice_degradation import (
    Degradation,
    degraded_patch,
    patch_window,
    projection_matrix,
    random_window,
)

VolumeSource = Callable[[np.random.Generator], np.ndarray]
DEFAULT_FACTORS = (2, 3, 4, 5, 6)
TRAINING_SCANS = ("chris_t1", "stroke_T1")  # seg3D_MR (held out) and the MNI templates (benchmark) are never trained on


def draw_degradation(
    rng: np.random.Generator, factors: tuple[int, ...] = DEFAULT_FACTORS, in_plane_share: float = 0.3
) -> Degradation:
    factor = int(rng.choice(factors))
    noise = float(rng.uniform(0, 0.02)) if rng.uniform() < 0.7 else 0.0
    if rng.uniform() < in_plane_share:
        factor = int(rng.choice([f for f in factors if f <= 4] or [min(factors)]))
        operator = str(rng.choice(["kspace", "bicubic", "gaussian"], p=[0.6, 0.2, 0.2]))
        return Degradation("in-plane", operator, factor, float(factor), noise)
    thickness = round(float(factor * rng.uniform(0.8, 1.0)), 1)
    return Degradation("through-plane", str(rng.choice(PROFILES)), factor, thickness, noise)


def split_weighted(sources: list[tuple[VolumeSource, float]]) -> tuple[list[VolumeSource], np.ndarray]:
    """(the sources, their weights normalised to probabilities)."""
    weights = np.asarray([w for _, w in sources], dtype=float)
    return [s for s, _ in sources], weights / weights.sum()


class SlicePairStream(torch.utils.data.IterableDataset):
    """Endless (HR, conditioning) patch pairs, ``(1, P, P)`` tensors each, normalised to [-1, 1].

    With ``context`` k > 0, a pair also holds the conditioning of the k slices on either side
    (``"context"``, ``(2k, P, P)``, order -k..-1, +1..+k; degraded with the centre, one forward
    model): what the slice engine hands a 2.5D network. In a ``context_dropout`` share of the
    pairs the neighbours are replaced by the centre's conditioning, the input that says "no
    neighbours known", so the same network also restores lone 2D images (scan adaptation).
    """

    def __init__(
        self,
        sources: list[tuple[VolumeSource, float]],
        patch_size: int = 64,
        pairs_per_refresh: int = 48,
        seed: int = 0,
        factors: tuple[int, ...] = DEFAULT_FACTORS,
        pool_size: int = 4,
        in_plane_share: float = 0.3,
        hr_only: bool = False,
        with_operator: bool = False,
        context: int = 0,
        context_dropout: float = 0.0,
    ) -> None:
        self.sources, self.weights = split_weighted(sources)
        self.context, self.context_dropout = context, context_dropout
        self.patch_size, self.pairs_per_refresh, self.seed, self.factors = patch_size, pairs_per_refresh, seed, factors
        self.pool_size, self.in_plane_share = pool_size, in_plane_share
        self.hr_only = hr_only  # unconditional priors: skip the (costly) degradation
        self.with_operator = with_operator  # consistency losses: also yield the projection A of each pair

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Pairs drawn from a pool of volumes, one of which is replaced every ``pairs_per_refresh``
        pairs: a batch mixes volumes (contrasts, shapes) while each costly volume serves many pairs."""
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id])

        def new_volume() -> np.ndarray:
            return self.sources[rng.choice(len(self.sources), p=self.weights)](rng)

        pool = [new_volume() for _ in range(self.pool_size)]
        while True:
            for _ in range(self.pairs_per_refresh):
                yield self.draw_pair(pool[rng.integers(len(pool))], rng)
            pool[rng.integers(len(pool))] = new_volume()

    def draw_pair(self, volume: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A patch pair from a slice of ``volume`` (or from ``volume`` itself when it is a 2D image)."""
        k = self.context
        if volume.ndim == 2:
            stack, centre = volume[None], 0  # a lone image: its neighbours are unknown
        else:
            axis = int(rng.integers(3))
            index = int(rng.integers(volume.shape[axis] // 5, volume.shape[axis] * 4 // 5))
            neighbours = np.clip(np.arange(index - k, index + k + 1), 0, volume.shape[axis] - 1)
            stack, centre = np.moveaxis(np.take(volume, neighbours, axis=axis), axis, 0), k
        if rng.uniform() < 0.5:
            stack = stack.swapaxes(1, 2)  # either in-plane axis of the volume may be the coarse one
        if self.hr_only:
            hr = random_window(stack[centre], self.patch_size, rng).astype(np.float32)
            return {"hr": torch.from_numpy(np.ascontiguousarray(hr))[None]}
        degradation = draw_degradation(rng, self.factors, self.in_plane_share)
        hr, conditioning = (torch.from_numpy(a) for a in degraded_patch(stack, degradation, self.patch_size, rng))
        pair = {"hr": hr[centre : centre + 1].contiguous(), "conditioning": conditioning[centre : centre + 1].contiguous()}
        if k > 0:
            known = len(stack) > 1 and rng.uniform() >= self.context_dropout
            pair["context"] = torch.cat([conditioning[:centre], conditioning[centre + 1 :]]) if known else pair["conditioning"].repeat(2 * k, 1, 1)
        if self.with_operator:
            # A restricted to the patch (rows: first axis, columns: second): exact away from the
            # patch border, where the margin's contribution is left out
            # (the window is square, so both degraded axes share one matrix)
            window, centre = patch_window(self.patch_size, degradation.factor)
            projection = torch.from_numpy(np.ascontiguousarray(projection_matrix(degradation, window)[centre, centre], dtype=np.float32))
            identity = torch.eye(self.patch_size)
            pair["operator_rows"] = identity if degradation.family == "through-plane" else projection
            pair["operator_columns"] = projection
        return pair


class VolumeCropStream(torch.utils.data.IterableDataset):
    """Endless HR 3D crops ``{"hr": (1, C, C, C)}`` in [-1, 1], mostly tissue, from a pool of volumes
    (the training data of the 3D generative prior)."""

    def __init__(self, sources: list[tuple[VolumeSource, float]], crop: int = 48, crops_per_refresh: int = 16, seed: int = 0) -> None:
        self.sources, self.weights = split_weighted(sources)
        self.crop, self.crops_per_refresh, self.seed = crop, crops_per_refresh, seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id])
        while True:
            volume = self.sources[rng.choice(len(self.sources), p=self.weights)](rng)
            volume = np.pad(volume, [(0, max(0, self.crop - n)) for n in volume.shape], mode="edge")
            for _ in range(self.crops_per_refresh):
                yield {"hr": torch.from_numpy(self.draw_crop(volume, rng))[None]}

    def draw_crop(self, volume: np.ndarray, rng: np.random.Generator, tries: int = 6) -> np.ndarray:
        for attempt in range(tries):
            corner = [int(rng.integers(0, n - self.crop + 1)) for n in volume.shape]
            crop = volume[tuple(slice(c, c + self.crop) for c in corner)]
            if (crop > -0.8).mean() > 0.3 or attempt == tries - 1:
                break
        for axis in range(3):
            if rng.uniform() < 0.5:
                crop = np.flip(crop, axis)
        return np.ascontiguousarray(crop, dtype=np.float32)


@dataclass(frozen=True)
class DataMix:
    """How the HR images are drawn: the share of synthetic label-map brains (the rest: the real
    training scans), and the share of those whose contrast is uniformly random (SynthSR's
    contrast randomisation; the rest follow the T1/T2 priors)."""

    synthetic_share: float = 0.5
    random_contrast_share: float = 0.25
    clinical_share: float = 0.0  # acquired slices of the training patients' clinical scans (the rest: as above)

    def description(self, scans: tuple[str, ...] = TRAINING_SCANS) -> str:
        t1 = (1 - self.random_contrast_share) * T1_SHARE_OF_PRIOR_DRAWS
        t2 = 1 - self.random_contrast_share - t1
        volumes = 1 - self.clinical_share
        text = (
            f"2D patches from HR volumes: {volumes * self.synthetic_share:.0%} synthetic brains from the 5 SynthSR label maps (random "
            f"affine + elastic deformation; GMM intensities from the T1 prior ({t1:.0%}), the T2 prior "
            f"({t2:.0%}) or uniform ({self.random_contrast_share:.0%}); partial-volume blur, bias field, gamma) and "
            f"{volumes * (1 - self.synthetic_share):.0%} augmented real scans ({', '.join(scans)}: flips, bias field, gamma)."
        )
        if self.clinical_share:
            text += (
                f" {self.clinical_share:.0%}: acquired in-plane slices (0.5-0.9 mm) of the real clinical 2D FLAIR, T2 and T1 scans "
                f"of patients {', '.join(TRAINING_PATIENTS)} (held out: {', '.join(HELD_OUT_PATIENTS)}), mirrored, degraded along one "
                "of their axes like every other image."
            )
        return text


def default_sources(data_dir: Path, scans: tuple[str, ...] = TRAINING_SCANS, mix: DataMix = DataMix()) -> list[tuple[VolumeSource, float]]:
    """Synthetic label-map brains and the training real scans (never the held-out ones)."""
    generator = SyntheticBrainGenerator.from_directory(data_dir / "labels", mix.random_contrast_share)
    volumes = 1 - mix.clinical_share
    sources: list[tuple[VolumeSource, float]] = [(generator.sample, volumes * mix.synthetic_share)]
    real = scan_sources([data_dir / "real" / f"{name}.nii.gz" for name in scans])
    sources += [(source, volumes * (1 - mix.synthetic_share) * weight) for source, weight in real]
    if mix.clinical_share:
        sources.append((in_plane_slice_source(clinical_scans(data_dir, TRAINING_PATIENTS)), mix.clinical_share))
    return sources


def scan_sources(paths: list[Path]) -> list[tuple[VolumeSource, float]]:
    """Augmented real HR scans, equally weighted (a user's own scans for fine-tuning)."""
    scans = [read_volume(path).array.astype(np.float32) for path in paths]
    return [(lambda rng, scan=scan: augment_real(scan, rng), 1 / len(scans)) for scan in scans]


NATURAL_IMAGES = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "grass",
    "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
)  # fmt: skip


def natural_image_sources() -> list[tuple[VolumeSource, float]]:
    """scikit-image's bundled photographs as grey 2D images: MSP-SR's out-of-domain data."""
    import skimage.color
    import skimage.data

    def grey(name: str) -> np.ndarray:
        image = getattr(skimage.data, name)()
        image = skimage.color.rgb2gray(image[..., :3]) if image.ndim == 3 else image / 255.0
        return image.astype(np.float32)

    images = [grey(name) for name in NATURAL_IMAGES]

    def draw(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
        image = np.rot90(image, int(rng.integers(4)))
        return (2 * np.clip(image, 0, 1) ** np.exp(rng.normal(0, 0.25)) - 1).astype(np.float32)

    return [(lambda rng, image=image: draw(rng, image), 1 / len(images)) for image in images]
