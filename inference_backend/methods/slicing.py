"""The slice engine of the 2D methods (Res-SRDiff, SRMRI, MSP-SR).

A 2D network can only restore resolution along axes that lie *in* its slices. The engine
compares input and output spacing: the axes that get finer are the coarse ones.

* One coarse axis (thick slices, through-plane SR): slices are taken along each of the other
  two axes (e.g. sagittal and coronal for thick axial slices), so every slice contains the
  coarse axis; the two orientations are averaged (as SMORE does), which removes streaks.
* Two coarse axes (in-plane SR): slices in the plane of the two coarse axes.
* Three coarse axes: slices along each axis, averaged.

Each 2D slice is presented to the network with the coarse axis (or, with two, the coarser
one) as its *last* dimension, the convention of the training data. The engine works on the
conditioning volume, i.e. the LR volume already interpolated onto the output grid, so the
result is on that grid exactly: output voxel centres are those of :meth:`Grid.with_spacing`.
Slices are padded (edge replication) to a multiple of the network's stride and cropped back.
Only the head is computed: :func:`head_box` crops the conditioning volume to its tissue with a
margin of air, and the rest of the output grid keeps the conditioning (interpolated air).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from inference_backend.imaging.normalization import TISSUE_LEVEL
from inference_backend.imaging.target import Refinement
from inference_backend.imaging.volume import Grid
from inference_backend.progress import Progress

HEAD_MARGIN = 16  # voxels of air kept around the tissue, so that a slice's edge is air as it would be uncropped


@dataclass
class SliceBatch:
    """What a 2D model receives: padded slices, their true size, and the matching LR slices."""

    images: torch.Tensor  # (B, 1, H', W'), padded to the network's stride
    size: tuple[int, int]  # (H, W) before padding
    measured: torch.Tensor | None = None  # (B, 1, h, w) acquired slices, when the method asked for them
    context: torch.Tensor | None = None  # (B, 2k, H', W') the k slices either side (-k..-1, +1..+k), for 2.5D models


SliceModel = Callable[[SliceBatch], torch.Tensor]  # -> (B, 1, H', W')


@dataclass(frozen=True)
class SlicePlan:
    """Which axes are restored, and along which axes slices are cut."""

    coarse_axes: tuple[int, ...]
    slice_axes: tuple[int, ...]
    factors: tuple[float, float, float]

    @classmethod
    def between(cls, source: Grid, target: Grid) -> SlicePlan:
        refinement = Refinement(source, target)
        factors, coarse = refinement.factors, refinement.axes
        if len(coarse) == 1:
            slice_axes = tuple(a for a in range(3) if a != coarse[0])
        elif len(coarse) == 2:
            slice_axes = tuple(a for a in range(3) if a not in coarse)
        else:  # isotropic up-sampling, or none at all (the network still sees every axis)
            slice_axes = (0, 1, 2)
        return cls(coarse, slice_axes, factors)

    def in_plane_axes(self, slice_axis: int) -> tuple[int, int]:
        """The (H, W) volume axes of a slice cut along ``slice_axis``; the coarser is W."""
        first, second = (a for a in range(3) if a != slice_axis)
        return (second, first) if self.factors[first] > self.factors[second] else (first, second)


def head_box(normalised: np.ndarray, axes: tuple[int, ...], margin: int = HEAD_MARGIN) -> tuple[slice, slice, slice]:
    """The box around every voxel above the tissue level, grown by ``margin`` and clipped to the
    volume, along ``axes`` (the whole extent along the others); the whole volume without tissue."""
    tissue = normalised > TISSUE_LEVEL
    box = [slice(0, n) for n in normalised.shape]
    if not tissue.any():
        return tuple(box)
    for axis in axes:
        present = np.flatnonzero(tissue.any(axis=tuple(a for a in range(3) if a != axis)))
        box[axis] = slice(max(0, present[0] - margin), min(normalised.shape[axis], present[-1] + 1 + margin))
    return tuple(box)


def to_slices(volume: np.ndarray, slice_axis: int, in_plane: tuple[int, int]) -> np.ndarray:
    """(N, H, W) view with N along ``slice_axis`` and (H, W) along ``in_plane``."""
    return np.transpose(volume, (slice_axis, *in_plane))


def from_slices(slices: np.ndarray, slice_axis: int, in_plane: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`to_slices`."""
    return np.transpose(slices, np.argsort((slice_axis, *in_plane)))


def pad_to_multiple(batch: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    height, width = batch.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        batch = torch.nn.functional.pad(batch, (0, pad_w, 0, pad_h), mode="replicate")
    return batch, (height, width)


def run_slices(
    conditioning: np.ndarray,
    plan: SlicePlan,
    model: SliceModel,
    batch_size: int,
    progress: Progress,
    device: str = "cpu",
    multiple: int = 16,
    measurement: np.ndarray | None = None,
    context: int = 0,
) -> np.ndarray:
    """Apply ``model`` to every slice of ``conditioning`` in each orientation of ``plan``; average.

    ``measurement`` (the LR volume, for methods that enforce data consistency) is sliced the
    same way and handed to the model in :attr:`SliceBatch.measured`, unpadded. Its slices exist
    only when the slicing axis is not a coarse one (same slice count as the HR grid).
    ``context`` k > 0 hands the model the k neighbouring slices either side in
    :attr:`SliceBatch.context` (the edge slice repeated past the volume's ends).
    """
    offsets = [o for o in range(-context, context + 1) if o != 0]
    total = sum(conditioning.shape[a] for a in plan.slice_axes)
    done = 0
    result = np.zeros(conditioning.shape, dtype=np.float32)
    for slice_axis in plan.slice_axes:
        in_plane = plan.in_plane_axes(slice_axis)
        slices = to_slices(conditioning, slice_axis, in_plane)
        measured = None if measurement is None else to_slices(measurement, slice_axis, in_plane)
        if measured is not None and measured.shape[0] != slices.shape[0]:
            raise ValueError("measurement slices need a slicing axis that is not up-sampled")
        restored = np.empty(slices.shape, dtype=np.float32)
        for start in range(0, slices.shape[0], batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch_size]))[:, None].to(device)
            padded, (height, width) = pad_to_multiple(batch, multiple)
            lr = None if measured is None else torch.from_numpy(np.ascontiguousarray(measured[start : start + batch_size]))[:, None].to(device)
            neighbours = None
            if offsets:
                indices = np.clip(np.arange(start, start + batch.shape[0])[:, None] + offsets, 0, slices.shape[0] - 1)
                neighbours = pad_to_multiple(torch.from_numpy(slices[indices]).to(device), multiple)[0]
            with torch.no_grad():
                output = model(SliceBatch(padded, (height, width), lr, neighbours))[:, 0, :height, :width]
            restored[start : start + batch.shape[0]] = output.float().cpu().numpy()
            done += batch.shape[0]
            progress.report(done / total, f"{done}/{total} slices")
        result += from_slices(restored, slice_axis, in_plane)
    return result / len(plan.slice_axes)
