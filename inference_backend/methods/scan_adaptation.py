"""Self-supervised adaptation of a slice network to the scan it is about to restore (after SMORE,
Zhao et al., 2021).

A thick-slice scan is high-resolution *within* its slices. Those slices, degraded along one of
their axes by the thick-slice profile, are (HR, up-sampled LR) pairs with exactly the scan's
contrast, noise, coil shading and anatomy, the things a network trained on other brains gets
slightly wrong. A few hundred fine-tuning steps on them, starting from the bundled weights,
adapt the network before it restores the through-plane axis. Only the scan itself is used:
no reference, no other data. The bundled weights on disk never change.

With a held-out check, the scan says how long to adapt: some of its slices are held out of the
training pairs, and the adaptation keeps the weights that restore them best, stopping once more
steps stop helping (an option: on held-out scans it gained nothing over the fixed count,
benchmarks/results/studies/adaptation-check).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from skimage.transform import rescale
from torch import nn

from inference_backend.imaging.normalization import TISSUE_LEVEL
from inference_backend.operators.slice_degradation import Degradation, degraded_patch
from inference_backend.progress import Progress

MIN_TISSUE_SHARE = 0.1  # slices with less tissue than this (air above the head) give no pairs
HELD_OUT_EVERY = 5  # every fifth slice with tissue is held out of the pairs to judge the adaptation
MIN_HELD_OUT = 2  # fewer held-out slices than this judge nothing: the adaptation goes unchecked
PROFILE = "gaussian"  # the thick-slice model: Gaussian profile, FWHM = slice thickness (the data engine's)


@dataclass(frozen=True)
class AdaptationSettings:
    """How long and how fast to adapt (the method's options, whose defaults say why)."""

    steps: int  # the most steps; fewer where the held-out slices stop improving
    learning_rate: float
    patch: int
    batch_size: int = 8
    seed: int = 0
    check_every: int = 50  # steps between two checks on the held-out slices
    patience: int = 4  # checks without a better held-out error before the adaptation stops
    held_out_patches: int = 32


def resampled(image: np.ndarray, zoom: tuple[float, float]) -> np.ndarray:
    """``image`` with its axes scaled by ``zoom`` (cubic, anti-aliased where it shrinks); itself
    where the zoom is 1."""
    if all(abs(z - 1.0) < 1e-3 for z in zoom):
        return image
    return rescale(image, zoom, order=3, anti_aliasing=any(z < 1 for z in zoom), preserve_range=True, mode="reflect").astype(image.dtype)


def network_zooms(
    source: tuple[float, ...], target: tuple[float, ...], coarse_axis: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """:class:`ScanPairs`' ``zooms`` for a scan of spacing ``source`` restored onto ``target``:
    per in-slice axis playing the coarse one, the zoom of each image axis (in the order
    :func:`in_slice_images` keeps them) to the target's spacing there, never above 1."""
    first, second = (a for a in range(3) if a != coarse_axis)

    def shrink(axis: int, to: int) -> float:
        return min(1.0, source[axis] / target[to])

    return (shrink(first, coarse_axis), shrink(second, second)), (shrink(first, first), shrink(second, coarse_axis))


def in_slice_images(normalised: np.ndarray, coarse_axis: int) -> list[np.ndarray]:
    """The scan's acquired slices (perpendicular to its coarse axis) that hold tissue."""
    slices = np.moveaxis(normalised, coarse_axis, 0)
    return [np.ascontiguousarray(s) for s in slices if (s > TISSUE_LEVEL).mean() >= MIN_TISSUE_SHARE]


def held_out_split(images: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training, held-out) slices: every :data:`HELD_OUT_EVERY`-th slice from the middle one
    of the first run is held out; none where too few would be (the training keeps them all)."""
    held = set(range(HELD_OUT_EVERY // 2, len(images), HELD_OUT_EVERY))
    if len(held) < MIN_HELD_OUT:
        return images, []
    return [im for i, im in enumerate(images) if i not in held], [im for i, im in enumerate(images) if i in held]


class ScanPairs:
    """Training pairs from a scan's own slices: a random window, either in-slice axis (randomly
    mirrored) degraded as the coarse axis was, then up-sampled with the inference B-spline:
    a sample every ``factor`` pixels, of FWHM ``thickness`` (the slice thickness over the slice
    spacing: below 1 a gap between the slices) times ``factor``.

    ``zooms[k]``: the factors that bring an image's two axes to the pixels the network meets at
    inference when its axis ``k`` plays the coarse one (that axis at the target's slice
    spacing, the other at the target's in-plane spacing). A clinical scan's 0.6 mm pixels hold
    anatomy 1.6 times smaller per pixel than the planes the network restores on a 1 mm target:
    pairs at the scan's own pixels would teach it a slice profile too thin by as much. Images
    are only ever shrunk (:func:`network_zooms`): one enlarged to a finer target holds no detail and
    teaches blur (-0.28 dB on seg3D_MR, 1 mm pixels restored at 0.9 mm:
    benchmarks/results/studies/adaptation-pixel-size)."""

    def __init__(
        self, images: list[np.ndarray], factor: float, patch: int, rng: np.random.Generator, thickness: float = 1.0,
        zooms: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 1.0), (1.0, 1.0)),
    ) -> None:
        self.views = [(resampled(image, zooms[1]), resampled(image, zooms[0]).T) for image in images]
        self.patch, self.rng = patch, rng
        self.degradation = Degradation("through-plane", PROFILE, round(factor), float(factor) * thickness, 0.0)

    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        last_coarse, first_coarse = self.views[self.rng.integers(len(self.views))]
        image = first_coarse if self.rng.uniform() < 0.5 else last_coarse  # either in-slice axis plays the coarse one
        if self.rng.uniform() < 0.5:
            image = image[::-1]
        return degraded_patch(image, self.degradation, self.patch, self.rng)

    def batch(self, size: int, device: str) -> dict[str, torch.Tensor]:
        pairs = [self.pair() for _ in range(size)]
        stack = lambda index: torch.from_numpy(np.stack([p[index] for p in pairs]))[:, None].to(device)  # noqa: E731
        return {"hr": stack(0), "conditioning": stack(1)}


Loss = Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]


class HeldOutCheck:
    """The error of the adapted network on a fixed batch of held-out pairs (the same patches at
    every check, so that two checks differ only by the weights)."""

    def __init__(self, pairs: ScanPairs, settings: AdaptationSettings, error: Loss, device: str) -> None:
        self.batch, self.error = pairs.batch(settings.held_out_patches, device), error

    def __call__(self, net: nn.Module) -> float:
        with torch.no_grad():
            return float(self.error(net.eval(), self.batch))


def adapt_to_scan(
    net: nn.Module,
    loss: Loss,
    pairs: ScanPairs,
    settings: AdaptationSettings,
    progress: Progress,
    device: str,
    check: Callable[[nn.Module], float] | None = None,
) -> int:
    """Fine-tune ``net`` in place on ``pairs`` (Adam, seeded; the global RNG state is restored),
    leave it in evaluation mode and return the steps its weights were trained for. With a
    ``check``, the weights kept are those with the lowest held-out error (the bundled ones
    where no step improves on them), and the training stops after ``patience`` checks
    without a better one."""
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=settings.learning_rate)
    best_error, best_step, best_state = (check(net), 0, clone_state(net)) if check else (math.inf, settings.steps, None)
    net.train()
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        torch.manual_seed(settings.seed)
        for step in range(1, settings.steps + 1):
            value = loss(net, pairs.batch(settings.batch_size, device))
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            progress.report(step / settings.steps, f"step {step} of {'at most ' if check else ''}{settings.steps}, loss {value.item():.4f}")
            if check and (step % settings.check_every == 0 or step == settings.steps):
                error = check(net)
                if error < best_error:
                    best_error, best_step, best_state = error, step, clone_state(net)
                elif step - best_step >= settings.patience * settings.check_every:
                    break
                net.train()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return best_step


def clone_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in net.state_dict().items()}
