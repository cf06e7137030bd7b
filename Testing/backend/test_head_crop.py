"""The slice engine computes the head only; the air around it keeps the conditioning."""
from __future__ import annotations

import numpy as np
import torch

from inference_backend.imaging.resampling import resample
from inference_backend.imaging.target import Refinement, target_grid
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.methods.base import MethodRequest, ModelInfo
from inference_backend.methods.options import SliceMethodOptions
from inference_backend.methods.slice_sampling import sample_slices
from inference_backend.methods.slicing import HEAD_MARGIN, head_box
from inference_backend.progress import Progress


def test_the_box_holds_the_tissue_and_a_margin_of_air_along_the_axes_asked_for():
    normalised = np.full((80, 70, 60), -1.0, np.float32)
    normalised[30:41, 25:36, 20:26] = 0.5
    box = head_box(normalised, axes=(0, 1))
    assert box[0] == slice(30 - HEAD_MARGIN, 41 + HEAD_MARGIN)
    assert box[1] == slice(25 - HEAD_MARGIN, 36 + HEAD_MARGIN)
    assert box[2] == slice(0, 60)  # not asked for: whole
    normalised[0, 0, 0] = 0.5  # tissue at a corner: the box reaches it, clipped to the volume
    assert head_box(normalised, axes=(0, 1, 2))[0] == slice(0, 41 + HEAD_MARGIN)
    assert head_box(np.full((5, 5, 5), -1.0), axes=(0, 1, 2)) == (slice(0, 5),) * 3  # no tissue: everything


def test_only_the_head_reaches_the_model_and_the_air_keeps_the_bspline_conditioning():
    array = np.zeros((72, 64, 12), np.float32)
    array[30:40, 26:36, 5:7] = 100.0
    volume = Volume(array, Grid(array.shape, (1.0, 1.0, 4.0), (0.0, 0.0, 0.0), np.eye(3)))
    target = target_grid(volume.grid, scale=(1.0, 1.0, 4.0))
    sizes: list[tuple[int, int]] = []

    def slice_model_for(generator: torch.Generator):
        def brighten(batch):
            sizes.append(batch.size)
            return batch.images + 0.5  # normalised units: background -1, the tissue's top +1

        return brighten

    request = MethodRequest(volume, Refinement(volume.grid, target), SliceMethodOptions(engine="pytorch"), Progress())
    result = sample_slices(request, slice_model_for, ModelInfo("brighten", "0"), network=None)
    conditioning = resample(volume, target, "bspline").array
    changed = ~np.isclose(result.volume.array, conditioning, atol=1e-3)
    box = head_box(np.where(conditioning > 10.0, 1.0, -1.0), axes=(0, 1, 2))
    inside = np.zeros(changed.shape, bool)
    inside[box] = True
    assert changed[inside].all() and not changed[~inside].any()
    np.testing.assert_allclose(result.volume.array[inside], conditioning[inside] + 0.5 * 50.0, atol=1e-2)  # slope 100 / 2
    assert max(h for h, _ in sizes) < max(target.size) and sizes  # cropped slices, never the whole plane
