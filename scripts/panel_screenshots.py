"""Screenshots of the module's real panel, idle, running and done, for the README.

    .venv/bin/python scripts/panel_screenshots.py [OUT_DIR]     (default: Resources/Screenshots)

The panel is the module's own widget built by the test harness (Testing/slicer_module/
slicer_harness: Slicer's parameterNodeWrapper, the real .ui, Qt offscreen, stand-ins for the
CTK and qMRML widgets). It runs a real job on the harness's "MRHead" (the MNI152 template)
made into 3 mm slices, and grabs the panel as it is while idle, while running and when done.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "Testing" / "slicer_module"), str(ROOT / "MRISuperResolution")]

STATES = ("idle", "running", "done")


def capture(out_dir: Path, method: str = "res-srdiff", make_input=None) -> dict[str, Path]:
    """Run one job from the panel and save ``panel-<state>.png`` for each state."""
    import slicer_harness

    reason = slicer_harness.unavailable_reason()
    if reason:
        raise SystemExit(f"cannot build the panel here: {reason}")
    harness = slicer_harness.install()
    harness.reset()
    import slicer

    from slicer_harness.application import process_events_until

    slicer.app.userSettings().remove("MRISuperResolution")  # the time learned by earlier runs: start from the reference

    module = harness.load_module(ROOT / "MRISuperResolution" / "MRISuperResolution.py")
    widget = module.build_widget()
    node = make_input() if make_input else thick_head()
    widget.ui.inputSelector.setCurrentNode(node)
    widget._parameterNode.method = method
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = {state: out_dir / f"panel-{state}.png" for state in STATES}

    module.grab(shots["idle"])
    widget.ui.applyButton.click()
    process_events_until(lambda: widget.job is None or widget.job.progress[0] > 0.3, 600)
    module.grab(shots["running"])
    if not process_events_until(lambda: widget.job is None, 1800):
        raise SystemExit("the job did not end")
    module.grab(shots["done"])
    module.unload()
    return shots


def thick_head():
    """MRHead (the harness's MNI152 template) averaged into 3 mm axial slices."""
    import numpy as np
    import SampleData
    import slicer
    import vtk

    head = SampleData.downloadSample("MRHead")
    array = slicer.util.arrayFromVolume(head)
    thick = array[: array.shape[0] // 3 * 3].reshape(-1, 3, *array.shape[1:]).mean(axis=1)
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "MRHead 3 mm")
    node.CopyOrientation(head)
    spacing = list(head.GetSpacing())
    node.SetSpacing(spacing[0], spacing[1], spacing[2] * 3)
    matrix = vtk.vtkMatrix4x4()
    head.GetIJKToRASMatrix(matrix)
    k_axis = np.array(matrix.MultiplyPoint((0, 0, 1, 0))[:3])
    node.SetOrigin(*(np.array(head.GetOrigin()) + k_axis))  # the centre of the first three thin slices
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(thick))
    node.CreateDefaultDisplayNodes()
    slicer.mrmlScene.RemoveNode(head)
    return node


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "Resources" / "Screenshots"
    for path in capture(target).values():
        print(path)
