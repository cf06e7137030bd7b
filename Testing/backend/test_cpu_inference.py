"""The CPU inference engine (ONNX Runtime, checked against PyTorch) and the CPU threads a job uses."""
from __future__ import annotations

import pytest
import torch

from inference_backend.devices import available_cores, configure_cpu_threads
from inference_backend.networks import engine
from inference_backend.networks.engine import OnnxRuntimeUNet, inference_engine
from inference_backend.networks.unet import ControlBranch, ScheduledUNet
from inference_backend.schedulers.residual_shift import ResidualShiftSchedule

pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def graph_cache(tmp_path, monkeypatch):
    """Each test exports into, and reads from, a cache folder of its own."""
    monkeypatch.setenv("MRISR_CACHE_DIR", str(tmp_path / "cache"))
    engine._graph.cache_clear()
    yield tmp_path / "cache"
    engine._graph.cache_clear()


class TinyNet(ScheduledUNet):
    schedule_class = ResidualShiftSchedule

    def __init__(self, control: bool = False) -> None:
        super().__init__(ResidualShiftSchedule(), {"in_channels": 2, "channels": (8, 16)})
        torch.manual_seed(0)
        for parameter in self.unet.parameters():  # not the zero-initialised output of a fresh UNet
            torch.nn.init.normal_(parameter, std=0.2)
        self.control = ControlBranch(self.unet) if control else None

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, self.control)


@pytest.mark.parametrize("control", [False, True])
def test_onnx_runtime_gives_pytorch_outputs_and_the_report_says_by_how_much(control):
    net = TinyNet(control).eval()
    x, t = torch.randn(3, 2, 32, 48), torch.tensor([0.0, 1.0, 3.0])
    with torch.no_grad():
        expected = net(x, t)
    with inference_engine(net, "auto", "cpu") as record, torch.no_grad():
        assert isinstance(net.unet, OnnxRuntimeUNet)
        actual = net(x, t)
    assert record["engine"].startswith("onnxruntime") and record["max_abs_difference"] < 1e-4
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
    assert not isinstance(net.unet, OnnxRuntimeUNet)  # PyTorch again after the block


def test_each_session_uses_the_weights_the_network_has_now():
    """A scan-adapted network (same architecture, new weights) is not run with the old ones."""
    net = TinyNet().eval()
    x, t = torch.randn(2, 2, 32, 32), torch.tensor([1.0, 2.0])
    with inference_engine(net, "auto", "cpu"), torch.no_grad():
        before = net(x, t)
    with torch.no_grad():
        for parameter in net.unet.parameters():
            parameter.mul_(0.5)
        expected = net(x, t)
    with inference_engine(net, "auto", "cpu"), torch.no_grad():
        after = net(x, t)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, atol=1e-4, rtol=1e-4)


def test_the_graph_is_exported_once_and_a_damaged_cached_one_falls_back_to_pytorch(graph_cache):
    net = TinyNet().eval()
    with inference_engine(net, "auto", "cpu") as record:
        assert record["engine"].startswith("onnxruntime")
    (cached,) = graph_cache.glob("*.onnx")
    engine._graph.cache_clear()  # a new process: the graph comes from the cache folder
    with inference_engine(net, "auto", "cpu") as record:
        assert record["engine"].startswith("onnxruntime")
    cached.write_bytes(b"not a graph")
    engine._graph.cache_clear()
    with inference_engine(net, "auto", "cpu") as record, torch.no_grad():
        assert not isinstance(net.unet, OnnxRuntimeUNet)
        net(torch.randn(1, 2, 32, 32), torch.tensor([1.0]))  # the job goes on, in PyTorch
    assert record["engine"] == "pytorch" and record["reason"].startswith("ONNX Runtime failed")


def test_gradients_go_through_pytorch():
    net = TinyNet().eval()
    x = torch.randn(1, 2, 32, 32, requires_grad=True)
    with inference_engine(net, "auto", "cpu"):
        net(x, torch.tensor([1.0])).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_a_session_that_disagrees_with_pytorch_is_not_used(monkeypatch):
    monkeypatch.setattr(engine, "agreement", lambda module, session: 0.5)
    net = TinyNet().eval()
    with inference_engine(net, "auto", "cpu") as record:
        assert not isinstance(net.unet, OnnxRuntimeUNet)
    assert record["engine"] == "pytorch" and "differed from PyTorch by 0.5" in record["reason"]


def test_pytorch_when_asked_for_or_off_the_cpu_or_without_onnx_runtime(monkeypatch):
    assert engine.engine_for("pytorch", "cpu") == ("pytorch", "asked for")
    assert engine.engine_for("auto", "cuda:0")[0] == "pytorch"
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    assert engine.engine_for("auto", "cpu") == ("pytorch", "onnxruntime or onnx is not installed")


def test_threads_follow_the_cores_to_use_unless_the_user_says(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setenv("MRISR_THREADS", "1")
        assert configure_cpu_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("MRISR_THREADS")
        assert configure_cpu_threads() == available_cores() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
