"""Showing a result in the slice views: the super-resolved volume as the background of every
view; the uncertainty as a colour overlay that tints only the head voxels whose uncertainty is
notable, with a legend that names what it shows and its unit; where the result contradicts the
acquired scan, as an overlay on request. The lesion-filled volume is added to the scene but not
shown in place of the result.

Works on the scene's slice composite nodes (the views' layers), so it needs no view widgets.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from MRISuperResolutionLib.i18n import tr as _

# Perceptually uniform (Slicer's colour files); the iron table where only MRML's defaults exist.
UNCERTAINTY_COLOR_NODE_IDS = ("vtkMRMLColorTableNodeFileViridis.txt", "vtkMRMLColorTableNodeIron")
OVERLAY_OPACITY = 0.6
UNCERTAINTY_LEGEND_FORMAT = "%.1f"  # the unit is in the title
# Two short lines: a slice view is narrow, and the legend's title is drawn at one size.
CONSISTENCY_TITLE = _("SR minus the scan\nin noise SDs")
UNCERTAINTY_TITLE = _("SR uncertainty, 1 SD\n% of median head intensity")
CONSISTENCY_LIMIT_SD = 6.0  # the consistency overlay's colour range: -6 to +6 noise SDs
CONSISTENCY_SHOWN_SD = 3.0  # residuals within +-3 SD are left untinted
CONSISTENCY_COLOR_NODE = "MRISuperResolution consistency"


def composite_nodes(scene) -> list:
    return [scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode") for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]


def show_background(scene, node) -> None:
    """``node`` as every view's background, views linked so they move together."""
    for composite in composite_nodes(scene):
        composite.SetBackgroundVolumeID(node.GetID())
        composite.SetLinkedControl(True)


def show_overlay(scene, node) -> None:
    """``node`` as every view's foreground (None: no overlay), its legend with it."""
    for composite in composite_nodes(scene):
        composite.SetForegroundVolumeID(node.GetID() if node is not None else None)
        composite.SetForegroundOpacity(OVERLAY_OPACITY if node is not None else 0.0)
    legend = None if node is None else legend_of(node)
    if legend is not None:
        legend.Modified()  # the legend manager decides where a legend shows when its node changes, not its view


def show_result(scene, nodes: dict[str, Any]) -> None:
    """The result in all views: SR as background, the uncertainty (if any) as the overlay; every
    overlay node styled, so that showing the consistency later needs nothing more."""
    show_background(scene, nodes["sr"])
    if "uncertainty" in nodes:
        style_uncertainty(scene, nodes["uncertainty"])
    if "consistency" in nodes:
        style_consistency(scene, nodes["consistency"])
    show_overlay(scene, nodes.get("uncertainty"))
    _fit_views()


def style_uncertainty(scene, node) -> None:
    """Colour map over the notable range, untinted below it (and outside the head, where the
    map is 0), and a legend in percent."""
    from slicer.util import arrayFromVolume

    from inference_backend.imaging.uncertainty import notable_level

    display = node.GetDisplayNode()
    values = arrayFromVolume(node)
    level = notable_level(values)
    tinted = values[values >= level]
    high = max(2 * level, float(np.percentile(tinted, 99)) if tinted.size else 0.0)
    for color_id in UNCERTAINTY_COLOR_NODE_IDS:
        if scene.GetNodeByID(color_id) is not None:
            display.SetAndObserveColorNodeID(color_id)
            break
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(level, high)
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(level)
    display.SetUpperThreshold(max(float(values.max()), high))
    add_color_legend(scene, node, UNCERTAINTY_TITLE, UNCERTAINTY_LEGEND_FORMAT)


def style_consistency(scene, node) -> None:
    """A diverging colour map from -6 to +6 noise SDs, transparent within +-3 SD."""
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(consistency_colors(scene).GetID())
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(-CONSISTENCY_LIMIT_SD, CONSISTENCY_LIMIT_SD)
    display.SetApplyThreshold(False)
    add_color_legend(scene, node, CONSISTENCY_TITLE, "%.0f")


def consistency_colors(scene):
    """The colour table of the consistency overlay: blue below -3 SD (the result darker than the
    scan), red above +3 SD (brighter), transparent between; made once per scene."""
    existing = scene.GetFirstNodeByName(CONSISTENCY_COLOR_NODE)
    if existing is not None:
        return existing
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", CONSISTENCY_COLOR_NODE)
    table.SetTypeToUser()
    count = 256
    table.SetNumberOfColors(count)
    for index in range(count):
        value = -CONSISTENCY_LIMIT_SD + 2 * CONSISTENCY_LIMIT_SD * index / (count - 1)
        strength = min(1.0, (abs(value) - CONSISTENCY_SHOWN_SD) / (CONSISTENCY_LIMIT_SD - CONSISTENCY_SHOWN_SD) * 0.6 + 0.4)
        if abs(value) < CONSISTENCY_SHOWN_SD:
            table.SetColor(index, "", 0.0, 0.0, 0.0, 0.0)
        elif value < 0:
            table.SetColor(index, "", 0.1, 0.3 + 0.4 * strength, 1.0, 1.0)
        else:
            table.SetColor(index, "", 1.0, 0.5 - 0.4 * strength, 0.1, 1.0)
    table.SetAttribute("Category", "MRISuperResolution")
    return table


def add_color_legend(scene, node, title: str, label_format: str) -> None:
    """A colour legend for ``node`` in every view that shows it. Slicer's own
    ``vtkSlicerColorLogic::AddDefaultColorLegendDisplayNode`` ends with ``Modified()``: without
    it the legend displayable manager never builds the legend."""
    legend = legend_of(node)
    if legend is None:
        legend = scene.AddNewNodeByClass("vtkMRMLColorLegendDisplayNode", f"{node.GetName()} legend")
        if legend is None:
            return  # a scene without Slicer's Colors module (which registers the legend) shows none
        legend.SetAndObservePrimaryDisplayNode(node.GetDisplayNode())
        node.AddAndObserveDisplayNodeID(legend.GetID())
    legend.SetTitleText(title)
    legend.SetLabelFormat(label_format)
    legend.SetVisibility(True)
    legend.Modified()


def legend_of(node):
    """``node``'s colour legend display node, or None."""
    for index in range(node.GetNumberOfDisplayNodes()):
        if node.GetNthDisplayNode(index).IsA("vtkMRMLColorLegendDisplayNode"):
            return node.GetNthDisplayNode(index)
    return None


def _fit_views() -> None:
    """Fit the views to the new background (there are no views outside the application)."""
    import slicer

    layout = slicer.app.layoutManager() if hasattr(slicer, "app") else None
    if layout is None:
        return
    for name in layout.sliceViewNames():
        layout.sliceWidget(name).sliceLogic().FitSliceToAll()
