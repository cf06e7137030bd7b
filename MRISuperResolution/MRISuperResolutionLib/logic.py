"""The module's logic without any GUI: usable from Slicer's Python console and testable on a
plain ``vtkMRMLScene`` (``slicer-core``).

    logic = SuperResolutionLogic()
    job = logic.process(volumeNode, method="res-srdiff", scale=(1, 1, 4), samples=4)
    job.outputNodes["sr"], job.outputNodes["variance"]

The input node is only read. Output nodes ("<input> SR", "<input> SR variance",
"<input> lesion-filled") are created, or reused when this module made them before, only
when the job succeeds; they are placed beside the input in the subject hierarchy.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from MRISuperResolutionLib.backend import ensure_importable
from MRISuperResolutionLib.conversion import mask_from_node, update_node_from_volume, volume_from_node
from MRISuperResolutionLib.runners import RUNNERS, JobRequest, JobResult

OUTPUT_ROLES = {"sr": "{} SR", "variance": "{} SR variance", "lesion_filled": "{} lesion-filled"}
ROLE_ATTRIBUTE = "MRISuperResolution.OutputRole"
SOURCE_ATTRIBUTE = "MRISuperResolution.SourceNodeID"
REPORT_ATTRIBUTE = "MRISuperResolution.Report"
VARIANCE_COLOR_NODE_ID = "vtkMRMLColorTableNodeFileViridis.txt"
ProgressCallback = Callable[[float, str, str], None]


class SuperResolutionJob:
    """A running or finished job. ``poll()`` (main thread) finalises it: nodes are touched there only."""

    def __init__(
        self,
        logic: "SuperResolutionLogic",
        input_node,
        request: JobRequest,
        runner,
        progress_callback: ProgressCallback | None,
        chosen_outputs: dict[str, Any] | None = None,
    ) -> None:
        self.logic, self.input_node, self.request, self.runner = logic, input_node, request, runner
        self.chosen_outputs = {role: node for role, node in (chosen_outputs or {}).items() if node is not None}
        self.progress_callback = progress_callback
        self.cancel_event = threading.Event()
        self.state = "running"  # running, finished, failed, cancelled
        self.progress: tuple[float, str, str] = (0.0, "starting", "")
        self.error: str | None = None
        self.output_nodes: dict[str, Any] = {}
        self.started = time.monotonic()
        self._result: JobResult | None = None
        self._exception: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def outputNodes(self) -> dict[str, Any]:  # noqa: N802 - Slicer's camelCase API
        return self.output_nodes

    def _on_progress(self, fraction: float, stage: str, message: str) -> None:
        self.progress = (fraction, stage, message)
        if self.progress_callback is not None and self._thread is None:
            self.progress_callback(fraction, stage, message)

    def _work(self) -> None:
        try:
            self._result = self.runner.run(self.request, self._on_progress, self.cancel_event)
        except BaseException as error:  # noqa: BLE001 - reported to the user in poll()
            self._exception = error

    def start(self, wait: bool) -> "SuperResolutionJob":
        if wait:
            self._work()
            self._finalise()
        else:
            self._thread = threading.Thread(target=self._work, name="MRISuperResolution", daemon=True)
            self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def elapsed_seconds(self) -> float:
        return time.monotonic() - self.started

    def seconds_left(self) -> float | None:
        """Estimated remaining time from the progress so far (None until there is some)."""
        fraction = self.progress[0]
        if fraction <= 0.02 or self.state != "running":
            return None
        return self.elapsed_seconds() * (1 - fraction) / fraction

    def poll(self) -> bool:
        """True once the job has ended (and its results are in the scene, if it succeeded)."""
        if self.state != "running":
            return True
        if self._thread is not None and self._thread.is_alive():
            return False
        self._finalise()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.poll()

    def _finalise(self) -> None:
        ensure_importable()
        from inference_backend.errors import Cancelled, MRISRError

        if isinstance(self._exception, Cancelled) or (self.cancel_event.is_set() and self._result is None):
            self.state, self.error = "cancelled", "cancelled: no output was created"
        elif isinstance(self._exception, MRISRError):
            self.state, self.error = "failed", str(self._exception)
        elif self._exception is not None:
            self.state = "failed"
            self.error = f"internal error ({type(self._exception).__name__}: {self._exception}); see the Python console"
        else:
            assert self._result is not None
            self.output_nodes = self.logic.apply_result(self.input_node, self._result, self.chosen_outputs)
            self.state = "finished"


class SuperResolutionLogic:
    """Everything the module does, with no widget: conversions, runners, output nodes."""

    def __init__(self, scene=None) -> None:
        if scene is None:
            import slicer

            scene = slicer.mrmlScene
        self.scene = scene
        self.temp_root: str | None = None  # where the subprocess runner puts its temporary files

    @staticmethod
    def methods() -> dict[str, Any]:
        """The backend's method registry (importing it does not import torch)."""
        ensure_importable()
        from inference_backend.registry import METHODS

        return METHODS

    def lesionFills(self) -> list[str]:  # noqa: N802
        ensure_importable()
        from inference_backend.lesion_fill import FILLS

        return list(FILLS)

    def modelsFor(self, method: str) -> list[str]:  # noqa: N802
        """Installed models (bundled and user) whose card names ``method``."""
        ensure_importable()
        from inference_backend.assets import list_models

        return [model["name"] for model in list_models() if model.get("method") == method]

    def process(
        self,
        inputVolume,  # noqa: N803 - Slicer's camelCase API
        method: str = "interpolation",
        scale: tuple[float, float, float] | None = None,
        spacing: tuple[float, float, float] | None = None,
        samples: int = 1,
        lesionMask=None,  # noqa: N803
        lesionFill: str = "neighbourhood",  # noqa: N803
        device: str = "auto",
        seed: int = 0,
        methodOptions: dict[str, Any] | None = None,  # noqa: N803
        runner: str = "in-process",
        pythonExecutable: str | None = None,  # noqa: N803
        waitForCompletion: bool = True,  # noqa: N803
        progressCallback: ProgressCallback | None = None,  # noqa: N803
        outputNodes: dict[str, Any] | None = None,  # noqa: N803
    ) -> SuperResolutionJob:
        """Super-resolve ``inputVolume``; returns the job (already ended when waiting).

        With ``waitForCompletion=False`` the work runs in a thread and the caller calls
        ``job.poll()`` from the main thread (e.g. a QTimer) until it returns True, reading
        ``job.progress``; ``progressCallback`` is called (in the caller's thread) only when
        waiting. ``outputNodes`` ({"sr", "variance", "lesion_filled"} -> node) overrides the
        nodes that would be created or reused. Input errors are raised at once.
        """
        ensure_importable()
        from inference_backend.errors import InputError
        from inference_backend.pipeline import JobOptions
        from inference_backend.registry import get_method
        from inference_backend.target import target_grid

        if inputVolume is None:
            raise InputError("select an input volume")
        spec = get_method(method)
        options = JobOptions(
            method=method,
            method_options=dict(methodOptions or {}),
            scale=None if scale is None else tuple(float(s) for s in scale),
            spacing=None if spacing is None else tuple(float(s) for s in spacing),
            samples=int(samples) if spec.stochastic else 1,
            seed=int(seed),
            device=device,
            lesion_fill=lesionFill,
        )
        spec.parse_options(options.method_options)
        if lesionFill not in self.lesionFills():
            raise InputError(f"unknown lesion fill {lesionFill!r}; one of {', '.join(self.lesionFills())}")
        if any(node is inputVolume for node in (outputNodes or {}).values()):
            raise InputError("an output volume cannot be the input volume (the input is never modified)")
        volume = volume_from_node(inputVolume)
        target_grid(volume.grid, scale=options.scale, spacing=options.spacing)  # validate now, not in a thread
        mask = None if lesionMask is None else mask_from_node(lesionMask, inputVolume, volume)
        if runner not in RUNNERS:
            raise InputError(f"unknown runner {runner!r}; one of {', '.join(RUNNERS)}")
        backend_runner = RUNNERS[runner]() if runner == "in-process" else RUNNERS[runner](pythonExecutable, self.temp_root)
        job = SuperResolutionJob(self, inputVolume, JobRequest(volume, options, mask), backend_runner, progressCallback, outputNodes)
        return job.start(wait=waitForCompletion)

    def output_node(self, input_node, role: str):
        """The output node of ``role`` for ``input_node``: reused if this module made it, else new."""
        name = OUTPUT_ROLES[role].format(input_node.GetName())
        for index in range(self.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = self.scene.GetNthNodeByClass(index, "vtkMRMLScalarVolumeNode")
            if node.GetAttribute(ROLE_ATTRIBUTE) == role and node.GetAttribute(SOURCE_ATTRIBUTE) == input_node.GetID() and not node.IsA("vtkMRMLLabelMapVolumeNode"):
                node.SetName(name)
                return node
        node = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
        node.SetAttribute(ROLE_ATTRIBUTE, role)
        node.SetAttribute(SOURCE_ATTRIBUTE, input_node.GetID())
        return node

    def apply_result(self, input_node, result: JobResult, chosen: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create or update the output nodes from a finished job (main thread)."""
        import slicer

        nodes = {}
        report = json.dumps(result.report)
        for role in OUTPUT_ROLES:
            volume = getattr(result, role)
            if volume is None:
                continue
            node = (chosen or {}).get(role) or self.output_node(input_node, role)
            update_node_from_volume(node, volume)
            node.SetAttribute(REPORT_ATTRIBUTE, report)
            if node.GetDisplayNode() is None:
                node.CreateDefaultDisplayNodes()
            self._place_beside(input_node, node)
            nodes[role] = node
        if "variance" in nodes:
            display = nodes["variance"].GetDisplayNode()
            if display is not None and self.scene.GetNodeByID(VARIANCE_COLOR_NODE_ID) is not None:
                display.SetAndObserveColorNodeID(VARIANCE_COLOR_NODE_ID)
        if hasattr(slicer, "app") and hasattr(slicer.util, "setSliceViewerLayers"):
            slicer.util.setSliceViewerLayers(
                background=nodes.get("lesion_filled", nodes["sr"]), foreground=nodes.get("variance"), foregroundOpacity=0.4, fit=True
            )
        return nodes

    def _place_beside(self, input_node, node) -> None:
        import slicer

        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(self.scene)
        if hierarchy is None:
            return
        parent = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(input_node))
        hierarchy.SetItemParent(hierarchy.GetItemByDataNode(node), parent)
