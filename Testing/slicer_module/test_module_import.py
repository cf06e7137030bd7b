"""Import the thin module file with stand-ins for Slicer's Qt layer, and drive its Logic class on a
real MRML scene: catches errors in MRISuperResolution.py that only a Slicer build would show."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' package here is not Kitware's slicer-core", allow_module_level=True)

from conftest import make_volume  # noqa: E402
from MRISuperResolutionLib.conversion import update_node_from_volume, volume_from_node  # noqa: E402


class _ScriptedLoadableModuleLogic:
    def __init__(self, parent=None) -> None:
        self.parameterNode = slicer.vtkMRMLScriptedModuleNode()

    def getParameterNode(self):  # noqa: N802
        return self.parameterNode


@pytest.fixture
def module(monkeypatch):
    scene = slicer.vtkMRMLScene()
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    scripted.ScriptedLoadableModule = type("ScriptedLoadableModule", (), {"__init__": lambda self, parent: None})
    scripted.ScriptedLoadableModuleWidget = type("ScriptedLoadableModuleWidget", (), {"__init__": lambda self, parent=None: None})
    scripted.ScriptedLoadableModuleTest = type("ScriptedLoadableModuleTest", (), {})
    scripted.ScriptedLoadableModuleLogic = _ScriptedLoadableModuleLogic
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda cls: (lambda node: types.SimpleNamespace(node=node, cls=cls))
    for name, stand_in in {"slicer.ScriptedLoadableModule": scripted, "slicer.parameterNodeWrapper": wrapper, "qt": types.ModuleType("qt")}.items():
        monkeypatch.setitem(sys.modules, name, stand_in)
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    monkeypatch.delitem(sys.modules, "MRISuperResolution", raising=False)
    import MRISuperResolution

    return MRISuperResolution, scene


def test_module_logic_runs_on_the_scene(module):
    MRISuperResolution, scene = module
    logic = MRISuperResolution.MRISuperResolutionLogic()
    assert logic.scene is scene
    wrapped = logic.getParameterNode()
    assert wrapped.cls.__name__ == "MRISuperResolutionParameterNode" and wrapped.node.IsA("vtkMRMLScriptedModuleNode")
    volume = make_volume(spacing=(1.0, 1.0, 2.0))
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "head")
    update_node_from_volume(node, volume)
    job = logic.process(node, method="interpolation", scale=(1, 1, 2))
    assert job.state == "finished", job.error
    assert job.outputNodes["sr"].GetName() == "head SR"
    assert volume_from_node(job.outputNodes["sr"]).array.shape == (20, 18, 24)
    np.testing.assert_array_equal(volume_from_node(node).array, volume.array)


def test_output_node_cannot_be_the_input(module):
    from inference_backend.errors import InputError

    MRISuperResolution, scene = module
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "head")
    update_node_from_volume(node, make_volume())
    with pytest.raises(InputError, match="never modified"):
        MRISuperResolution.MRISuperResolutionLogic().process(node, scale=(1, 1, 2), outputNodes={"sr": node})
