"""``SampleData`` for tests: no download. "MRHead" is the MNI152 T1 template bundled with
nilearn (1 mm, a real head, on a PyPI package), loaded into a node of that name."""
from __future__ import annotations

import numpy as np
import slicer
import vtk
from slicer.util import updateVolumeFromArray


def downloadSample(name: str):  # noqa: N802 - SampleData's API
    if name != "MRHead":
        raise ValueError(f"the test harness has no sample named {name!r}")
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=1)
    array = np.asarray(template.get_fdata(), dtype=np.float32)
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    matrix = vtk.vtkMatrix4x4()
    ras = template.affine  # a NIfTI affine maps voxel indices to RAS, as Slicer's IJKToRAS
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(ras[row, column]))
    node.SetIJKToRASMatrix(matrix)
    updateVolumeFromArray(node, np.ascontiguousarray(array.transpose(2, 1, 0)))
    node.CreateDefaultDisplayNodes()
    return node
