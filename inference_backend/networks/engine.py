"""A CPU inference engine for the frozen slice networks: ONNX Runtime where it is installed.

On a CPU, ONNX Runtime runs the CompactUNet about a third faster than eager PyTorch at the
same outputs (benchmarks/results/speed). The graph is exported once per network architecture
and process; each job's weights (a scan-adapted Res-SRDiff has its own) are written into its
initialisers before the session is made, and every session is checked against PyTorch on a probe batch before
it is used: the largest absolute difference goes into the report, and a session that
disagrees is not used. Calls that need gradients (SRMRI's DPS step) and other devices stay
in PyTorch, which is also the fallback wherever ONNX Runtime is missing.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inference_backend.networks.unet import CompactUNet, ControlBranch, ScheduledUNet

AGREEMENT_TOLERANCE = 1e-3  # largest |ONNX Runtime - PyTorch| on the probe batch (outputs are ~1)
PROBE_SIZE = 48  # probe slices of 48 x 48 voxels: a multiple of the network's stride


class _WithControl(nn.Module):
    """The UNet with its ControlNet branch, as one module of (x, t) to export."""

    def __init__(self, unet: CompactUNet, control: ControlBranch | None) -> None:
        super().__init__()
        self.unet, self.control = unet, control

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, self.control)


class OnnxRuntimeUNet(nn.Module):
    """Stands in for a CompactUNet in inference calls; calls that need gradients go to PyTorch."""

    def __init__(self, session: Any, unet: CompactUNet, control: ControlBranch | None) -> None:
        super().__init__()
        self.session, self.pytorch, self.control = session, unet, control
        self.config, self.channels = unet.config, unet.channels

    def forward(self, x: torch.Tensor, t: torch.Tensor, control: ControlBranch | None = None) -> torch.Tensor:
        if control is not self.control:
            raise ValueError("this session was built for another ControlNet branch")
        if torch.is_grad_enabled() and x.requires_grad:
            return self.pytorch(x, t, control)
        inputs = {"x": x.detach().float().cpu().numpy(), "t": t.detach().float().reshape(-1).expand(x.shape[0]).cpu().numpy()}
        return torch.from_numpy(self.session.run(None, inputs)[0]).to(x.device, x.dtype)


@functools.cache
def _graph(config: str, control: bool) -> bytes:
    """The ONNX graph of a UNet architecture (every parameter an initialiser of its own name),
    from the cache folder when this torch version exported it before (it takes a second or two)."""
    import onnx

    key = hashlib.sha256(f"{config}|{control}|{torch.__version__}|{onnx.__version__}".encode()).hexdigest()[:24]
    cached = cache_dir() / f"compact-unet-{key}.onnx"
    if cached.is_file():
        return cached.read_bytes()
    graph = _export(config, control)
    try:  # a cache, not a requirement: a read-only home only costs the export next time
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(graph)
        partial.replace(cached)
    except OSError:
        pass
    return graph


def cache_dir() -> Path:
    """``MRISR_CACHE_DIR``, else the platform's user cache folder (``~/.cache/mrisr`` on Linux)."""
    if os.environ.get("MRISR_CACHE_DIR"):
        return Path(os.environ["MRISR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or (
        Path(os.environ.get("LOCALAPPDATA", Path.home())) if sys.platform == "win32" else Path.home() / ".cache"
    )
    return Path(base) / "mrisr"


def _export(config: str, control: bool) -> bytes:
    settings = json.loads(config)
    unet = CompactUNet(**settings)
    module = _WithControl(unet, ControlBranch(unet) if control else None).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # distinct values: the exporter merges parameters that are equal (zeros, ones)
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    probe = (torch.zeros(1, settings["in_channels"], PROBE_SIZE, PROBE_SIZE), torch.zeros(1))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own future
        torch.onnx.export(
            module,
            probe,
            buffer,
            input_names=["x", "t"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}, "t": {0: "batch"}, "y": {0: "batch", 2: "height", 3: "width"}},
            do_constant_folding=False,  # keep every parameter as the initialiser of its own name
            dynamo=False,
        )
    return buffer.getvalue()


def _session(module: _WithControl) -> Any:
    """A session of the architecture's graph with ``module``'s weights written into it."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    model = onnx.load_from_string(_graph(json.dumps(module.unet.config, sort_keys=True), module.control is not None))
    weights = module.state_dict()
    for index, initializer in enumerate(model.graph.initializer):
        if initializer.name in weights:
            array = weights[initializer.name].detach().cpu().numpy().astype(initializer_dtype(initializer))
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, initializer.name))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def initializer_dtype(initializer: Any) -> np.dtype:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(initializer.data_type))


def agreement(module: _WithControl, session: Any) -> float:
    """The largest absolute difference between the session and PyTorch on a seeded probe batch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, module.unet.config["in_channels"], PROBE_SIZE, PROBE_SIZE, generator=generator)
    t = torch.tensor([0.0, 1.0])
    with torch.no_grad():
        expected = module(x, t).numpy()
    actual = session.run(None, {"x": x.numpy(), "t": t.numpy()})[0]
    return float(np.abs(actual - expected).max())


def engine_for(choice: str, device: str) -> tuple[str, str]:
    """(engine, reason): ``auto`` is ONNX Runtime on a CPU where it is installed, else PyTorch."""
    if choice == "pytorch":
        return "pytorch", "asked for"
    if not device.startswith("cpu"):
        return "pytorch", f"ONNX Runtime is used on the CPU only (device {device})"
    try:
        import onnx  # noqa: F401  (the exporter writes through it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return "pytorch", "onnxruntime or onnx is not installed"
    return "onnxruntime", "asked for" if choice == "onnxruntime" else "CPU"


@contextmanager
def inference_engine(net: ScheduledUNet, choice: str, device: str) -> Iterator[dict[str, Any]]:
    """Within the block ``net.unet`` runs on the engine ``choice`` resolves to (its weights as
    they are now); yields what ran, for the report: engine, reason, and the agreement with PyTorch."""
    engine, reason = engine_for(choice, device)
    record: dict[str, Any] = {"engine": engine, "reason": reason}
    if engine == "pytorch":
        yield record
        return
    import onnxruntime

    module = _WithControl(net.unet, getattr(net, "control", None)).eval()
    try:
        session = _session(module)
        difference = agreement(module, session)
    except Exception as error:  # noqa: BLE001 - any failure of the engine (a damaged cached graph, a runtime error): PyTorch runs
        record |= {"engine": "pytorch", "reason": f"ONNX Runtime failed ({type(error).__name__}: {error})"[:300]}
        yield record
        return
    record |= {"engine": f"onnxruntime {onnxruntime.__version__}", "max_abs_difference": float(f"{difference:.3g}")}
    if not difference <= AGREEMENT_TOLERANCE:
        record |= {"engine": "pytorch", "reason": f"ONNX Runtime differed from PyTorch by {difference:.3g} on the probe batch"}
        yield record
        return
    original = net.unet
    net.unet = OnnxRuntimeUNet(session, original, module.control)
    try:
        yield record
    finally:
        net.unet = original
