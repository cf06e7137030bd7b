"""MRML volume nodes <-> backend volumes, with exact geometry (IJK-to-RAS) and no shared memory."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import vtk

if TYPE_CHECKING:
    from inference_backend.imaging.volume import Volume


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def volume_from_node(node) -> "Volume":
    """A copy of the node's voxels (IJK order) on its grid. Parent transforms are refused:
    the backend works on the node's own grid, and hardening silently would change geometry."""
    from slicer.util import arrayFromVolume

    from inference_backend.errors import InputError
    from inference_backend.imaging.volume import Grid, Volume

    if node is None or node.GetImageData() is None:
        raise InputError("the input volume has no image data")
    if node.GetParentTransformNode() is not None:
        raise InputError(f"'{node.GetName()}' is under a transform; harden the transform first (Data module)")
    if node.GetImageData().GetNumberOfScalarComponents() != 1:
        raise InputError(f"'{node.GetName()}' is not a scalar (grey-level) volume")
    array = np.array(arrayFromVolume(node)).transpose(2, 1, 0).copy()  # KJI -> IJK, detached from the node
    return Volume(array, Grid.from_ijk_to_ras(ijk_to_ras(node), array.shape))


def update_node_from_volume(node, volume: "Volume") -> None:
    """Write voxels and geometry into ``node`` (a scalar or labelmap volume node)."""
    from slicer.util import updateVolumeFromArray

    updateVolumeFromArray(node, np.ascontiguousarray(volume.array.transpose(2, 1, 0)))
    matrix = vtk.vtkMatrix4x4()
    ras = volume.grid.ijk_to_ras()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, ras[r, c])
    node.SetIJKToRASMatrix(matrix)
    node.Modified()


def mask_from_node(mask_node, reference_node, reference: "Volume") -> np.ndarray:
    """A boolean lesion mask on the grid of ``reference`` (the volume read from ``reference_node``),
    from a labelmap or a segmentation."""
    import slicer

    from inference_backend.errors import InputError
    from inference_backend.methods.lesion_fill import mask_on_grid

    if mask_node.IsA("vtkMRMLSegmentationNode"):
        scene = mask_node.GetScene()
        labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__mrisr_lesion_export")
        try:
            if not slicer.vtkSlicerSegmentationsModuleLogic.ExportVisibleSegmentsToLabelmapNode(mask_node, labelmap, reference_node):
                raise InputError(f"segmentation '{mask_node.GetName()}' could not be converted to a labelmap")
            mask = volume_from_node(labelmap)
        finally:
            scene.RemoveNode(labelmap)
    else:
        mask = volume_from_node(mask_node)
    binary = mask.array > 0
    if not mask.grid.matches(reference.grid):
        binary = mask_on_grid(binary, mask.grid, reference.grid)  # a labelmap on another grid is resampled
    if not binary.any():
        raise InputError(f"the lesion mask '{mask_node.GetName()}' is empty")
    return binary
