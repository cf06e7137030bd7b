"""The module's panel, built and driven as a user drives it: its real ``setup()`` on its real
``.ui``, bound by Slicer's own ``parameterNodeWrapper``, on a real MRML scene.

See ``slicer_harness`` for what is real and what stands in. Every flow asserts on the widgets
(what the user sees) and on the scene (what the user gets).
"""
from __future__ import annotations

import json
import logging
import os
import sys

import numpy as np
import pytest

import slicer_harness

REASON = slicer_harness.unavailable_reason()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

HARNESS = slicer_harness.install()
import slicer  # noqa: E402
from __feature__ import true_property  # noqa: E402, F401 - widgets read as a Slicer user's code reads them
from PySide6 import QtCore  # noqa: E402, F401 - the feature below needs PySide6 first

from conftest import REPO_ROOT, make_volume  # noqa: E402
from MRISuperResolutionLib.conversion import update_node_from_volume, volume_from_node  # noqa: E402
from slicer_harness.application import process_events_until  # noqa: E402

MODULE_FILE = REPO_ROOT / "MRISuperResolution" / "MRISuperResolution.py"
UI_FILE = REPO_ROOT / "MRISuperResolution" / "Resources" / "UI" / "MRISuperResolution.ui"
# Qt's messages that come from the test set-up (CTK's flag names are unknown outside CTK; the
# offscreen platform has no window manager); any other, e.g. a broken .ui connection, is a defect.
KNOWN_QT_MESSAGES = (
    'Designer: The value "ctkPathLineEdit::Executable|ctkPathLineEdit::Files"',
    "This plugin does not support propagateSizeHints()",
)


@pytest.fixture
def module():
    HARNESS.reset()
    loaded = HARNESS.load_module(MODULE_FILE)
    yield loaded
    if loaded.widget is not None:
        loaded.widget.cancelJob()
        loaded.unload()


@pytest.fixture
def widget(module):
    """The panel, set to interpolation (seconds per run; the learned methods have their own tests)."""
    built = module.build_widget()
    built._parameterNode.method = "interpolation"
    return built


def add_volume(name="scan", **geometry):
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    update_node_from_volume(node, make_volume(**geometry))
    node.CreateDefaultDisplayNodes()
    return node


def volume_names() -> list[str]:
    scene = slicer.mrmlScene
    nodes = [scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode") for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]
    return sorted(node.GetName() for node in nodes)


def apply_and_wait(widget, timeout=120.0) -> None:
    widget.ui.applyButton.click()
    assert widget.ui.applyButton.text == "Cancel", widget.ui.statusLabel.text
    assert widget.ui.progressBar.visible
    assert process_events_until(lambda: widget.job is None, timeout), "the job did not end"


def unexpected_qt_messages() -> list[str]:
    return [m for m in HARNESS.qt_messages if not m.startswith(KNOWN_QT_MESSAGES)]


def test_the_panel_is_bound_by_slicers_own_connectors(widget):
    """The failure users met: every parameter binds to its widget, no error, no Qt warning."""
    assert widget._parameterNodeGuiTag is not None
    assert HARNESS.dialogs == [] and unexpected_qt_messages() == []
    assert [widget.ui.methodComboBox.itemText(i) for i in range(widget.ui.methodComboBox.count)] == list(
        widget.logic.methods()
    )
    assert widget.ui.runnerComboBox.currentText == "subprocess"  # a crash cannot take Slicer down
    assert not widget.ui.progressBar.visible
    assert widget.ui.advancedCollapsibleButton.collapsed


def test_loading_a_volume_enables_apply_and_shows_what_will_be_made(widget):
    assert not widget.ui.applyButton.enabled
    assert widget.ui.applyButton.toolTip == "Select an input volume"
    node = add_volume(spacing=(0.9, 1.1, 3.0))
    process_events_until(lambda: widget.ui.applyButton.enabled, 5)
    assert widget.ui.inputSelector.currentNode() is node
    assert widget.ui.applyButton.enabled
    parameters = widget._parameterNode
    assert (parameters.targetMode, parameters.targetX, parameters.targetY, parameters.targetZ) == ("spacing", 0.9, 0.9, 0.9)
    summary = widget.ui.resolutionLabel.text
    assert "Input 20 x 18 x 12 voxels of 0.90 x 1.10 x 3.00 mm" in summary
    assert "Output 20 x 22 x 40 voxels of 0.90 x 0.90 x 0.90 mm" in summary


def test_auto_is_the_default_and_says_what_it_will_run_for_this_input(module):
    widget = module.build_widget()
    assert widget._parameterNode.method == "auto" and widget.ui.methodComboBox.currentText == "auto"
    add_volume(spacing=(1.0, 1.0, 4.0))
    assert "Method for this input: <b>res-srdiff</b>" in widget.ui.resolutionLabel.text
    assert "Expected time: about" in widget.ui.resolutionLabel.text  # from the measured rate of that method
    widget.ui.targetModeComboBox.currentIndex = widget.ui.targetModeComboBox.findText("scale")
    widget.ui.targetXSpinBox.value, widget.ui.targetYSpinBox.value, widget.ui.targetZSpinBox.value = 2.0, 2.0, 1.0
    assert "Method for this input: <b>interpolation</b>" in widget.ui.resolutionLabel.text  # a coarse in-plane matrix


def test_switching_target_mode_keeps_the_target(widget):
    add_volume(spacing=(1.0, 1.0, 4.0))
    parameters = widget._parameterNode
    before = widget.ui.resolutionLabel.text
    widget.ui.targetModeComboBox.currentIndex = widget.ui.targetModeComboBox.findText("scale")
    assert parameters.targetMode == "scale"
    assert (parameters.targetX, parameters.targetY, parameters.targetZ) == (1.0, 1.0, 4.0)
    assert widget.ui.targetLabel.text == "Scale factor:"
    assert widget.ui.resolutionLabel.text == before


def test_an_impossible_target_disables_apply_and_says_why(widget):
    add_volume(spacing=(1.0, 1.0, 4.0))
    widget.ui.targetZSpinBox.value = 6.0  # coarser than the input along every axis: nothing to super-resolve
    assert not widget.ui.applyButton.enabled
    assert "already finer than the target" in widget.ui.applyButton.toolTip
    assert "already finer than the target" in widget.ui.resolutionLabel.text


def test_apply_adds_new_nodes_shows_them_and_leaves_the_input_alone(widget):
    node = add_volume(spacing=(1.0, 1.0, 3.0))
    before = volume_from_node(node).array.copy()
    apply_and_wait(widget)
    assert widget.ui.applyButton.text == "Apply" and not widget.ui.progressBar.visible
    assert HARNESS.dialogs == [], HARNESS.dialogs
    assert volume_names() == ["scan", "scan SR", "scan SR consistency"]
    result = slicer.util.getNode("scan SR")
    assert volume_from_node(result).array.shape == (20, 18, 36)
    np.testing.assert_array_equal(volume_from_node(node).array, before)
    for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
        assert composite.GetBackgroundVolumeID() == result.GetID()
    assert widget._parameterNode.outputVolume is None  # never written back: the next Apply adds new nodes
    assert widget.ui.statusLabel.text.startswith("Done")


def test_a_second_apply_never_overwrites_an_earlier_result(widget):
    first = add_volume("patient A", spacing=(1.0, 1.0, 3.0), seed=1)
    apply_and_wait(widget)
    first_result = volume_from_node(slicer.util.getNode("patient A SR")).array.copy()
    second = add_volume("patient B", spacing=(1.0, 1.0, 3.0), seed=2)
    widget.ui.inputSelector.setCurrentNode(second)
    apply_and_wait(widget)
    widget.ui.inputSelector.setCurrentNode(first)
    apply_and_wait(widget)
    assert [name for name in volume_names() if "consistency" not in name] == ["patient A", "patient A SR", "patient A SR_1", "patient B", "patient B SR"]
    assert [name for name in volume_names() if "consistency" in name] == ["patient A SR consistency", "patient A SR consistency_1", "patient B SR consistency"]
    np.testing.assert_array_equal(volume_from_node(slicer.util.getNode("patient A SR")).array, first_result)
    assert not np.array_equal(volume_from_node(slicer.util.getNode("patient B SR")).array, first_result)


def test_an_output_the_user_chooses_is_overwritten_and_only_that(widget):
    add_volume(spacing=(1.0, 1.0, 3.0))
    apply_and_wait(widget)
    chosen = slicer.util.getNode("scan SR")
    widget.ui.outputVolumeSelector.setCurrentNode(chosen)
    widget.ui.targetZSpinBox.value = 1.5
    apply_and_wait(widget)
    assert volume_names() == ["scan", "scan SR", "scan SR consistency"]
    assert volume_from_node(chosen).array.shape == (20, 18, 24)


def test_cancel_mid_run_adds_nothing(widget):
    add_volume(shape=(128, 128, 40), spacing=(1.0, 1.0, 4.0))
    widget._parameterNode.targetX, widget._parameterNode.targetY = 0.5, 0.5
    widget.ui.applyButton.click()
    assert process_events_until(lambda: widget.job is None or widget.job.progress[0] > 0.06, 120)
    assert widget.job is not None, "the job ended before it could be cancelled"
    widget.ui.applyButton.click()  # the button reads Cancel now
    assert process_events_until(lambda: widget.job is None, 60)
    assert volume_names() == ["scan"]
    assert widget.ui.statusLabel.text == "Cancelled: nothing was added to the scene"
    assert widget.ui.applyButton.text == "Apply" and HARNESS.dialogs == []


def test_a_failing_run_shows_one_error_dialog(widget):
    volume = make_volume()
    volume.array[2, 3, 4] = np.nan
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "broken")
    update_node_from_volume(node, volume)
    apply_and_wait(widget)
    assert len(HARNESS.dialogs) == 1
    dialog = HARNESS.dialogs[0]
    assert "NaN/Inf" in dialog["text"] and "Traceback" not in dialog["text"] and "\n" not in dialog["text"]
    assert volume_names() == ["broken"]
    assert widget.ui.statusLabel.text == "Failed: nothing was added to the scene"


def test_an_internal_error_is_logged_with_its_traceback_and_shown_once(widget, caplog, monkeypatch):
    import MRISuperResolutionLib.runners as runners

    def broken(self, request, on_progress, cancel):
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(runners.SubprocessRunner, "run", broken)
    add_volume(spacing=(1.0, 1.0, 3.0))
    with caplog.at_level(logging.ERROR):
        apply_and_wait(widget)
    assert len(HARNESS.dialogs) == 1
    assert "internal error (ZeroDivisionError: a defect)" in HARNESS.dialogs[0]["text"]
    assert "Traceback" in HARNESS.dialogs[0]["detailedText"] and "Traceback" in caplog.text
    assert volume_names() == ["scan"]


def test_closing_the_scene_during_a_job_cancels_it_cleanly(widget):
    add_volume(shape=(128, 128, 40), spacing=(1.0, 1.0, 4.0))
    widget._parameterNode.targetX, widget._parameterNode.targetY = 0.5, 0.5
    widget.ui.applyButton.click()
    assert process_events_until(lambda: widget.job is None or widget.job.progress[0] > 0.06, 120)
    slicer.mrmlScene.Clear(0)
    assert widget.job is None
    process_events_until(lambda: False, 0.5)  # anything late would arrive now
    assert volume_names() == []
    assert widget.ui.applyButton.text == "Apply" and not widget.ui.applyButton.enabled
    assert widget._parameterNode is not None and HARNESS.dialogs == []


def test_leaving_and_reentering_the_module_keeps_the_parameters(module, widget):
    node = add_volume(spacing=(1.0, 1.0, 3.0))
    widget.ui.methodComboBox.currentIndex = widget.ui.methodComboBox.findText("res-srdiff")
    widget.ui.samplesSpinBox.value = 4
    widget.ui.targetZSpinBox.value = 1.5
    widget.ui.seedSpinBox.value = 7
    widget.ui.runnerComboBox.currentIndex = widget.ui.runnerComboBox.findText("in-process")
    widget.ui.deviceComboBox.currentIndex = widget.ui.deviceComboBox.findData("cpu")
    module.exit()
    module.enter()
    parameters = widget._parameterNode
    assert (parameters.method, parameters.samples, parameters.targetZ, parameters.seed, parameters.runner, parameters.device) == (
        "res-srdiff", 4, 1.5, 7, "in-process", "cpu"
    )
    assert parameters.inputVolume is node
    assert widget.ui.methodComboBox.currentText == "res-srdiff" and widget.ui.samplesSpinBox.value == 4
    assert widget.ui.deviceComboBox.currentData() == "cpu" and widget.ui.samplesSpinBox.enabled


def test_the_slice_thickness_reaches_the_job_and_its_report(widget):
    """5 mm slices every 6 mm: the field (0 = the spacing) goes to the job's command line and is
    checked like the target: beyond twice the spacing, Apply says why."""
    add_volume(spacing=(1.0, 1.0, 6.0))
    assert widget._parameterNode.sliceThickness == 0.0 and widget.ui.sliceThicknessSpinBox.text == "same as the spacing"
    widget.ui.sliceThicknessSpinBox.value = 5.0
    assert widget._parameterNode.sliceThickness == 5.0
    apply_and_wait(widget)
    assert HARNESS.dialogs == [], HARNESS.dialogs
    report = json.loads(slicer.util.getNode("scan SR").GetAttribute("MRISuperResolution.Report"))
    assert (report["slice_thickness_mm"], report["slice_thickness_source"]) == (5.0, "option")
    assert report["request"]["slice_thickness"] == 5.0  # on the subprocess's command line
    widget.ui.sliceThicknessSpinBox.value = 13.0
    assert not widget.ui.applyButton.enabled
    assert "the slice thickness must be between 1.5 and 12 mm" in widget.ui.applyButton.toolTip


def test_a_fine_tuned_model_can_be_chosen_and_runs(widget, tiny_model):
    """A model from ``mrisr finetune`` (here: one user model beside the bundled one) is offered
    for its method only, can be picked, and is the model the job loads."""
    add_volume(shape=(24, 24, 8), spacing=(1.0, 1.0, 2.0))
    widget.ui.methodComboBox.currentText = "res-srdiff"
    combo = widget.ui.modelComboBox
    assert [combo.itemText(i) for i in range(combo.count)] == ["bundled: res-srdiff", "tiny-res-srdiff (user)"]
    assert combo.enabled
    combo.currentIndex = 1
    assert widget._parameterNode.model == "tiny-res-srdiff"
    apply_and_wait(widget, timeout=300)
    assert HARNESS.dialogs == [], HARNESS.dialogs
    report = json.loads(slicer.util.getNode("scan SR").GetAttribute("MRISuperResolution.Report"))
    assert report["model"]["name"] == "tiny-res-srdiff"
    widget.ui.methodComboBox.currentText = "msp-sr"
    assert "tiny-res-srdiff (user)" not in [combo.itemText(i) for i in range(combo.count)]
    assert combo.currentIndex == 0 and widget._parameterNode.model == ""  # another method's model is not kept


def test_a_lesion_mask_adds_a_lesion_filled_volume_without_replacing_the_result(widget):
    node = add_volume(shape=(24, 24, 24), spacing=(1.0, 1.0, 1.0))
    assert not widget.ui.lesionFillComboBox.enabled
    volume = volume_from_node(node)
    mask = np.zeros(volume.grid.size, np.uint8)
    mask[9:14, 10:15, 11:13] = 1
    lesion = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "lesion")
    update_node_from_volume(lesion, volume.with_array(mask))
    widget.ui.lesionMaskSelector.setCurrentNode(lesion)
    assert widget.ui.lesionFillComboBox.enabled
    apply_and_wait(widget)
    assert "scan lesion-filled" in volume_names()
    result = slicer.util.getNode("scan SR")
    for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
        assert composite.GetBackgroundVolumeID() == result.GetID()


def test_compare_shows_the_input_at_the_results_place(widget):
    node = add_volume(spacing=(1.0, 1.0, 3.0))
    apply_and_wait(widget)
    composite = slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode")[0]
    widget.ui.compareInputCheckBox.checked = True
    assert composite.GetBackgroundVolumeID() == node.GetID() and composite.GetLinkedControl()
    widget.ui.compareInputCheckBox.checked = False
    assert composite.GetBackgroundVolumeID() == slicer.util.getNode("scan SR").GetID()


@pytest.fixture
def external_python(tmp_path):
    """Another Python (as a CUDA environment would be): records its arguments and environment."""
    wrapper = tmp_path / "other-python"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls.txt\nenv > {tmp_path}/environment.txt\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.skipif(os.name != "posix", reason="the stand-in Python is a shell script")
def test_an_external_python_starts_with_slicers_startup_environment(widget, external_python, monkeypatch):
    """Slicer's launcher sets PYTHONHOME/PYTHONPATH for its own Python; passed on, they break any
    other Python. Slicer's startup environment is the one to start it with."""
    HARNESS.app.startup_environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    HARNESS.app.startup_environment["MRISR_STARTED_BY"] = "slicer-startup-environment"
    monkeypatch.setenv("PYTHONHOME", "/nonexistent/slicer-launcher-python-home")
    add_volume(spacing=(1.0, 1.0, 3.0))
    widget.ui.pythonPathLineEdit.currentPath = str(external_python)
    apply_and_wait(widget)
    assert HARNESS.dialogs == [], HARNESS.dialogs
    assert volume_names() == ["scan", "scan SR", "scan SR consistency"]
    environment = (external_python.parent / "environment.txt").read_text()
    assert "MRISR_STARTED_BY=slicer-startup-environment" in environment and "PYTHONHOME" not in environment


@pytest.mark.skipif(os.name != "posix", reason="the stand-in Python is a shell script")
def test_detect_gpus_asks_the_python_that_will_run_the_job(widget, external_python):
    widget.ui.pythonPathLineEdit.currentPath = str(external_python)
    widget.ui.detectDevicesButton.click()
    assert "-m inference_backend devices --json" in (external_python.parent / "calls.txt").read_text()
    assert "cpu: CPU" in widget.ui.devicesLabel.text and "No GPU is visible" in widget.ui.devicesLabel.text
    choices = [widget.ui.deviceComboBox.itemData(i) for i in range(widget.ui.deviceComboBox.count)]
    assert choices == ["auto", "cpu"] and HARNESS.dialogs == []


def test_screenshots_of_the_three_states(tmp_path):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from panel_screenshots import capture

    shots = capture(tmp_path, "interpolation", lambda: add_volume(shape=(96, 96, 40), spacing=(1.0, 1.0, 4.0)))
    images = {state: QtCore.QFileInfo(str(path)).size() for state, path in shots.items()}
    assert all(size > 10_000 for size in images.values()), images
    pixels = {state: bytes(path.read_bytes()) for state, path in shots.items()}
    assert len(set(pixels.values())) == 3  # idle, running and done look different


def test_the_module_self_test_passes_in_the_harness(widget):
    """Slicer's 'Reload and Test': the self-test drives this panel end to end."""
    slicer.selfTests["MRISuperResolution"](msec=0)
    assert HARNESS.dialogs == []


def test_loading_the_module_imports_no_torch(tmp_path):
    script = f"""
import sys
sys.path[:0] = [{str(REPO_ROOT / 'Testing' / 'slicer_module')!r}, {str(REPO_ROOT / 'MRISuperResolution')!r}]
import slicer_harness
harness = slicer_harness.install()
harness.reset()
from pathlib import Path
harness.load_module(Path({str(MODULE_FILE)!r}))
print(sorted(name for name in ("torch", "monai", "scipy", "SimpleITK") if name in sys.modules))
"""
    import subprocess

    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"


# --- the panel never misleads -------------------------------------------------------------------


def test_the_model_and_the_outputs_shown_are_those_the_job_will_make(widget):
    parameters = widget._parameterNode
    add_volume(spacing=(1.0, 1.0, 4.0))
    parameters.method = "auto"
    assert widget.ui.modelComboBox.itemText(0) == "bundled: res-srdiff"  # auto runs Res-SRDiff here, with its weights
    assert not widget.ui.outputVarianceSelector.enabled  # one sample: no variance map
    assert not widget.ui.outputLesionFilledSelector.enabled  # no lesion mask: no lesion-filled volume
    parameters.samples = 4
    assert widget.ui.outputVarianceSelector.enabled
    parameters.method = "interpolation"
    assert widget.ui.modelComboBox.itemText(0) == "none needed (interpolation)" and not widget.ui.outputVarianceSelector.enabled
    parameters.method = "auto"
    parameters.targetMode, (parameters.targetX, parameters.targetY, parameters.targetZ) = "scale", (2.0, 2.0, 1.0)
    assert widget.ui.modelComboBox.itemText(0) == "none needed (interpolation)"  # a coarse in-plane matrix: zero-filling


def test_a_spacing_target_finer_than_the_input_only_where_it_is_coarse(widget):
    parameters = widget._parameterNode
    add_volume(spacing=(0.69, 0.69, 3.0))
    parameters.targetMode, (parameters.targetX, parameters.targetY, parameters.targetZ) = "spacing", (1.0, 1.0, 1.0)
    assert widget.ui.applyButton.enabled, widget.ui.applyButton.toolTip
    assert "0.69 x 0.69 x 1.00 mm" in widget.ui.resolutionLabel.text
    assert "x, y kept at 0.69, 0.69 mm: finer than the 1, 1 mm target" in widget.ui.resolutionLabel.text


def test_the_status_of_the_last_job_goes_when_the_input_changes(widget):
    apply_and_wait_for(widget, add_volume("first", spacing=(1.0, 1.0, 3.0)))
    assert widget.ui.statusLabel.text.startswith("Done")
    widget.ui.inputSelector.setCurrentNode(add_volume("second", spacing=(1.0, 1.0, 2.0)))
    assert widget.ui.statusLabel.text == ""


def test_progress_is_said_in_a_users_words(widget):
    from MRISuperResolution import stage_text

    assert stage_text("adapting to the scan") == "Adapting the model to this scan"
    assert stage_text("sample 2/4") == "Super-resolving, sample 2 of 4"
    add_volume(spacing=(1.0, 1.0, 3.0))
    widget.ui.applyButton.click()
    widget.job.progress = (0.3, "adapting to the scan", "step 76/100, loss 0.0011")
    widget.onPollJob()
    assert widget.ui.statusLabel.text.startswith("Adapting the model to this scan") and "loss" not in widget.ui.statusLabel.text
    assert process_events_until(lambda: widget.job is None, 120)


def test_the_expected_time_learns_from_this_computer(widget, tmp_path):
    from PySide6 import QtCore

    QtCore.QSettings.setPath(QtCore.QSettings.IniFormat, QtCore.QSettings.UserScope, str(tmp_path))  # not the user's settings
    slicer.app.userSettings().remove("MRISuperResolution")
    add_volume(shape=(40, 40, 12), spacing=(1.0, 1.0, 3.0))
    assert "measured on a 2-core CPU" in widget.ui.resolutionLabel.text  # the reference machine's rate, before any run
    started = __import__("time").monotonic()
    apply_and_wait(widget)
    measured = __import__("time").monotonic() - started
    text = widget.ui.resolutionLabel.text
    assert "(measured on this computer)" in text
    seconds = float(text.split("Expected time: about ")[1].split(" s")[0])
    assert abs(seconds - measured) <= 0.3 * measured + 1.0  # within 30% (the text rounds to whole seconds)


def apply_and_wait_for(widget, node) -> None:
    widget.ui.inputSelector.setCurrentNode(node)
    apply_and_wait(widget)


def test_every_text_of_the_panel_goes_through_slicers_translation(module):
    """A stand-in translator (every text bracketed) changes the panel's texts: the module's
    title, the .ui's labels and buttons, and what the Python code writes into them."""
    from PySide6 import QtCore

    class Bracketing(QtCore.QTranslator):
        def translate(self, context, text, disambiguation=None, n=-1):
            return f"[{text}]"

    translator = Bracketing()
    QtCore.QCoreApplication.installTranslator(translator)
    try:
        loaded = HARNESS.load_module(MODULE_FILE)
        assert loaded.python_module.MRISuperResolution  # the module class
        built = loaded.build_widget()
        assert built.ui.applyButton.toolTip == "[Select an input volume]"
        assert built.ui.applyButton.text.startswith("[")
        add_volume(spacing=(1.0, 1.0, 3.0))
        assert built.ui.resolutionLabel.text.startswith("[Input")
        assert built.ui.targetLabel.text == "[Voxel size (mm):]"
    finally:
        QtCore.QCoreApplication.removeTranslator(translator)
