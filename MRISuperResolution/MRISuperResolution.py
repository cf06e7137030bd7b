"""MRISuperResolution: diffusion-based MRI super-resolution in 3D Slicer.

This file stays thin (module, parameter node, widget, logic, test); the work is done by
``MRISuperResolutionLib`` and the bundled ``inference_backend``. Neither torch nor the backend
is imported when Slicer loads the module.
"""
from __future__ import annotations

from typing import Optional, Union

import qt
import slicer
import vtk
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

from MRISuperResolutionLib.logic import SuperResolutionLogic

GPU_MEMORY_WARNING_GB = 4.0


class MRISuperResolution(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MRI Super-Resolution"
        self.parent.categories = ["Filtering"]
        self.parent.dependencies = []
        self.parent.contributors = ["MRISuperResolution developers"]
        self.parent.helpText = (
            "Super-resolve an MRI volume (thick slices or a coarse in-plane matrix) with diffusion models "
            "(Res-SRDiff, SRMRI, MSP-SR, InverseSR) or classical interpolation. Stochastic methods also give a "
            "per-voxel variance map; a lesion mask gives a lesion-filled volume."
        )
        self.parent.acknowledgementText = (
            "Methods after Res-SRDiff, SRMRI, MSP-SR and InverseSR; models trained by this project on the MNI152 "
            "template, SynthSR label maps and openly licensed scans (see the model cards)."
        )


@parameterNodeWrapper
class MRISuperResolutionParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    method: str = "interpolation"
    targetMode: str = "scale"  # "scale" (factor per axis) or "spacing" (mm)
    targetX: float = 1.0
    targetY: float = 1.0
    targetZ: float = 4.0
    samples: int = 1
    lesionMask: Union[vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode, None]
    lesionFill: str = "neighbourhood"
    model: str = ""  # the method's model; "" = its default (bundled) one
    device: str = "auto"
    runner: str = "in-process"
    pythonExecutable: str = ""
    seed: int = 0
    outputVolume: Optional[vtkMRMLScalarVolumeNode]
    outputVariance: Optional[vtkMRMLScalarVolumeNode]
    outputLesionFilled: Optional[vtkMRMLScalarVolumeNode]


class MRISuperResolutionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.job = None
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
        for name, spec in self.logic.methods().items():
            self.ui.methodComboBox.addItem(name)
            self.ui.methodComboBox.setItemData(self.ui.methodComboBox.count - 1, spec.summary, qt.Qt.ToolTipRole)
        self.ui.methodComboBox.connect("currentTextChanged(QString)", self.updateMethodDescription)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.detectDevicesButton.connect("clicked(bool)", self.onDetectDevices)
        self.ui.importModelButton.connect("clicked(bool)", self.onImportModel)
        self.ui.openModelsFolderButton.connect("clicked(bool)", self.onOpenModelsFolder)
        self.ui.installDependenciesButton.connect("clicked(bool)", lambda: self.ensureDependencies(force=True))
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.refreshModels()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateApplyState)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.inputVolume = firstVolume

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateApplyState)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateApplyState)
            self.updateApplyState()
            self.updateMethodDescription(self._parameterNode.method)

    def updateApplyState(self, caller=None, event=None) -> None:
        if self.job is not None:
            return
        ready = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.text = "Apply"
        self.ui.applyButton.toolTip = "Super-resolve the input volume" if ready else "Select an input volume"
        stochastic = self._parameterNode and self.logic.methods().get(self._parameterNode.method)
        self.ui.samplesSpinBox.enabled = bool(stochastic and stochastic.stochastic)
        self.ui.pythonPathLineEdit.enabled = bool(self._parameterNode and self._parameterNode.runner == "subprocess")

    def updateMethodDescription(self, name: str) -> None:
        spec = self.logic.methods().get(name)
        if spec is None:
            return
        self.fillModelChoices(name)
        status = "" if spec.assets_present() else " <b>Weights not installed.</b>"
        time = f"<br><i>Expected time: {spec.expected_time}</i>" if spec.expected_time else ""
        self.ui.methodDescriptionLabel.text = f"{spec.summary}{status}{time}"

    def fillModelChoices(self, method: str) -> None:
        """The models a method can use: its bundled one first, then fine-tuned or imported ones."""
        wasBlocked = self.ui.modelComboBox.blockSignals(True)
        self.ui.modelComboBox.clear()
        self.ui.modelComboBox.addItem("")  # the method's default model
        models = self.logic.modelsFor(method)
        for name in models:
            self.ui.modelComboBox.addItem(name)
        self.ui.modelComboBox.blockSignals(wasBlocked)
        self.ui.modelComboBox.enabled = bool(models)
        if self._parameterNode and self._parameterNode.model not in models:
            self._parameterNode.model = ""

    # --- running -------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.ui.statusLabel.text = "Cancelling..."
            return
        p = self._parameterNode
        if p.runner == "in-process" and not self.ensureDependencies():
            return
        target = (p.targetX, p.targetY, p.targetZ)
        try:
            self.job = self.logic.process(
                p.inputVolume,
                method=p.method,
                scale=target if p.targetMode == "scale" else None,
                spacing=target if p.targetMode == "spacing" else None,
                samples=p.samples,
                lesionMask=p.lesionMask,
                lesionFill=p.lesionFill,
                methodOptions={"model": p.model} if p.model else None,
                device=p.device,
                seed=p.seed,
                runner=p.runner,
                pythonExecutable=p.pythonExecutable or None,
                waitForCompletion=False,
                outputNodes={"sr": p.outputVolume, "variance": p.outputVariance, "lesion_filled": p.outputLesionFilled},
            )
        except Exception as error:  # noqa: BLE001 - input errors: one dialog, no traceback
            slicer.util.errorDisplay(str(error), windowTitle="MRI Super-Resolution")
            return
        self.ui.applyButton.text = "Cancel"
        self.ui.applyButton.toolTip = "Stop the job; nothing is added to the scene"
        self.ui.progressBar.value = 0
        self.ui.progressBar.show()
        self.timer.start()

    def onPollJob(self) -> None:
        job = self.job
        fraction, stage, message = job.progress
        self.ui.progressBar.value = int(round(fraction * 100))
        left = job.seconds_left()
        eta = f" - about {left:.0f} s left" if left is not None else ""
        self.ui.statusLabel.text = f"{stage}: {message}{eta}"
        if not job.poll():
            return
        self.timer.stop()
        self.job = None
        self.updateApplyState()
        if job.state == "finished":
            p = self._parameterNode
            p.outputVolume = job.outputNodes.get("sr")
            p.outputVariance = job.outputNodes.get("variance")
            p.outputLesionFilled = job.outputNodes.get("lesion_filled")
            self.ui.statusLabel.text = f"Done in {job.elapsed_seconds():.1f} s"
            self.ui.progressBar.value = 100
        elif job.state == "cancelled":
            self.ui.statusLabel.text = "Cancelled: nothing was added to the scene"
        else:
            self.ui.statusLabel.text = "Failed"
            slicer.util.errorDisplay(job.error, windowTitle="MRI Super-Resolution")

    # --- devices, dependencies, models ---------------------------------------------------

    def onDetectDevices(self) -> None:
        if not self.ensureDependencies():
            return
        from inference_backend.devices import list_devices

        with slicer.util.tryWithErrorDisplay("Could not query the devices", waitCursor=True):
            devices = list_devices()
            self.ui.deviceComboBox.clear()
            self.ui.deviceComboBox.addItem("auto")
            lines = []
            for device in devices:
                self.ui.deviceComboBox.addItem(device.id)
                memory = f", {device.free_memory_gb:.1f} of {device.total_memory_gb:.1f} GB free" if device.total_memory_gb else ""
                lines.append(f"{device.id}: {device.name}{memory}")
                if device.free_memory_gb is not None and device.free_memory_gb < GPU_MEMORY_WARNING_GB:
                    lines[-1] += " - <b>low memory: prefer fewer samples or the CPU</b>"
            if len(devices) == 1:
                lines.append("No CUDA GPU is visible to PyTorch here (see README: GPU not detected).")
            self.ui.devicesLabel.text = "<br>".join(lines)

    def ensureDependencies(self, force: bool = False) -> bool:
        from MRISuperResolutionLib import dependencies

        missing = dependencies.missing_packages()
        if not missing:
            if force:
                slicer.util.infoDisplay("All required Python packages are installed.")
            return True
        if not slicer.util.confirmOkCancelDisplay(
            "The in-process runner needs these Python packages in Slicer:\n\n  " + "\n  ".join(missing)
            + "\n\nInstall them now? (Slicer's own numpy, SimpleITK and VTK are left unchanged.)",
            windowTitle="MRI Super-Resolution",
        ):
            return False
        with slicer.util.tryWithErrorDisplay("Installing the packages failed (offline? see README)", waitCursor=True):
            if dependencies.install(missing):
                if slicer.util.confirmOkCancelDisplay("Slicer must restart to use the new packages. Restart now?"):
                    slicer.util.restart()
                return False
            return not dependencies.missing_packages()
        return False

    def refreshModels(self) -> None:
        from MRISuperResolutionLib.backend import ensure_importable

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
        path = qt.QFileDialog.getOpenFileName(None, "Import a model (.pt with its .json card beside it)", "", "Models (*.pt)")
        if not path:
            return
        from inference_backend.assets import import_model

        with slicer.util.tryWithErrorDisplay("The model could not be imported"):
            name = import_model(path)
            self.refreshModels()
            slicer.util.infoDisplay(f"Model '{name}' imported; select it with the method option 'model'.")

    def onOpenModelsFolder(self) -> None:
        from inference_backend.assets import user_models_dir

        folder = user_models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(folder)))


class MRISuperResolutionLogic(ScriptedLoadableModuleLogic, SuperResolutionLogic):
    """Slicer's logic base (parameter node) + the GUI-free logic of MRISuperResolutionLib."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        SuperResolutionLogic.__init__(self, slicer.mrmlScene)

    def getParameterNode(self):
        return MRISuperResolutionParameterNode(super().getParameterNode())


class MRISuperResolutionTest(ScriptedLoadableModuleTest):
    """Runs the Logic inside Slicer on a down-sampled MRHead: interpolation always, the learned
    method when its weights are installed; checks geometry and values."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_interpolation_restores_the_grid()
        self.test_learned_method_when_present()

    def thickSliceVolume(self):
        import numpy as np
        import SampleData

        head = SampleData.downloadSample("MRHead")
        array = slicer.util.arrayFromVolume(head).astype(np.float32)  # K, J, I
        thick = array[: array.shape[0] // 3 * 3].reshape(-1, 3, *array.shape[1:]).mean(axis=1)
        node = slicer.modules.volumes.logic().CloneVolume(slicer.mrmlScene, head, "MRHead thick")
        slicer.util.updateVolumeFromArray(node, thick)
        spacing = list(head.GetSpacing())
        spacing[2] *= 3
        node.SetSpacing(spacing)
        origin = np.array(head.GetOrigin())
        matrix = vtk.vtkMatrix4x4()
        head.GetIJKToRASDirectionMatrix(matrix)
        kAxis = np.array([matrix.GetElement(r, 2) for r in range(3)])
        node.SetOrigin(*(origin + kAxis * head.GetSpacing()[2]))  # centre of the first 3 thin slices
        return head, node

    def test_interpolation_restores_the_grid(self):
        import numpy as np

        head, thick = self.thickSliceVolume()
        logic = MRISuperResolutionLogic()
        job = logic.process(thick, method="interpolation", scale=(1, 1, 3))
        self.assertEqual(job.state, "finished", job.error)
        result = job.outputNodes["sr"]
        self.assertEqual(result.GetName(), "MRHead thick SR")
        count = thick.GetImageData().GetDimensions()[2] * 3
        self.assertEqual(result.GetImageData().GetDimensions()[2], count)
        np.testing.assert_allclose(result.GetOrigin(), head.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(result.GetSpacing(), head.GetSpacing(), atol=1e-4)
        reference = slicer.util.arrayFromVolume(head)[:count].astype(float)
        restored = slicer.util.arrayFromVolume(result)
        aligned = np.abs(restored[1:-1] - reference[1:-1]).mean()
        shifted = np.abs(restored[1:-1] - reference[2:]).mean()  # one thin slice off: what a geometry slip gives
        self.assertLess(aligned, 0.8 * shifted)
        self.delayDisplay("Interpolation test passed")

    def test_learned_method_when_present(self):
        logic = MRISuperResolutionLogic()
        spec = logic.methods()["res-srdiff"]
        if not spec.assets_present():
            self.delayDisplay("res-srdiff weights not installed: skipped")
            return
        from MRISuperResolutionLib import dependencies

        if dependencies.missing_packages():
            self.delayDisplay("PyTorch / MONAI not installed in Slicer: skipped")
            return
        _, thick = self.thickSliceVolume()
        job = logic.process(thick, method="res-srdiff", scale=(1, 1, 3), samples=2, device="cpu")
        self.assertEqual(job.state, "finished", job.error)
        self.assertIn("variance", job.outputNodes)
        self.delayDisplay("Res-SRDiff test passed")
