"""InverseSR(Decoder): find the latent whose decoded volume, seen through the corruption,
matches what was measured; the decoder then supplies what the corruption hid.

    z* = argmin_z  L1(W * (f(D(z)) - y)) + lambda * L1 of W-masked finite differences

f is the corruption (slice sampling for slice imputation; the identity for lesion filling),
W marks the measured voxels (0 inside a lesion), and the finite-difference term stands in for
the paper's VGG perceptual loss, whose weights are not obtainable offline: it matches edges,
not only intensities. Adam at the paper's learning rate; the latent starts at the encoding of
a classical estimate (B-spline / neighbourhood fill) instead of the mean latent, which is what
makes a few dozen steps enough on a CPU. A proximity term ``anchor * mean((z - z_start)^2)``
keeps the latents that the data barely reach (a lesion's interior, the gaps between acquired
slices) near where they started: Adam normalises each coordinate's step, so without it their
tiny gradients become full-size random walks (without it a large lesion fills with near-black
voxels; the measured effect: docs/methods/inverse-sr.md). Large volumes are
inverted in overlapping tiles with a linear cross-fade (tractable memory: one tile's
activations at a time).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from inference_backend.networks.autoencoder import PriorAutoencoder

Corruption = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class InversionSettings:
    steps: int = 40
    learning_rate: float = 0.07  # the paper's Adam learning rate
    structural_weight: float = 0.5
    anchor: float = 0.0  # weight of the proximity term to the starting latent (0: the paper's loss)
    tile: int = 64  # voxels per tile side (a multiple of the prior's factor)
    overlap: int = 16


def masked_l1(predicted: torch.Tensor, measured: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (weight * (predicted - measured).abs()).sum() / weight.sum().clamp_min(1.0)


def structural_l1(predicted: torch.Tensor, measured: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 between finite differences along each spatial axis, where both neighbours are measured."""
    total = predicted.new_zeros(())
    for dim in range(2, predicted.ndim):
        if predicted.shape[dim] < 2:
            continue
        pair = weight.narrow(dim, 1, weight.shape[dim] - 1) * weight.narrow(dim, 0, weight.shape[dim] - 1)
        total = total + masked_l1(torch.diff(predicted, dim=dim), torch.diff(measured, dim=dim), pair)
    return total


def invert(
    prior: PriorAutoencoder,
    initial: torch.Tensor,
    measured: torch.Tensor,
    weight: torch.Tensor,
    corruption: Corruption,
    settings: InversionSettings,
    on_step: Callable[[int], None] = lambda step: None,
) -> torch.Tensor:
    """Optimise the latent of one region ``(1, 1, X, Y, Z)``; returns the decoded region."""
    for parameter in prior.parameters():
        parameter.requires_grad_(False)
    with torch.no_grad():
        start = prior.encode(initial)
    latent = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=settings.learning_rate)
    for step in range(settings.steps):
        predicted = corruption(prior.decode(latent))
        loss = masked_l1(predicted, measured, weight) + settings.structural_weight * structural_l1(predicted, measured, weight)
        loss = loss + settings.anchor * (latent - start).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        on_step(step)
    with torch.no_grad():
        return prior.decode(latent)


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering ``[0, size)`` (``size >= tile``), the last one flush with the end."""
    stride = tile - overlap
    starts = list(range(0, max(size - tile, 0) + 1, stride))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def tiles(shape: tuple[int, ...], tile: int, overlap: int) -> Iterator[tuple[slice, ...]]:
    for x in tile_starts(shape[0], tile, overlap):
        for y in tile_starts(shape[1], tile, overlap):
            for z in tile_starts(shape[2], tile, overlap):
                yield tuple(slice(s, s + tile) for s in (x, y, z))


def crossfade_weight(tile: int, overlap: int) -> np.ndarray:
    """Separable weight, 1 in the middle, ramping linearly to near 0 over ``overlap`` at each side."""
    ramp = np.ones(tile)
    if overlap > 0:
        edge = (np.arange(overlap) + 0.5) / overlap
        ramp[:overlap], ramp[-overlap:] = edge, edge[::-1]
    return ramp[:, None, None] * ramp[None, :, None] * ramp[None, None, :]
