"""Res-SRDiff: 4-step residual-shifting diffusion, slice by slice, with a variance map."""
from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from inference_backend.assets import load_checkpoint
from inference_backend.methods.base import MethodRequest, MethodResult, ModelInfo
from inference_backend.methods.sample_statistics import SampleStatistics
from inference_backend.networks import CompactUNet
from inference_backend.normalization import IntensityNormalizer
from inference_backend.resampling import resample
from inference_backend.residual_shift import ResidualShiftSchedule
from inference_backend.slicing import SliceBatch, SlicePlan, run_slices
from inference_backend.volume import Volume

MODEL_NAME = "res-srdiff"
X0_RANGE = (-1.5, 2.5)  # normalised intensities: background -1, bright tissue ~1; clamp only outliers


class ResSRDiffNet(nn.Module):
    """x0 prediction from the scaled noisy image and the up-sampled LR image (residual on y)."""

    def __init__(self, schedule: ResidualShiftSchedule, unet: dict) -> None:
        super().__init__()
        self.schedule = schedule
        self.unet = CompactUNet(**unet)

    def forward(self, x_t: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        scaled = x_t * self.schedule.input_scale(index, x_t)
        return y + self.unet(torch.cat([scaled, y], dim=1), index)

    def predict_x0(self, x_t: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self(x_t, y, index).clamp(*X0_RANGE)

    def checkpoint(self) -> dict:
        return {"schedule": asdict(self.schedule), "unet": self.unet.config, "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "ResSRDiffNet":
        net = cls(ResidualShiftSchedule(**checkpoint["schedule"]), checkpoint["unet"])
        net.load_state_dict(checkpoint["state_dict"])
        return net.eval()


def run(request: MethodRequest) -> MethodResult:
    checkpoint, card = load_checkpoint(request.options["model"], "cpu")
    net = ResSRDiffNet.from_checkpoint(checkpoint).to(request.device)
    progress = request.progress
    with progress.stage("B-spline conditioning", 0.0, 0.05):
        normalizer = IntensityNormalizer.fit(request.volume.array)
        conditioning = normalizer.forward(resample(request.volume, request.target, "bspline", progress).array)
    plan = SlicePlan.between(request.volume.grid, request.target)
    statistics = SampleStatistics(request.keep_samples)
    for sample in range(request.samples):
        generator = torch.Generator().manual_seed(request.seed * 1000 + sample)

        def restore(batch: SliceBatch) -> torch.Tensor:
            return net.schedule.sample(net.predict_x0, batch.images, generator)

        span = (0.05 + 0.95 * sample / request.samples, 0.05 + 0.95 * (sample + 1) / request.samples)
        with progress.stage(f"sample {sample + 1}/{request.samples}", *span):
            statistics.add(run_slices(conditioning, plan, restore, request.options["batch_size"], progress, request.device))
    return MethodResult(
        volume=Volume(normalizer.inverse(statistics.mean), request.target),
        variance=None if statistics.variance is None else Volume(normalizer.inverse_variance(statistics.variance), request.target),
        model=ModelInfo(request.options["model"], card["sha256"], card),
        samples=None if statistics.samples is None else normalizer.inverse(statistics.samples),
    )
