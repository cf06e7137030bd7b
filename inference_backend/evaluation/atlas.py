"""Brain masks for scans that come without one: the MNI152 template registered affinely onto
the scan (SimpleITK, Mattes mutual information) carries its grey + white matter mask across.

Why: the benchmark scores inside the brain, and the held-out real scans have no brain mask;
an atlas mask is the field's standard answer when no segmentation exists. The template is
skull-stripped, so the scan is crudely skull-stripped first, which gives the registration
brain-to-brain contrast. Affine only: scores are averages over the mask, so a few millimetres
of cortical misfit move them little, while a deformable fit would cost minutes.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from skimage.filters import threshold_multiotsu

from inference_backend.data.datasets import load_mni152, load_mni152_brain_mask
from inference_backend.evaluation.registration import register
from inference_backend.imaging.head import head_mask
from inference_backend.imaging.itk import to_sitk
from inference_backend.imaging.volume import Volume

STRIP_EROSION_VOXELS = 5  # cuts the thin bridges between brain and scalp


def rough_brain(array: np.ndarray) -> np.ndarray:
    """Crude skull strip of a T1 scan: tissue above the darkest of five intensity classes in the
    head (CSF, bone, air), eroded apart from the scalp, its largest piece grown back."""
    head = head_mask(array)
    tissue = head & (array > threshold_multiotsu(array[head], classes=5)[0])
    core = ndimage.binary_erosion(tissue, iterations=STRIP_EROSION_VOXELS)
    labels, count = ndimage.label(core)
    if count > 1:
        core = labels == 1 + int(np.argmax(ndimage.sum(core, labels, index=range(1, count + 1))))
    brain = ndimage.binary_dilation(core, iterations=STRIP_EROSION_VOXELS + 4) & head
    return ndimage.binary_fill_holes(brain)


def register_affine(fixed: Volume, moving: Volume) -> sitk.Transform:
    """Affine transform mapping ``fixed`` physical points onto ``moving`` (ITK's convention),
    the same every run."""
    return register(fixed, moving, sitk.AffineTransform(3), histogram_bins=32)


def atlas_brain_mask(scan: Volume) -> np.ndarray:
    """The MNI152 brain mask on the scan's grid, through an affine fit of the template's T1
    onto the skull-stripped scan."""
    array = scan.array.astype(np.float32)
    stripped = scan.with_array(array * rough_brain(array))
    template = load_mni152()
    transform = register_affine(stripped, template)
    mask = template.with_array(load_mni152_brain_mask().astype(np.float32))
    moved = sitk.Resample(to_sitk(mask), to_sitk(stripped), transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(moved).transpose(2, 1, 0) > 0.5
