"""MRISuperResolution: diffusion-based MRI super-resolution in 3D Slicer.

This file stays thin (module, parameter node, widget, logic, self-test); the work is done by
``MRISuperResolutionLib`` and the bundled ``inference_backend``. Loading the module imports
neither torch nor numpy: only the backend's method registry, which is plain Python.
"""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional, Union

import qt
import slicer
import vtk
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from MRISuperResolutionLib.backend import ensure_importable
from MRISuperResolutionLib.i18n import tr as _
from MRISuperResolutionLib.i18n import translate
from MRISuperResolutionLib.logic import SuperResolutionLogic

ensure_importable()
from inference_backend.registry import LESION_FILLS, MAX_SAMPLES, METHODS  # noqa: E402 - plain Python, no torch

DOCUMENTATION_URL = "https://github.com/mrisr/SlicerMRISuperResolution#readme"
RUNNER_CHOICES = ["subprocess", "in-process"]
TARGET_MODES = ["spacing", "scale"]
TARGET_LABELS = {"spacing": _("Voxel size (mm):"), "scale": _("Scale factor:")}
WINDOW_TITLE = _("MRI Super-Resolution")
# what a job's progress stages mean to a user (the backend's stages; the rest read as they are)
STAGES = {
    "read": _("Reading the scan"),
    "process": _("Preparing"),
    "B-spline conditioning": _("Preparing"),
    "adapting to the scan": _("Adapting the model to this scan"),
    "super-resolution": _("Super-resolving"),
    "super-resolve": _("Super-resolving"),
    "lesion fill": _("Filling the lesion"),
    "write": _("Saving the results"),
}


class MRISuperResolution(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MRI Super-Resolution")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Filtering")]
        self.parent.dependencies = []
        self.parent.contributors = ["MRISuperResolution developers"]
        self.parent.helpText = _(
            "Super-resolve an MRI volume (thick slices or a coarse in-plane matrix) with diffusion models "
            "(Res-SRDiff, SRMRI, MSP-SR, InverseSR) or classical interpolation. Stochastic methods also give a "
            "per-voxel variance map; a lesion mask gives a lesion-filled volume.<br><br>"
            "<b>For research use only.</b> Not a medical device: not for diagnosis or treatment decisions. A learned "
            "method fills in detail the scan did not measure; check every result against the input."
            '<br><br>See the <a href="{url}">documentation</a>.'
        ).format(url=DOCUMENTATION_URL)
        self.parent.acknowledgementText = _(
            "Methods after Res-SRDiff, SRMRI, MSP-SR and InverseSR; models trained by this project on the MNI152 "
            "template, SynthSR label maps and openly licensed scans (see the model cards)."
        )


@parameterNodeWrapper
class MRISuperResolutionParameterNode:
    """The panel's state, saved with the scene. ``model`` and ``device`` are not bound to a
    widget: their lists depend on the installed models and on the job's Python."""

    inputVolume: vtkMRMLScalarVolumeNode
    method: Annotated[str, Choice(list(METHODS))] = "auto"
    targetMode: Annotated[str, Choice(TARGET_MODES)] = "spacing"
    targetX: Annotated[float, WithinRange(0.05, 20.0)] = 1.0
    targetY: Annotated[float, WithinRange(0.05, 20.0)] = 1.0
    targetZ: Annotated[float, WithinRange(0.05, 20.0)] = 1.0
    sliceThickness: Annotated[float, WithinRange(0.0, 50.0)] = 0.0  # mm; 0 = the same as the slice spacing
    samples: Annotated[int, WithinRange(1, MAX_SAMPLES)] = 1
    lesionMask: Optional[Union[vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode]]
    lesionFill: Annotated[str, Choice(list(LESION_FILLS))] = "neighbourhood"
    model: str = ""  # "" = the method's bundled model
    device: str = "auto"
    runner: Annotated[str, Choice(RUNNER_CHOICES)] = "subprocess"
    pythonExecutable: Path = Path(sys.executable)  # Slicer's own Python (PythonSlicer) unless changed
    seed: Annotated[int, WithinRange(0, 2**31 - 1)] = 0
    outputVolume: Optional[vtkMRMLScalarVolumeNode]  # None = create a new volume (never overwrite)
    outputVariance: Optional[vtkMRMLScalarVolumeNode]
    outputLesionFilled: Optional[vtkMRMLScalarVolumeNode]


class MRISuperResolutionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._inputGeometry = None  # (node ID, spacing, dimensions) the target was last set for
        self._observedInput = None
        self._lastTargetMode = None
        self._targetError = None
        self._describedMethod = None
        self.job = None
        self.lastResult = {}  # role -> node of the last finished job, and "input"
        self.timer = qt.QTimer()
        self.timer.setInterval(150)
        self.timer.connect("timeout()", self.onPollJob)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MRISuperResolution.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MRISuperResolutionLogic()
        self.ui.progressBar.hide()
        self.ui.devicesLabel.hide()  # until GPUs are detected
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.onDeviceChosen)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.detectDevicesButton.connect("clicked(bool)", self.onDetectDevices)
        self.ui.compareInputCheckBox.connect("toggled(bool)", self.onCompareInput)
        self.ui.showConsistencyCheckBox.connect("toggled(bool)", self.onShowConsistency)
        self.ui.importModelButton.connect("clicked(bool)", self.onImportModel)
        self.ui.openModelsFolderButton.connect("clicked(bool)", self.onOpenModelsFolder)
        self.ui.installDependenciesButton.connect("clicked(bool)", lambda: self.ensureDependencies(confirmWhenReady=True))
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.refreshModels()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.cancelJob()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)
        self.observeInput(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelJob()  # its input is going away: stop it, add nothing
        self.setParameterNode(None)
        self.observeInput(None)
        self.lastResult = {}

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume and not firstVolume.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = firstVolume

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        self._describedMethod = None
        if self._parameterNode:
            self._inputGeometry = self.inputGeometry()
            self._lastTargetMode = self._parameterNode.targetMode
            saved = self._parameterNode.pythonExecutable
            if saved.name == Path(sys.executable).name and not saved.is_file():  # the default, saved by another Slicer
                self._parameterNode.pythonExecutable = Path(sys.executable)
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.fillMethodTooltips()
            self.fillDeviceChoices(self.logic.lastDetectedDevices)
            self.onParameterNodeModified()

    # --- keeping the panel in step with the parameters -----------------------------------

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.observeInput(p.inputVolume)
        geometry = self.inputGeometry()
        if geometry != self._inputGeometry or p.targetMode != self._lastTargetMode:
            newInput, self._inputGeometry, self._lastTargetMode = geometry != self._inputGeometry, geometry, p.targetMode
            if newInput and self.job is None:
                self.ui.statusLabel.text = ""  # the last job's status is not this input's
            if p.inputVolume:
                self.setTarget(self.logic.defaultTarget(p.inputVolume, p.targetMode) if newInput else self.convertedTarget())
                return  # the change runs this handler again
        spec = METHODS.get(p.method)
        self.updateMethodDescription(p.method)
        self.ui.samplesSpinBox.enabled = bool(spec and spec.stochastic)
        self.ui.pythonPathLineEdit.enabled = p.runner == "subprocess"
        self.ui.targetLabel.text = TARGET_LABELS[p.targetMode]
        self.ui.lesionFillComboBox.enabled = p.lesionMask is not None
        self.updateTargetSummary()
        self.updateApplyState()

    def inputGeometry(self):
        node = self._parameterNode.inputVolume if self._parameterNode else None
        if node is None:
            return None
        image = node.GetImageData()
        return node.GetID(), tuple(node.GetSpacing()), image.GetDimensions() if image else None

    def observeInput(self, node) -> None:
        """Follow the input's geometry: a volume still loading, or resampled, changes the target."""
        if node is self._observedInput:
            return
        if self._observedInput is not None:
            self.removeObserver(self._observedInput, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.removeObserver(self._observedInput, slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent, self.onParameterNodeModified)
        self._observedInput = node
        if node is not None:
            self.addObserver(node, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.addObserver(node, slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent, self.onParameterNodeModified)

    def setTarget(self, target) -> None:
        with slicer.util.NodeModify(self._parameterNode.parameterNode):
            self._parameterNode.targetX, self._parameterNode.targetY, self._parameterNode.targetZ = target

    def convertedTarget(self) -> tuple:
        """The target just given in the other mode (spacing <-> scale), in the current one."""
        p = self._parameterNode
        spacing = p.inputVolume.GetSpacing()
        values = (p.targetX, p.targetY, p.targetZ)
        return tuple(round(s / v, 2) for s, v in zip(spacing, values))

    def target(self) -> dict:
        p = self._parameterNode
        return {p.targetMode: (p.targetX, p.targetY, p.targetZ)}

    def updateTargetSummary(self) -> None:
        """The job's plan for the current input and request: what it will make, or why not."""
        p = self._parameterNode
        self._targetError, plan = None, None
        if p.inputVolume:
            plan, self._targetError = self.logic.planJob(
                p.inputVolume, p.method, sliceThickness=p.sliceThickness or None, samples=p.samples, device=p.device, **self.target()
            )
        if plan is not None:
            self.ui.resolutionLabel.text = self.logic.describePlan(plan, p.device)
        else:
            self.ui.resolutionLabel.text = f'<span style="color:#c00">{self._targetError}</span>' if self._targetError else ""
        self.showWhatThePlanMakes(plan)

    def showWhatThePlanMakes(self, plan) -> None:
        """The model the job will load and the outputs it will make, as its plan says: an output
        selector is enabled only where that output will be made."""
        p = self._parameterNode
        makes_variance = plan is not None and plan.samples > 1
        self.ui.outputVarianceSelector.enabled = self.ui.outputVarianceLabel.enabled = makes_variance
        self.ui.outputLesionFilledSelector.enabled = self.ui.outputLesionFilledLabel.enabled = p.lesionMask is not None
        if plan is not None and self.ui.modelComboBox.count > 0:
            if plan.model is not None:
                text = _("bundled: {model}").format(model=plan.model.name) if not p.model else None
            else:
                text = _("none needed ({method})").format(method=plan.method)
            if text is not None:
                self.ui.modelComboBox.setItemText(0, text)

    def updateApplyState(self) -> None:
        if self.job is not None:
            return
        p = self._parameterNode
        problem = None
        if not (p and p.inputVolume):
            problem = _("Select an input volume")
        elif getattr(self, "_targetError", None):
            problem = self._targetError
        self.ui.applyButton.enabled = problem is None
        self.ui.applyButton.text = _("Apply")
        self.ui.applyButton.toolTip = problem or _("Super-resolve the input volume; its results are added as new volumes")

    def updateMethodDescription(self, name: str) -> None:
        """The method's description and model list, when the method changes (they read the
        installed models from disk: not on every parameter change)."""
        spec = METHODS.get(name)
        if spec is None or name == self._describedMethod:
            return
        self._describedMethod = name
        self.fillModelChoices(name)
        status = "" if spec.assets_present() else " <b>" + _("Weights not installed.") + "</b>"
        self.ui.methodDescriptionLabel.text = f"{spec.summary}{status}"

    def fillMethodTooltips(self) -> None:
        for index in range(self.ui.methodComboBox.count):
            spec = METHODS.get(self.ui.methodComboBox.itemText(index))
            if spec is not None:
                self.ui.methodComboBox.setItemData(index, spec.summary, qt.Qt.ToolTipRole)

    def fillModelChoices(self, method: str) -> None:
        """The method's bundled model first, then models fine-tuned or imported for it."""
        p = self._parameterNode
        models = self.logic.modelsFor(method)
        wasBlocked = self.ui.modelComboBox.blockSignals(True)
        self.ui.modelComboBox.clear()
        self.ui.modelComboBox.addItem(_("bundled") if METHODS[method].weights else _("none needed"), "")
        for name, source in models:
            self.ui.modelComboBox.addItem(f"{name} ({source})", name)
        chosen = self.ui.modelComboBox.findData(p.model) if p.model else 0
        self.ui.modelComboBox.currentIndex = max(chosen, 0)
        self.ui.modelComboBox.blockSignals(wasBlocked)
        self.ui.modelComboBox.enabled = bool(models)  # a choice as soon as one model besides the default is installed
        if chosen < 0:
            p.model = ""

    def onModelChosen(self, index: int) -> None:
        if self._parameterNode is not None:
            self._parameterNode.model = self.ui.modelComboBox.itemData(index) or ""

    def fillDeviceChoices(self, devices) -> None:
        wasBlocked = self.ui.deviceComboBox.blockSignals(True)
        self.ui.deviceComboBox.clear()
        for deviceId, text in [("auto", _("auto")), ("cpu", _("CPU"))] + [(d["id"], f"{d['id']}: {d['name']}") for d in devices if d["id"] != "cpu"]:
            self.ui.deviceComboBox.addItem(text, deviceId)
        current = self._parameterNode.device if self._parameterNode else "auto"
        if self.ui.deviceComboBox.findData(current) < 0:
            self.ui.deviceComboBox.addItem(current, current)  # a device saved with the scene, not detected yet
        self.ui.deviceComboBox.currentIndex = self.ui.deviceComboBox.findData(current)
        self.ui.deviceComboBox.blockSignals(wasBlocked)

    def onDeviceChosen(self, index: int) -> None:
        if self._parameterNode is not None:
            self._parameterNode.device = self.ui.deviceComboBox.itemData(index) or "auto"

    # --- running -------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        if self.job is not None:
            self.cancelJob(wait=False)
            self.ui.statusLabel.text = _("Cancelling...")
            return
        p = self._parameterNode
        python = self.logic.pythonFor(p.runner, p.pythonExecutable)
        if python is None and not self.ensureDependencies():
            return
        try:
            self.job = self.logic.process(
                p.inputVolume,
                method=p.method,
                samples=p.samples,
                lesionMask=p.lesionMask,
                lesionFill=p.lesionFill,
                methodOptions={"model": p.model} if p.model else None,
                device=p.device,
                seed=p.seed,
                sliceThickness=p.sliceThickness or None,
                runner=p.runner,
                pythonExecutable=python,
                waitForCompletion=False,
                outputNodes={"sr": p.outputVolume, "variance": p.outputVariance, "lesion_filled": p.outputLesionFilled},
                **self.target(),
            )
        except Exception as error:  # noqa: BLE001 - every failure: one dialog, the details in the log
            self.showError(error)
            return
        self.ui.applyButton.text = _("Cancel")
        self.ui.applyButton.toolTip = _("Stop the job; nothing is added to the scene")
        self.ui.progressBar.value = 0
        self.ui.progressBar.show()
        self.ui.statusLabel.text = _("Starting...")
        self.timer.start()

    def cancelJob(self, wait: bool = True) -> None:
        """Stop the running job (if any); with ``wait``, until it has ended and added nothing."""
        if self.job is None:
            return
        self.job.cancel()
        if wait:
            self.job.wait(timeout=30)
            self.onPollJob()

    def onPollJob(self) -> None:
        job = self.job
        if job is None:
            self.timer.stop()
            return
        fraction, stage, _message = job.progress  # the message is the command line's detail: the panel says the stage
        self.ui.progressBar.value = int(round(fraction * 100))
        left = job.seconds_left()
        eta = " - " + _("about {seconds} s left").format(seconds=f"{left:.0f}") if left is not None else ""
        self.ui.statusLabel.text = stage_text(stage) + eta
        if not job.poll():
            return
        self.timer.stop()
        self.job = None
        self.ui.progressBar.hide()
        self.updateApplyState()
        if job.state == "finished":
            self.lastResult = dict(job.outputNodes, input=job.input_node)
            self.ui.compareInputCheckBox.checked = False
            self.ui.showConsistencyCheckBox.checked = False
            self.ui.showConsistencyCheckBox.enabled = "consistency" in job.outputNodes
            made = ", ".join(n.GetName() for n in job.outputNodes.values())
            self.ui.statusLabel.text = _("Done in {seconds} s with {method}: {made}.").format(
                seconds=f"{job.elapsed_seconds():.1f}", method=job.method_summary(), made=made
            ) + " " + job.consistency_summary()
            self.logic.recordTiming(job.request.plan, job.request.plan.request.device, job.elapsed_seconds())
            self.updateTargetSummary()  # the next estimate learns from this run
        elif job.state == "cancelled":
            self.ui.statusLabel.text = _("Cancelled: nothing was added to the scene")
        else:
            self.ui.statusLabel.text = _("Failed: nothing was added to the scene")
            if job.details:
                logging.error(job.details)
            slicer.util.errorDisplay(job.error, windowTitle=WINDOW_TITLE, detailedText=job.details or "")

    def showError(self, error: Exception) -> None:
        """One dialog; input errors as they are, anything else with its traceback (also logged)."""
        ensure_importable()
        from inference_backend.errors import MRISRError

        if isinstance(error, MRISRError):
            slicer.util.errorDisplay(str(error), windowTitle=WINDOW_TITLE)
            return
        logging.exception("MRI Super-Resolution: internal error")
        slicer.util.errorDisplay(
            _("Internal error: {error}").format(error=error), windowTitle=WINDOW_TITLE, detailedText=traceback.format_exc()
        )

    def onCompareInput(self, showInput: bool) -> None:
        if "sr" in self.lastResult:
            self.logic.showComparison(self.lastResult, showInput)

    def onShowConsistency(self, show: bool) -> None:
        if "consistency" in self.lastResult:
            self.logic.showConsistency(self.lastResult, show)

    # --- devices, dependencies, models ---------------------------------------------------

    def onDetectDevices(self) -> None:
        p = self._parameterNode
        python = self.logic.pythonFor(p.runner, p.pythonExecutable)
        if python is None and not self.ensureDependencies():
            return
        try:
            with slicer.util.tryWithErrorDisplay(_("Could not ask the job's Python for its devices"), waitCursor=True):
                devices = self.logic.detectDevices(python)
        except Exception:  # noqa: BLE001 - shown by tryWithErrorDisplay
            logging.exception("MRI Super-Resolution: device detection failed")
            return
        self.fillDeviceChoices(devices)
        self.ui.devicesLabel.text = self.logic.describeDevices(devices)
        self.ui.devicesLabel.show()

    def ensureDependencies(self, confirmWhenReady: bool = False) -> bool:
        """Slicer's Python has what the backend needs (asking before installing anything)."""
        from MRISuperResolutionLib import dependencies

        try:
            installed = dependencies.ensure(self.resourcePath("requirements.txt"))
        except dependencies.Declined:
            return False
        except dependencies.DependencyError as error:  # what to do instead: said as it is
            slicer.util.errorDisplay(str(error), windowTitle=WINDOW_TITLE)
            return False
        except Exception as error:  # noqa: BLE001 - offline, pip failure: one dialog
            logging.exception("MRI Super-Resolution: installing the Python packages failed")
            slicer.util.errorDisplay(
                _("Installing the Python packages failed: {error}\n\nOffline? See the README's troubleshooting.").format(error=error),
                windowTitle=WINDOW_TITLE,
                detailedText=traceback.format_exc(),
            )
            return False
        if confirmWhenReady and not installed:
            slicer.util.infoDisplay(_("All required Python packages are installed."), windowTitle=WINDOW_TITLE)
        return True

    def refreshModels(self) -> None:
        ensure_importable()
        from inference_backend.assets import list_models

        table = self.ui.modelsTable
        models = list_models()
        table.setRowCount(len(models))
        for row, card in enumerate(models):
            validation = card.get("validation", {})
            values = [card["name"], card.get("method", ""), f"{card.get('size_mb', '?')} MB", str(validation.get("val_psnr", "")), card["source"]]
            for column, value in enumerate(values):
                item = qt.QTableWidgetItem(value)
                item.setToolTip(f"SHA-256 {card['sha256']}\n{card.get('data', '')}")
                table.setItem(row, column, item)

    def onImportModel(self) -> None:
        path = qt.QFileDialog.getOpenFileName(None, _("Import a model (.pt with its .json card beside it)"), "", _("Models (*.pt)"))
        if not path:
            return
        ensure_importable()
        from inference_backend.assets import import_model

        try:
            name = import_model(path)
        except Exception as error:  # noqa: BLE001 - one dialog
            self.showError(error)
            return
        self.refreshModels()
        if self._parameterNode:
            self.fillModelChoices(self._parameterNode.method)
        slicer.util.infoDisplay(_("Model '{name}' imported: choose it in the Model list.").format(name=name), windowTitle=WINDOW_TITLE)

    def onOpenModelsFolder(self) -> None:
        ensure_importable()
        from inference_backend.assets import user_models_dir

        folder = user_models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(folder)))


def stage_text(stage: str) -> str:
    """A progress stage as the panel says it: "sample 2/4" -> "Super-resolving, sample 2 of 4"."""
    if stage.startswith("sample "):
        done, _slash, total = stage.removeprefix("sample ").partition("/")
        return _("Super-resolving, sample {done} of {total}").format(done=done, total=total)
    return STAGES.get(stage, stage[:1].upper() + stage[1:])


class MRISuperResolutionLogic(ScriptedLoadableModuleLogic, SuperResolutionLogic):
    """Slicer's logic base (parameter node) + the GUI-free logic of MRISuperResolutionLib."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        SuperResolutionLogic.__init__(self, slicer.mrmlScene)

    def getParameterNode(self):
        return MRISuperResolutionParameterNode(super().getParameterNode())


class MRISuperResolutionTest(ScriptedLoadableModuleTest):
    """The panel end to end on a thick-slice MRHead (select, Apply, wait, check the new
    nodes), and the Logic's geometry with the learned method when its packages are present."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_apply_from_the_panel()
        self.setUp()
        self.test_learned_method_when_present()

    def thickSliceVolume(self):
        """MRHead averaged over 3 slices: a thick-slice scan whose thin truth is known."""
        import numpy as np
        import SampleData

        head = SampleData.downloadSample("MRHead")
        array = slicer.util.arrayFromVolume(head).astype(np.float32)  # K, J, I
        thick = array[: array.shape[0] // 3 * 3].reshape(-1, 3, *array.shape[1:]).mean(axis=1)
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "MRHead thick")
        matrix = vtk.vtkMatrix4x4()
        head.GetIJKToRASMatrix(matrix)
        node.SetIJKToRASMatrix(matrix)
        slicer.util.updateVolumeFromArray(node, thick)
        spacing = list(head.GetSpacing())
        spacing[2] *= 3
        node.SetSpacing(spacing)
        origin = np.array(head.GetOrigin())
        head.GetIJKToRASDirectionMatrix(matrix)
        kAxis = np.array([matrix.GetElement(r, 2) for r in range(3)])
        node.SetOrigin(*(origin + kAxis * head.GetSpacing()[2]))  # centre of the first 3 thin slices
        node.CreateDefaultDisplayNodes()
        return head, node

    def cropped(self, node, size: int):
        """The central ``size`` x ``size`` columns of ``node`` (all slices), on the same grid."""
        import numpy as np

        array = slicer.util.arrayFromVolume(node)  # K, J, I
        j0, i0 = (array.shape[1] - size) // 2, (array.shape[2] - size) // 2
        crop = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", node.GetName() + " crop")
        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        corner = matrix.MultiplyPoint((i0, j0, 0, 1))
        crop.SetIJKToRASMatrix(matrix)
        crop.SetOrigin(*corner[:3])
        slicer.util.updateVolumeFromArray(crop, np.ascontiguousarray(array[:, j0 : j0 + size, i0 : i0 + size]))
        return crop

    def waitForJob(self, widget, timeoutSeconds: float = 300) -> None:
        import time

        deadline = time.monotonic() + timeoutSeconds
        while widget.job is not None and time.monotonic() < deadline:
            slicer.app.processEvents()
            time.sleep(0.05)
        self.assertIsNone(widget.job, "the job did not end in time")

    def test_apply_from_the_panel(self):
        import numpy as np

        head, thick = self.thickSliceVolume()
        widget = slicer.util.getModuleWidget("MRISuperResolution")
        parameters = widget._parameterNode
        parameters.inputVolume = thick
        finest = round(min(thick.GetSpacing()), 2)
        self.assertEqual((parameters.targetX, parameters.targetY, parameters.targetZ), (finest,) * 3)  # the default
        parameters.method = "interpolation"
        parameters.targetMode = "spacing"
        parameters.targetX, parameters.targetY, parameters.targetZ = head.GetSpacing()  # the thin truth's grid
        self.assertTrue(widget.ui.applyButton.enabled, widget.ui.applyButton.toolTip)
        widget.ui.applyButton.click()
        self.assertEqual(widget.ui.applyButton.text, "Cancel")
        self.waitForJob(widget)
        self.assertEqual(widget.ui.applyButton.text, "Apply")
        result = slicer.util.getNode("MRHead thick SR")
        self.assertIsNone(parameters.outputVolume)  # the next Apply makes new nodes again
        count = thick.GetImageData().GetDimensions()[2] * 3
        self.assertEqual(result.GetImageData().GetDimensions()[2], count)
        np.testing.assert_allclose(result.GetOrigin(), head.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(result.GetSpacing(), head.GetSpacing(), atol=0.01)
        reference = slicer.util.arrayFromVolume(head)[:count].astype(float)
        restored = slicer.util.arrayFromVolume(result)
        aligned = np.abs(restored[1:-1] - reference[1:-1]).mean()
        shifted = np.abs(restored[1:-1] - reference[2:]).mean()  # one thin slice off: what a geometry slip gives
        self.assertLess(aligned, 0.8 * shifted)
        composite = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
        self.assertEqual(composite.GetBackgroundVolumeID(), result.GetID())
        self.delayDisplay("Apply from the panel: passed")

    def test_learned_method_when_present(self):
        logic = MRISuperResolutionLogic()
        spec = METHODS["res-srdiff"]
        from MRISuperResolutionLib import dependencies

        if not spec.assets_present() or dependencies.missing():
            self.delayDisplay("res-srdiff weights or PyTorch not installed: skipped")
            return
        _, thick = self.thickSliceVolume()
        slab = self.cropped(thick, 48)  # a minute's work on a CPU, not ten
        job = logic.process(slab, method="res-srdiff", scale=(1, 1, 3), samples=2, device="cpu", methodOptions={"adapt_steps": 0})
        self.assertEqual(job.state, "finished", job.error)
        self.assertIn("variance", job.outputNodes)
        self.delayDisplay("Res-SRDiff: passed")
