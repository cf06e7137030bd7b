"""Showing a result in the slice views: the super-resolved volume as the background of every
view, the variance map as a thresholded colour overlay with a legend. The lesion-filled
volume is added to the scene but not shown in place of the result.

Works on the scene's slice composite nodes (the views' layers), so it needs no view widgets.
"""
from __future__ import annotations

from typing import Any

import numpy as np

# Perceptually uniform (Slicer's colour files); the iron table where only MRML's defaults exist.
VARIANCE_COLOR_NODE_IDS = ("vtkMRMLColorTableNodeFileViridis.txt", "vtkMRMLColorTableNodeIron")
VARIANCE_OPACITY = 0.5
# The overlay shows the upper half of the voxels with any variance: zero (certain) voxels and
# the faint majority leave the image untinted.
VARIANCE_SHOWN_PERCENTILE = 50.0
VARIANCE_TOP_PERCENTILE = 99.5


def composite_nodes(scene) -> list:
    return [scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode") for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]


def show_background(scene, node) -> None:
    """``node`` as every view's background, views linked so they move together."""
    for composite in composite_nodes(scene):
        composite.SetBackgroundVolumeID(node.GetID())
        composite.SetLinkedControl(True)


def show_result(scene, nodes: dict[str, Any]) -> None:
    """The result in all views: SR as background, variance (if any) as the foreground overlay."""
    show_background(scene, nodes["sr"])
    variance = nodes.get("variance")
    for composite in composite_nodes(scene):
        composite.SetForegroundVolumeID(variance.GetID() if variance is not None else None)
        composite.SetForegroundOpacity(VARIANCE_OPACITY if variance is not None else 0.0)
    if variance is not None:
        style_variance(scene, variance)
    _fit_views()


def style_variance(scene, node) -> None:
    """Colour map, window over the shown range, threshold below it, and a colour legend."""
    from slicer.util import arrayFromVolume

    display = node.GetDisplayNode()
    values = arrayFromVolume(node)
    positive = values[values > 0]
    low, high = (
        (float(np.percentile(positive, VARIANCE_SHOWN_PERCENTILE)), float(np.percentile(positive, VARIANCE_TOP_PERCENTILE)))
        if positive.size
        else (1.0, 1.0)  # nothing uncertain: everything below the threshold
    )
    low = max(low, float(np.nextafter(np.float32(0), np.float32(1))))
    high = max(high, low)
    for color_id in VARIANCE_COLOR_NODE_IDS:
        if scene.GetNodeByID(color_id) is not None:
            display.SetAndObserveColorNodeID(color_id)
            break
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(low, high)
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(low)
    display.SetUpperThreshold(float(values.max()) if values.size else high)
    _add_color_legend(scene, node)


def _add_color_legend(scene, node) -> None:
    for index in range(node.GetNumberOfDisplayNodes()):
        if node.GetNthDisplayNode(index).IsA("vtkMRMLColorLegendDisplayNode"):
            return
    legend = scene.AddNewNodeByClass("vtkMRMLColorLegendDisplayNode", f"{node.GetName()} legend")
    legend.SetTitleText("Variance")
    legend.SetAndObservePrimaryDisplayNode(node.GetDisplayNode())
    legend.SetVisibility(True)
    node.AddAndObserveDisplayNodeID(legend.GetID())


def _fit_views() -> None:
    """Fit the views to the new background (there are no views outside the application)."""
    import slicer

    layout = slicer.app.layoutManager() if hasattr(slicer, "app") else None
    if layout is None:
        return
    for name in layout.sliceViewNames():
        layout.sliceWidget(name).sliceLogic().FitSliceToAll()
