"""InverseSR(Decoder) slice imputation: invert the 3D generative prior so that the decoded HR
volume, sampled where the scan's slices lie, matches the scan.

The corruption f is built from the two grids: along each coarse axis, an LR voxel is the HR
volume sampled at its centre (``acquisition=thin``: the paper's slice imputation, acquired
slices with gaps) or averaged over its extent (``acquisition=thick``: contiguous thick slices).
With ``keep_acquired`` the result is finally projected onto the scan through that same model
(x + A^+(y - A x)), so the acquired slices come back as acquired and the prior only supplies
what lies between them: the decoder reconstructs the measured slices only approximately.
Its misfit y - A x is smooth (the prior's bias, not noise), so before the projection it is
interpolated onto the output grid and added (``misfit=linear``): the slices between the
acquired ones get the same correction as their neighbours, not none. With thin slices and
linear interpolation (interpolating at the slice centres) the projection is then exact already.
"""
from __future__ import annotations

import numpy as np
import torch

from inference_backend.assets import build_network
from inference_backend.errors import InputError
from inference_backend.imaging.normalization import IntensityNormalizer
from inference_backend.imaging.resampling import resample
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.methods.base import MethodRequest, MethodResult, ModelInfo
from inference_backend.methods.inversion import (
    InversionSettings,
    crossfade_weight,
    invert,
    tiles,
)
from inference_backend.networks.autoencoder import PriorAutoencoder
from inference_backend.operators import consistency
from inference_backend.operators.degradation import AxisOperator, SeparableOperator

BACKGROUND_LEVEL = -0.9  # normalised intensity below which a tile is air (background is -1)


def load_prior(name: str, device: str) -> tuple[PriorAutoencoder, ModelInfo]:
    network, card = build_network(name, PriorAutoencoder.from_checkpoint)
    return network.to(device), ModelInfo(name, card["sha256"], card)


def axis_sampling_matrix(hr: Grid, lr: Grid, axis: int, acquisition: str) -> np.ndarray:
    """``lr.size[axis] x hr.size[axis]``: each LR voxel as a function of the HR voxels along ``axis``."""
    mapping = np.linalg.solve(hr.ijk_to_lps(), lr.ijk_to_lps())  # LR index -> HR continuous index
    off_axis = np.delete(mapping[:3, axis], axis)
    if np.abs(off_axis).max() > 1e-4:
        raise InputError("the target grid is not aligned with the input grid (rotated grids are not supported)")
    scale, offset = mapping[axis, axis], mapping[axis, 3]
    n = hr.size[axis]
    centres = offset + scale * np.arange(lr.size[axis])
    matrix = np.zeros((lr.size[axis], n))
    if acquisition == "thin":  # linear interpolation at the slice centre
        floor = np.clip(np.floor(centres).astype(int), 0, n - 1)
        upper = np.clip(floor + 1, 0, n - 1)
        fraction = np.clip(centres - floor, 0.0, 1.0)
        np.add.at(matrix, (np.arange(len(centres)), floor), 1 - fraction)
        np.add.at(matrix, (np.arange(len(centres)), upper), fraction)
    else:  # box average over the LR voxel's extent
        edges = np.arange(n + 1) - 0.5
        for row, centre in enumerate(centres):
            low, high = centre - abs(scale) / 2, centre + abs(scale) / 2
            matrix[row] = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None)
        matrix /= matrix.sum(1, keepdims=True).clip(1e-12)
    return matrix


def restricted(matrix: np.ndarray, columns: slice) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``matrix`` that depend only on ``columns``, their sub-matrix on those columns)."""
    inside = np.zeros(matrix.shape[1], dtype=bool)
    inside[columns] = True
    rows = np.flatnonzero((matrix[:, ~inside] == 0).all(1) & (matrix[:, inside] != 0).any(1))
    return rows, matrix[np.ix_(rows, np.flatnonzero(inside))]


def interpolated_misfit(
    estimate: np.ndarray, measured: Volume, acquisition: SeparableOperator, target: Grid, kind: str
) -> np.ndarray:
    """``B (y - A x)``: the misfit on the scan's grid, interpolated onto the output grid."""
    misfit = measured.array - acquisition(torch.from_numpy(estimate.astype(np.float64))).numpy()
    return resample(measured.with_array(misfit.astype(np.float32)), target, kind).array


def run(request: MethodRequest) -> MethodResult:
    options = request.options
    prior, model = load_prior(options.model, request.device)
    factor = prior.factor
    tile = max(factor, int(options.tile) // factor * factor)
    settings = InversionSettings(steps=options.steps, anchor=options.anchor, tile=tile, overlap=min(options.overlap, tile // 2))
    progress = request.progress
    with progress.stage("B-spline start", 0.0, 0.05):
        normalizer = IntensityNormalizer.fit(request.volume.array)
        initial = normalizer.forward(resample(request.volume, request.target, "bspline", progress).array)
        measured = normalizer.forward(request.volume.array)
    matrices = {  # fine axes: the identity (padded voxels below are never measured)
        axis: axis_sampling_matrix(request.target, request.volume.grid, axis, options.acquisition)
        if request.volume.grid.size[axis] != request.target.size[axis]
        else np.eye(request.target.size[axis])
        for axis in range(3)
    }
    shape = request.target.size
    padded = tuple(max(n, tile) for n in shape)
    initial = np.pad(initial, [(0, p - n) for p, n in zip(padded, shape)], mode="edge")
    matrices = {a: np.pad(m, [(0, 0), (0, padded[a] - shape[a])]) for a, m in matrices.items()}
    total = np.zeros(padded, dtype=np.float64)
    weights = np.zeros(padded, dtype=np.float64)
    blend = crossfade_weight(tile, settings.overlap)
    regions = list(tiles(padded, tile, settings.overlap))
    with progress.stage("latent inversion", 0.05, 1.0):
        for number, region in enumerate(regions, start=1):
            measured_tile, operators = measured, []
            for axis in range(3):
                rows, sub = restricted(matrices[axis], region[axis])
                measured_tile = np.take(measured_tile, rows, axis=axis)
                operators.append((axis, torch.as_tensor(sub, dtype=torch.float32, device=request.device)))

            def corruption(x: torch.Tensor, operators=operators) -> torch.Tensor:
                for axis, matrix in operators:
                    x = torch.movedim(torch.tensordot(x, matrix, dims=([2 + axis], [1])), -1, 2 + axis)
                return x

            def on_step(step: int, number: int = number) -> None:
                done = (number - 1) * settings.steps + step + 1
                progress.report(done / (len(regions) * settings.steps), f"tile {number}/{len(regions)}")

            if initial[region].max() < BACKGROUND_LEVEL:  # air only: nothing for the prior to add
                decoded = initial[region]
                on_step(settings.steps - 1)
            else:
                target = torch.as_tensor(np.ascontiguousarray(measured_tile), device=request.device)[None, None]
                start = torch.as_tensor(np.ascontiguousarray(initial[region]), device=request.device)[None, None]
                decoded = invert(prior, start, target, torch.ones_like(target), corruption, settings, on_step)[0, 0].double().cpu().numpy()
            total[region] += blend * decoded
            weights[region] += blend
    estimate = (total / weights)[tuple(slice(0, n) for n in shape)]
    if options.keep_acquired:
        coarse = [AxisOperator(a, matrices[a][:, : shape[a]]) for a in range(3) if request.volume.grid.size[a] != shape[a]]
        acquisition = SeparableOperator(coarse, ndim=3)
        if options.misfit != "none":
            scan = Volume(measured, request.volume.grid)
            estimate = estimate + interpolated_misfit(estimate, scan, acquisition, request.target, options.misfit)
        estimate = consistency.project_with(estimate, measured, acquisition)
    return MethodResult(volume=Volume(normalizer.inverse(estimate.astype(np.float32)), request.target), model=model)
