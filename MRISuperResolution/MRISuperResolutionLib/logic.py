"""The module's logic without any GUI: usable from Slicer's Python console and testable on a
plain ``vtkMRMLScene`` (``slicer-core``).

    logic = SuperResolutionLogic()
    job = logic.process(volumeNode, method="res-srdiff", scale=(1, 1, 4), samples=4)
    job.outputNodes["sr"], job.outputNodes["variance"]

The input node is only read. Every successful job adds new output nodes ("<input> SR",
"<input> SR variance", "<input> lesion-filled", with a suffix when the name is taken), beside
the input in the subject hierarchy; an earlier result is replaced only when the caller names
it in ``outputNodes``. A failed or cancelled job adds nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from MRISuperResolutionLib import display
from MRISuperResolutionLib.backend import ensure_importable
from MRISuperResolutionLib.conversion import (
    mask_from_node,
    update_node_from_volume,
    volume_from_node,
)
from MRISuperResolutionLib.i18n import tr as _
from MRISuperResolutionLib.runners import (
    RUNNERS,
    JobRequest,
    JobResult,
    SubprocessRunner,
    backend_environment,
    last_line,
    query_devices,
)

if TYPE_CHECKING:
    from inference_backend.protocol import ProgressCallback

# per output role (protocol.OUTPUT_ROLES), and the uncertainty the panel shows, made from the variance
NODE_NAMES = {
    "sr": "{} SR",
    "variance": "{} SR variance",
    "uncertainty": "{} SR uncertainty",
    "lesion_filled": "{} lesion-filled",
    "consistency": "{} SR consistency",
}
ROLE_ATTRIBUTE = "MRISuperResolution.OutputRole"
DERIVED_ROLES = ("uncertainty", "consistency")  # overlays of a result: replaced with it when it is overwritten
SOURCE_ATTRIBUTE = "MRISuperResolution.SourceNodeID"
REPORT_ATTRIBUTE = "MRISuperResolution.Report"
GPU_MEMORY_WARNING_GB = 4.0


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
        self.details: str | None = None  # for the log and the dialog's details: traceback or backend output
        self.output_nodes: dict[str, Any] = {}
        self.started = time.monotonic()
        self._result: JobResult | None = None
        self._exception: BaseException | None = None
        self._traceback = ""
        self._thread: threading.Thread | None = None

    @property
    def outputNodes(self) -> dict[str, Any]:  # noqa: N802 - Slicer's camelCase API
        return self.output_nodes

    def method_summary(self) -> str:
        """The method that ran, and why where ``auto`` chose it (from its report)."""
        report = self._result.report if self._result is not None else {}
        choice = report.get("auto")
        return report.get("method", "?") + (f" (auto: {choice['reason']})" if choice else "")

    def consistency_summary(self) -> str:
        """How far the result contradicts the acquired scan, from its report ("" without a map)."""
        consistency = (self._result.report if self._result is not None else {}).get("consistency")
        if not consistency:
            return ""
        text = _("Against the scan: RMS {rms} noise SD, {share}% of the head beyond 3 SD").format(
            rms=f"{consistency['rms_sd']:.2g}", share=f"{100 * consistency['beyond_3sd_share']:.2g}"
        )
        return text + (" - " + _("{warning}").format(warning=consistency["warning"]) if consistency.get("warning") else "")

    def _on_progress(self, fraction: float, stage: str, message: str) -> None:
        self.progress = (fraction, stage, message)
        if self.progress_callback is not None and self._thread is None:
            self.progress_callback(fraction, stage, message)

    def _work(self) -> None:
        try:
            self._result = self.runner.run(self.request, self._on_progress, self.cancel_event)
        except BaseException as error:  # noqa: BLE001 - reported to the user in poll()
            self._exception = error
            self._traceback = traceback.format_exc()

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
            self.details = getattr(self._exception, "details", None)
        elif self._exception is not None:
            self.state = "failed"
            self.error = f"internal error ({type(self._exception).__name__}: {self._exception}); details in the Python console"
            self.details = self._traceback
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
        self.lastDetectedDevices: list[dict[str, Any]] = []

    # --- what can be chosen ----------------------------------------------------------------

    @staticmethod
    def methods() -> dict[str, Any]:
        """The backend's method registry (importing it does not import torch)."""
        ensure_importable()
        from inference_backend.registry import METHODS

        return METHODS

    def modelsFor(self, method: str) -> list[tuple[str, str]]:  # noqa: N802
        """(name, "bundled" or "user") of the installed models for ``method`` besides its default."""
        ensure_importable()
        from inference_backend.assets import list_models

        defaults = set(self.methods()[method].weights)
        return [(m["name"], m["source"]) for m in list_models() if m.get("method") == method and m["name"] not in defaults]

    @staticmethod
    def pythonFor(runner: str, pythonExecutable) -> Path | None:  # noqa: N802, N803
        """The external Python a job will run in, or None for Slicer's own (in-process, or a
        subprocess of Slicer's Python, also when the field was cleared)."""
        if runner != "subprocess" or str(pythonExecutable or "") in ("", "."):
            return None
        path = Path(pythonExecutable)
        try:
            if path.samefile(sys.executable):
                return None
        except OSError:
            pass  # a missing file: the job reports it
        return path

    # --- the target resolution ------------------------------------------------------------

    @staticmethod
    def defaultTarget(inputVolume, mode: str) -> tuple[float, float, float]:  # noqa: N802, N803
        """Isotropic at the input's finest voxel size, as spacing (mm) or as scale factors."""
        spacing = inputVolume.GetSpacing()
        finest = min(spacing)
        if mode == "spacing":
            return (round(finest, 2),) * 3
        return tuple(round(s / finest, 2) for s in spacing)

    def planJob(  # noqa: N802
        self, inputVolume, method: str = "auto", scale=None, spacing=None, sliceThickness=None, samples: int = 1, device: str = "auto"  # noqa: N803
    ):
        """(the job's plan for this input and request, as the backend will make it; the problem
        with the request in the panel's words, or None)."""
        ensure_importable()
        from inference_backend.errors import MRISRError
        from inference_backend.imaging.volume import Grid
        from inference_backend.job import JobOptions
        from inference_backend.plan import plan_job

        image = inputVolume.GetImageData()
        if image is None:
            return None, _("the input volume has no image data")
        grid = Grid(image.GetDimensions(), inputVolume.GetSpacing(), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
        request = JobOptions(method=method, scale=scale, spacing=spacing, slice_thickness=sliceThickness, samples=samples, device=device)
        try:
            return plan_job(grid, request), None
        except MRISRError as error:
            return None, panel_terms(str(error))

    def describeTarget(  # noqa: N802
        self, inputVolume, method: str = "auto", scale=None, spacing=None, sliceThickness=None, samples: int = 1, device: str = "auto"  # noqa: N803
    ) -> tuple[str, str | None]:
        """(what the job will make: input and output grids, the method ``auto`` picks for this
        input or a note where ``method`` is experimental for it, the axes a spacing target keeps,
        and the expected time on ``device``; the problem with the request, or None)."""
        plan, problem = self.planJob(inputVolume, method, scale, spacing, sliceThickness, samples, device)
        return ("", problem) if plan is None else (self.describePlan(plan, device), None)

    def describePlan(self, plan, device: str = "auto") -> str:  # noqa: N802
        source, target = plan.refinement.source, plan.target
        megabytes = target.num_voxels * 4 / 2**20
        summary = _("Input {size} voxels of {spacing} mm").format(size=_dims(source.size), spacing=_mm(source.spacing)) + "<br>"
        summary += _("Output {size} voxels of {spacing} mm ({voxels} M voxels, {megabytes} MB per volume)").format(
            size=_dims(target.size), spacing=_mm(target.spacing), voxels=f"{target.num_voxels / 1e6:.1f}", megabytes=f"{megabytes:,.0f}"
        )
        if plan.auto is not None:
            summary += "<br>" + _("Method for this input: <b>{method}</b> ({reason})").format(method=plan.auto.method, reason=plan.auto.reason)
        if plan.quality_note is not None:
            summary += '<br><span style="color:#a60">' + _("{method} is {note}").format(method=plan.method, note=plan.quality_note) + "</span>"
        if plan.kept_note is not None:
            summary += "<br>" + _("Kept: {note}").format(note=plan.kept_note)
        return summary + "<br><i>" + _("Expected time: {time}").format(time=self.expectedTime(plan, device)) + "</i>"

    # --- how long a job takes, on this computer ------------------------------------------

    def expectedTime(self, plan, device: str = "auto") -> str:  # noqa: N802
        """The reference machine's estimate, scaled by what this computer measured for the method
        and kind of device (the user's settings) once it has run one."""
        from inference_backend.time_estimates import format_seconds

        reference = reference_seconds(plan, device)
        if reference is None:
            return plan.expected_time(device)
        ratio = self.settingsValue(speed_key(plan.method, device))
        if ratio is None:
            return plan.expected_time(device)
        return _("about {time} (measured on this computer)").format(time=format_seconds(reference * ratio))

    def recordTiming(self, plan, device: str, seconds: float) -> None:  # noqa: N802
        """After a job: how much faster or slower than the reference machine this computer ran it."""
        reference = reference_seconds(plan, device)
        if reference is None or reference <= 0 or seconds <= 0:
            return
        ratio = seconds / reference
        earlier = self.settingsValue(speed_key(plan.method, device))
        self.setSettingsValue(speed_key(plan.method, device), ratio if earlier is None else (earlier + ratio) / 2)

    @staticmethod
    def settingsValue(key: str) -> float | None:  # noqa: N802
        try:
            import slicer

            value = slicer.app.userSettings().value(key)
        except (ImportError, AttributeError):
            return None
        try:
            return None if value in (None, "") else float(value)
        except (TypeError, ValueError):
            return None

    @staticmethod
    def setSettingsValue(key: str, value: float) -> None:  # noqa: N802
        try:
            import slicer

            slicer.app.userSettings().setValue(key, value)
        except (ImportError, AttributeError):
            pass  # no application (a bare scene): nothing to remember

    # --- devices -------------------------------------------------------------------------

    def detectDevices(self, pythonExecutable=None) -> list[dict[str, Any]]:  # noqa: N802, N803
        """The devices of the Python that will run the job: this one, or ``pythonExecutable``."""
        if pythonExecutable is None:
            ensure_importable()
            from inference_backend.devices import list_devices

            devices = [device.as_dict() for device in list_devices()]
        else:
            devices = query_devices(str(pythonExecutable), self.subprocessEnvironment(pythonExecutable))
        self.lastDetectedDevices = devices
        return devices

    @staticmethod
    def describeDevices(devices: list[dict[str, Any]]) -> str:  # noqa: N802
        lines = []
        for device in devices:
            line = f"{device['id']}: {device['name']}"
            if device.get("total_memory_gb"):
                line += f", {device['free_memory_gb']:.1f} of {device['total_memory_gb']:.1f} GB free"
                if device["free_memory_gb"] < GPU_MEMORY_WARNING_GB:
                    line += " - <b>" + _("low memory: prefer fewer samples or the CPU") + "</b>"
            lines.append(line)
        if all(device["id"] == "cpu" for device in devices):
            lines.append(_("No GPU is visible to this Python's PyTorch (see the README: GPU not detected)."))
        return "<br>".join(lines)

    # --- running -------------------------------------------------------------------------

    def subprocessEnvironment(self, pythonExecutable) -> dict[str, str]:  # noqa: N802, N803
        """The environment a job's subprocess starts in. Slicer's own Python (PythonSlicer) is
        started as Slicer is; any other Python with the environment Slicer was started from:
        the launcher's PYTHONHOME/PYTHONPATH would break it."""
        import slicer

        if pythonExecutable is None or not hasattr(slicer, "app"):
            return dict(os.environ)
        return slicer.util.startupEnvironment()

    def process(
        self,
        inputVolume,  # noqa: N803 - Slicer's camelCase API
        method: str = "auto",
        scale: tuple[float, float, float] | None = None,
        spacing: tuple[float, float, float] | None = None,
        samples: int = 1,
        lesionMask=None,  # noqa: N803
        lesionFill: str = "neighbourhood",  # noqa: N803
        device: str = "auto",
        seed: int = 0,
        methodOptions: dict[str, Any] | None = None,  # noqa: N803
        sliceThickness: float | None = None,  # noqa: N803 - mm, thick slices; None: DICOM or the spacing
        runner: str = "in-process",
        pythonExecutable: str | os.PathLike | None = None,  # noqa: N803
        waitForCompletion: bool = True,  # noqa: N803
        progressCallback: ProgressCallback | None = None,  # noqa: N803
        outputNodes: dict[str, Any] | None = None,  # noqa: N803
    ) -> SuperResolutionJob:
        """Super-resolve ``inputVolume``; returns the job (already ended when waiting).

        With ``waitForCompletion=False`` the work runs in a thread and the caller calls
        ``job.poll()`` from the main thread (e.g. a QTimer) until it returns True, reading
        ``job.progress``; ``progressCallback`` is called (in the caller's thread) only when
        waiting. ``runner="subprocess"`` runs the backend in ``pythonExecutable`` (default:
        this Python). ``outputNodes`` ({"sr", "variance", "lesion_filled"} -> node) names
        existing nodes to overwrite; by default new nodes are added. Input errors are raised
        at once, before any work.
        """
        ensure_importable()
        from inference_backend.errors import InputError
        from inference_backend.job import JobOptions
        from inference_backend.plan import plan_job

        if inputVolume is None:
            raise InputError("select an input volume")
        if runner not in RUNNERS:
            raise InputError(f"unknown runner {runner!r}; one of {', '.join(RUNNERS)}")
        if any(node is inputVolume for node in (outputNodes or {}).values()):
            raise InputError("an output volume cannot be the input volume (the input is never modified)")
        options = JobOptions(
            method=method,
            method_options=dict(methodOptions or {}),
            scale=None if scale is None else tuple(float(s) for s in scale),
            spacing=None if spacing is None else tuple(float(s) for s in spacing),
            samples=int(samples),
            seed=int(seed),
            device=device,
            lesion_fill=lesionFill,
            slice_thickness=None if sliceThickness is None else float(sliceThickness),
        )
        volume = volume_from_node(inputVolume)
        mask = None if lesionMask is None else mask_from_node(lesionMask, inputVolume, volume)
        plan = plan_job(volume.grid, options)  # the backend's own checks, now rather than in a thread
        if runner == "in-process":
            backend_runner = RUNNERS[runner]()
        else:
            python = None if pythonExecutable is None else str(pythonExecutable)
            backend_runner = SubprocessRunner(python, self.temp_root, self.subprocessEnvironment(pythonExecutable))
        job = SuperResolutionJob(self, inputVolume, JobRequest(volume, plan, mask), backend_runner, progressCallback, outputNodes)
        return job.start(wait=waitForCompletion)

    def processBatch(  # noqa: N802 - Slicer's camelCase API
        self,
        inputs,
        outputDir,  # noqa: N803
        method: str = "auto",
        scale: tuple[float, float, float] | None = None,
        spacing: tuple[float, float, float] | None = None,
        samples: int = 1,
        device: str = "auto",
        seed: int = 0,
        methodOptions: dict[str, Any] | None = None,  # noqa: N803
        sliceThickness: float | None = None,  # noqa: N803
        workers: int = 1,
        retryFailed: bool = False,  # noqa: N803
        pythonExecutable: str | os.PathLike | None = None,  # noqa: N803
        progressCallback: ProgressCallback | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        """Super-resolve many files from the Python console: ``inputs`` is a folder, a BIDS
        dataset, a .csv/.tsv manifest, or a list of volume files. Runs ``mrisr batch`` in a
        separate process (this Python by default), with its rules: one folder per scan in
        ``outputDir``, scans already done with the same request skipped, failures recorded and
        the rest run. Returns the batch summary (``batch.json``); nothing enters the scene."""
        ensure_importable()
        from inference_backend.errors import MRISRError
        from inference_backend.job import JobOptions

        options = JobOptions(method=method, method_options=dict(methodOptions or {}), scale=scale, spacing=spacing,
                             samples=int(samples), seed=int(seed), device=device, slice_thickness=sliceThickness)  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="mrisr-batch-", dir=self.temp_root) as folder:
            source = batch_source(inputs, Path(folder))
            python = str(pythonExecutable or sys.executable)
            command = [python, "-m", "inference_backend", "batch", str(source), "--out", str(outputDir), *options.arguments(),
                       "--workers", str(workers), "--progress", "jsonl", *(["--retry-failed"] if retryFailed else [])]  # fmt: skip
            environment = backend_environment(self.subprocessEnvironment(pythonExecutable), ensure_importable())
            completed = run_batch_process(command, environment, progressCallback)
        from inference_backend.protocol import BATCH_FAILURES_STATUS

        if completed.returncode not in (0, BATCH_FAILURES_STATUS):
            raise MRISRError(last_line(completed.stderr.splitlines()) or f"mrisr batch failed (exit status {completed.returncode})")
        return json.loads((Path(outputDir) / "batch.json").read_text())

    # --- results into the scene ------------------------------------------------------------

    def new_output_node(self, input_node, role: str):
        """A new node for ``role`` named after the input (made unique: nothing is replaced)."""
        name = self.scene.GenerateUniqueName(NODE_NAMES[role].format(input_node.GetName()))
        node = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
        node.SetAttribute(ROLE_ATTRIBUTE, role)
        node.SetAttribute(SOURCE_ATTRIBUTE, input_node.GetID())
        return node

    def apply_result(self, input_node, result: JobResult, chosen: dict[str, Any] | None = None) -> dict[str, Any]:
        """Put a finished job's volumes into the scene (main thread) and show them: the variance
        also as the uncertainty a radiologist reads (1 SD in % of the head's median intensity)."""
        volumes = {"sr": result.sr, "variance": result.variance, "uncertainty": uncertainty_of(result),
                   "lesion_filled": result.lesion_filled, "consistency": result.consistency}  # fmt: skip
        chosen = dict(chosen or {})
        if chosen.get("sr") is not None:  # a result overwritten: its overlays with it, not new ones beside
            for role in DERIVED_ROLES:
                chosen.setdefault(role, self.scene.GetNodeByID(chosen["sr"].GetNodeReferenceID(f"{ROLE_ATTRIBUTE}.{role}") or ""))
        nodes = {}
        report = json.dumps(result.report)
        for role, volume in volumes.items():
            if volume is None:
                continue
            node = chosen.get(role) or self.new_output_node(input_node, role)
            update_node_from_volume(node, volume)
            node.SetAttribute(REPORT_ATTRIBUTE, report)
            node.SetDescription(describe(role, result.report))
            if node.GetDisplayNode() is None:
                node.CreateDefaultDisplayNodes()
            self._place_beside(input_node, node)
            nodes[role] = node
        for role in DERIVED_ROLES:
            nodes["sr"].SetNodeReferenceID(f"{ROLE_ATTRIBUTE}.{role}", nodes[role].GetID() if role in nodes else None)
        display.show_result(self.scene, nodes)
        return nodes

    def showComparison(self, result: dict[str, Any], showInput: bool) -> None:  # noqa: N802, N803
        """Show ``result["input"]`` instead of ``result["sr"]`` in the views, or back."""
        display.show_background(self.scene, result["input"] if showInput else result["sr"])

    def showConsistency(self, result: dict[str, Any], show: bool) -> None:  # noqa: N802
        """Overlay where the result contradicts the acquired scan, or (back) its uncertainty."""
        display.show_overlay(self.scene, result.get("consistency") if show else result.get("uncertainty"))

    def _place_beside(self, input_node, node) -> None:
        import slicer

        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(self.scene)
        if hierarchy is None:
            return
        source, item = hierarchy.GetItemByDataNode(input_node), hierarchy.GetItemByDataNode(node)
        if hierarchy.GetInvalidItemID() in (source, item):
            return  # no subject hierarchy plugins (a bare scene): nothing to place
        hierarchy.SetItemParent(item, hierarchy.GetItemParent(source))


def batch_source(inputs, folder: Path) -> Path:
    """A folder or manifest as given, or a manifest (in ``folder``) listing the given files."""
    if isinstance(inputs, (str, os.PathLike)):
        return Path(inputs)
    from inference_backend.imaging.io import volume_stem

    manifest = folder / "inputs.tsv"
    rows = [f"{Path(path).resolve()}\t{volume_stem(path)}" for path in inputs]
    manifest.write_text("input\tid\n" + "\n".join(rows) + "\n")
    return manifest


def run_batch_process(command: list[str], environment: dict[str, str], progress: ProgressCallback | None) -> subprocess.CompletedProcess:
    """Run ``mrisr batch``, forwarding its per-scan events to ``progress``."""
    from inference_backend.protocol import ScanLine, decode

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    for line in process.stdout:
        event = decode(line)
        if progress is not None and isinstance(event, ScanLine):
            progress(event.done / max(event.total, 1), "batch", f"{event.row['scan']}: {event.row['status']}")
    process.wait()
    reader.join()
    return subprocess.CompletedProcess(command, process.returncode, "", "".join(stderr))


PANEL_TERMS = {"--slice-thickness": _("the slice thickness"), "--samples": _("samples"), "--scale": _("the scale"), "--spacing": _("the voxel size")}


def panel_terms(message: str) -> str:
    """A backend message in the panel's words: an option's command-line name as the panel names its field."""
    for flag, label in PANEL_TERMS.items():
        if message.startswith(flag + " "):
            return label + message[len(flag) :]
    return message


def speed_key(method: str, device: str) -> str:
    kind = "cpu" if device == "auto" else device.split(":")[0]
    return f"MRISuperResolution/SpeedRelativeToReference/{method}/{kind}"


def reference_seconds(plan, device: str) -> float | None:
    """The reference machine's seconds for a plan (None where it has no rate)."""
    from inference_backend.time_estimates import rate_for

    rate = rate_for(plan.method, "cpu" if device == "auto" else device.split(":")[0])
    return None if rate is None else rate.seconds(plan.target.num_voxels, plan.samples)


def uncertainty_of(result: JobResult):
    """The variance as the overlay shows it, on its grid (None without a variance)."""
    if result.variance is None:
        return None
    from inference_backend.imaging.uncertainty import sd_percent

    return result.variance.with_array(sd_percent(result.variance.array, result.sr.array))


def describe(role: str, report: dict[str, Any]) -> str:
    """What a node holds, shown in the Data module."""
    variance = report.get("resolved_options", {}).get("variance", {}).get("meaning", "")
    consistency = report.get("consistency") or {}
    if role == "variance":  # calibrated or a relative spread
        return variance
    if role == "uncertainty":
        return _("1 standard deviation in % of the median intensity inside the head; from the variance map: {meaning}").format(meaning=variance)
    if role == "consistency":
        return _(
            "The result passed through the acquisition model, minus the acquired scan, in noise SDs ({model}; noise SD {sd}): "
            "where the result contradicts what the scanner measured. Detail the acquisition never saw does not show here."
        ).format(model=consistency.get("model", ""), sd=consistency.get("noise_sd", "?"))
    return ""


def _dims(values) -> str:
    return " x ".join(str(int(v)) for v in values)


def _mm(values) -> str:
    return " x ".join(f"{v:.2f}" for v in values)
