"""Lesion filling: replace the voxels inside a lesion mask with plausible healthy tissue.

Only voxels inside the mask ever change. Two classical fills users know, the references for
generative fills (which plug in through the same :func:`fill_lesion` entry point):

* ``neighbourhood``: biharmonic inpainting from the surrounding tissue (scikit-image), a
  smooth continuation of the intensities around the lesion;
* ``nawm-mean``: the mean intensity of normal-appearing white matter around the lesion,
  white matter being the brightest of three tissue classes (multi-Otsu; T1-weighted images).

and the generative fill of InverseSR:

* ``inverse-sr``: the lesion is added to the corruption: the latent of the 3D prior is
  optimised to match the tissue around the lesion only (a box with a margin), and the decoder
  fills the lesion. It starts from the neighbourhood fill. The decoder misses the tissue around
  the lesion by a smooth amount (its bias); that misfit, continued into the lesion by the same
  biharmonic inpainting, is added, so the fill meets its surroundings.
"""
from __future__ import annotations

import numpy as np

from inference_backend.imaging.resampling import resample
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.methods.options import LESION_FILLS


def mask_on_grid(mask: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Carry a binary mask onto another grid (linear interpolation of the indicator, >= 0.5)."""
    if source.matches(target):
        return mask
    indicator = Volume(mask.astype(np.float32), source)
    return resample(indicator, target, "linear").array >= 0.5


def bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The mask's bounding box grown by ``margin`` voxels, clipped to the array."""
    nonzero = np.nonzero(mask)
    return tuple(
        slice(max(0, int(index.min()) - margin), min(size, int(index.max()) + margin + 1))
        for index, size in zip(nonzero, mask.shape)
    )


def fill_neighbourhood(array: np.ndarray, mask: np.ndarray, margin: int = 4) -> np.ndarray:
    """Biharmonic inpainting of the masked voxels from a margin of surrounding tissue."""
    from skimage.restoration import inpaint_biharmonic

    box = bounding_box(mask, margin)
    filled = array.astype(np.float32, copy=True)
    filled[box] = inpaint_biharmonic(filled[box], mask[box])
    filled[~mask] = array[~mask]  # bit-exact outside the mask
    return filled


def fill_nawm_mean(array: np.ndarray, mask: np.ndarray, shell_voxels: int = 12) -> np.ndarray:
    """Masked voxels set to the mean white-matter intensity in a shell around the lesion."""
    from scipy import ndimage
    from skimage.filters import threshold_multiotsu, threshold_otsu

    shell = ndimage.binary_dilation(mask, iterations=shell_voxels) & ~mask
    healthy = array[~mask]
    foreground = healthy[healthy > threshold_otsu(healthy)]  # head tissue: CSF, grey, white
    white_matter_floor = threshold_multiotsu(foreground, classes=3)[-1]
    normal = shell & (array >= white_matter_floor)
    if not normal.any():
        normal = ~mask & (array >= white_matter_floor)
    filled = array.astype(np.float32, copy=True)
    filled[mask] = float(array[normal].mean())
    return filled


def fill_inverse_sr(array: np.ndarray, mask: np.ndarray, margin: int = 8, steps: int = 60, anchor: float = 1.0) -> np.ndarray:
    """InverseSR lesion filling in the lesion's bounding box grown by ``margin`` (edge-padded to
    the prior's down-sampling); the loss sees only the voxels outside the mask, ``anchor``
    holds the interior's latents near the encoding of the neighbourhood fill (see inversion),
    and the decoder's misfit outside the mask is inpainted into it and added."""
    import torch

    from inference_backend.imaging.normalization import IntensityNormalizer
    from inference_backend.methods.inverse_sr.method import load_prior
    from inference_backend.methods.inverse_sr.options import BUNDLED_MODEL
    from inference_backend.methods.inversion import InversionSettings, invert

    prior, _ = load_prior(BUNDLED_MODEL, "cpu")
    box = bounding_box(mask, margin)
    normalizer = IntensityNormalizer.fit(array[~mask])
    start = normalizer.forward(fill_neighbourhood(array, mask)[box])
    padding = [(0, -n % prior.factor) for n in start.shape]
    region = torch.from_numpy(np.pad(start, padding, mode="edge"))[None, None]
    weight = torch.from_numpy(np.pad(~mask[box], padding).astype(np.float32))[None, None]
    decoded = invert(prior, region, region, weight, lambda x: x, InversionSettings(steps=steps, anchor=anchor))
    decoded = normalizer.inverse(decoded[0, 0].numpy())[tuple(slice(0, n) for n in start.shape)]
    decoded = decoded + fill_neighbourhood(np.where(mask[box], 0.0, array[box] - decoded), mask[box])
    filled = array.astype(np.float32, copy=True)
    inside = filled[box]  # a view: writes go to ``filled``
    inside[mask[box]] = decoded[mask[box]]
    return filled


FILLS = dict(zip(LESION_FILLS, (fill_neighbourhood, fill_nawm_mean, fill_inverse_sr)))


def dilate_mask(mask: np.ndarray, grid: Grid, millimetres: float) -> np.ndarray:
    """Grow the mask by a distance in mm (anisotropic voxels respected)."""
    if millimetres <= 0:
        return mask
    from scipy import ndimage

    return ndimage.distance_transform_edt(~mask, sampling=grid.spacing) <= millimetres


def fill_lesion(volume: Volume, mask: np.ndarray, method: str = "neighbourhood") -> Volume:
    """The volume with its lesion filled (``mask`` lies on ``volume.grid``)."""
    return volume.with_array(FILLS[method](volume.array, mask))
