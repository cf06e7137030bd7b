"""Slicer's slice views, rendered offscreen: what a user sees of a scene, not only its nodes.

Everything here is Slicer's own code from PyPI's ``slicer-core``: one ``vtkMRMLSliceLogic`` per
view (Red axial, Yellow sagittal, Green coronal; it reslices and blends the layers as the
application does), and per view a ``vtkMRMLDisplayableManagerGroup`` with the colour-legend,
scalar-bar, ruler and orientation-marker displayable managers, on a VTK render window. What
stands in: the view widget itself (the blended slice image is put on the renderer as the
application's slice view does, one image pixel per screen pixel) and the event loop (a render is
asked for explicitly).

    views = SliceViews(scene)          # the scene's existing slice composite nodes are reused
    views.fit()
    image = views.render("Red")        # (H, W, 3) uint8
    views.legend_visible("Red", node)  # the colour legend of ``node`` is shown in that view
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

VIEWS = {"Red": "Axial", "Yellow": "Sagittal", "Green": "Coronal"}
DISPLAYABLE_MANAGERS = (
    "vtkMRMLColorLegendDisplayableManager",
    "vtkMRMLScalarBarDisplayableManager",
    "vtkMRMLRulerDisplayableManager",
    "vtkMRMLOrientationMarkerDisplayableManager",
)


class SliceViews:
    def __init__(self, scene, size: int = 320) -> None:
        import slicer
        import vtk

        self.scene, self.size = scene, size
        self.application = slicer.vtkMRMLApplicationLogic()
        self.application.SetMRMLScene(scene)
        colors = slicer.vtkMRMLColorLogic()
        colors.SetMRMLScene(scene)
        self.application.SetColorLogic(colors)
        self.logics = vtk.vtkCollection()
        self.application.SetSliceLogics(self.logics)
        factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
        factory.SetMRMLApplicationLogic(self.application)
        for manager in DISPLAYABLE_MANAGERS:
            if not factory.IsDisplayableManagerRegistered(manager):
                factory.RegisterDisplayableManager(manager)
        self.views = {}
        for name, orientation in VIEWS.items():
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLApplicationLogic(self.application)
            logic.SetMRMLScene(scene)
            self.logics.AddItem(logic)
            slice_node = logic.AddSliceNode(name)
            slice_node.SetOrientation(orientation)
            slice_node.SetDimensions(size, size, 1)
            window = vtk.vtkRenderWindow()
            window.SetOffScreenRendering(1)
            window.SetSize(size, size)
            renderer = vtk.vtkRenderer()
            window.AddRenderer(renderer)
            interactor = vtk.vtkRenderWindowInteractor()
            interactor.SetRenderWindow(window)
            image = vtk.vtkImageActor()
            renderer.AddActor(image)
            group = slicer.vtkMRMLDisplayableManagerGroup()
            group.Initialize(factory, renderer)
            group.SetMRMLDisplayableNode(slice_node)
            self.views[name] = {"logic": logic, "node": slice_node, "window": window, "renderer": renderer,
                                "image": image, "group": group, "interactor": interactor}  # fmt: skip

    def fit(self) -> None:
        for view in self.views.values():
            view["logic"].FitSliceToAll()

    def composite(self, name: str):
        return self.views[name]["logic"].GetSliceCompositeNode()

    def render(self, name: str) -> np.ndarray:
        """The view as the user sees it: (H, W, 3) uint8."""
        import vtk
        from vtk.util.numpy_support import vtk_to_numpy

        view = self.views[name]
        view["image"].GetMapper().SetInputConnection(view["logic"].GetImageDataConnection())
        renderer = view["renderer"]
        renderer.GetActiveCamera().ParallelProjectionOn()
        renderer.ResetCamera()
        renderer.GetActiveCamera().SetParallelScale(self.size / 2)
        view["window"].Render()
        capture = vtk.vtkWindowToImageFilter()
        capture.SetInput(view["window"])
        capture.SetInputBufferTypeToRGB()
        capture.ReadFrontBufferOff()
        capture.Update()
        output = capture.GetOutput()
        width, height, _ = output.GetDimensions()
        pixels = vtk_to_numpy(output.GetPointData().GetScalars()).reshape(height, width, 3)
        return np.ascontiguousarray(pixels[::-1])

    def tinted(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(the pixels the foreground overlay changes, the head's pixels) of a view as rendered:
        the view drawn with and without its overlay; the head is what the background shows."""
        from scipy import ndimage

        composite = self.composite(name)
        with_overlay = self.render(name).astype(int)
        opacity = composite.GetForegroundOpacity()
        composite.SetForegroundOpacity(0.0)
        without = self.render(name).astype(int)
        composite.SetForegroundOpacity(opacity)
        head = ndimage.binary_fill_holes(without.max(axis=2) > 20)
        return np.abs(with_overlay - without).max(axis=2) > 8, head

    def save(self, name: str, path: Path) -> None:
        import vtk

        self.render(name)
        capture = vtk.vtkWindowToImageFilter()
        capture.SetInput(self.views[name]["window"])
        capture.ReadFrontBufferOff()
        capture.Update()
        writer = vtk.vtkPNGWriter()
        writer.SetFileName(str(path))
        writer.SetInputConnection(capture.GetOutputPort())
        writer.Write()

    def legend_visible(self, name: str, node) -> bool:
        """Whether the colour legend displayable manager shows ``node``'s legend in the view (as
        rendered now: the managers update when the view renders)."""
        self.render(name)
        manager = self.views[name]["group"].GetDisplayableManagerByClassName("vtkMRMLColorLegendDisplayableManager")
        for index in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(index)
            if display.IsA("vtkMRMLColorLegendDisplayNode"):
                actor = manager.GetColorLegendActor(display)
                return bool(actor is not None and actor.GetVisibility())
        return False

    def legend_labels(self, name: str, node) -> list[str]:
        """The texts of ``node``'s legend labels as the legend actor formats them."""
        manager = self.views[name]["group"].GetDisplayableManagerByClassName("vtkMRMLColorLegendDisplayableManager")
        for index in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(index)
            if display.IsA("vtkMRMLColorLegendDisplayNode"):
                actor = manager.GetColorLegendActor(display)
                low, high = actor.GetLookupTable().GetRange()
                count = actor.GetNumberOfLabels()
                return [actor.GetLabelFormat() % (low + (high - low) * i / max(count - 1, 1)) for i in range(count)]
        return []

    def legend_title(self, name: str, node) -> str:
        manager = self.views[name]["group"].GetDisplayableManagerByClassName("vtkMRMLColorLegendDisplayableManager")
        for index in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(index)
            if display.IsA("vtkMRMLColorLegendDisplayNode"):
                return manager.GetColorLegendActor(display).GetTitle() or ""
        return ""
