"""SRMRI: unsupervised, blind SR with a score-based prior of HR slices, DPS and wavelet fusion.

The prior never sees an LR image, so one model serves every scale factor; the forward
operator H used for data consistency is an option (bicubic by default, as in the paper).
"""
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
from inference_backend.score_sde import SRMRISampler, VESchedule
from inference_backend.slicing import SliceBatch, SlicePlan, run_slices
from inference_backend.volume import Volume

MODEL_NAME = "srmri"
OPERATORS = {"bicubic": "bicubic", "linear": "bilinear", "box": "area"}  # H: anti-aliased torch resizing
NOISE_EMBEDDING_SCALE = 100.0  # log(sigma) spans about [-5, 4]: spread it over the sinusoidal embedding's range


class ScoreNet(nn.Module):
    """s(x, sigma) = UNet(x, log sigma) / sigma, the output scaling of NCSN++."""

    def __init__(self, schedule: VESchedule, unet: dict) -> None:
        super().__init__()
        self.schedule = schedule
        self.unet = CompactUNet(**unet)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        output = self.unet(x, NOISE_EMBEDDING_SCALE * torch.log(sigma))
        return output / sigma.view(-1, *([1] * (x.ndim - 1)))

    def checkpoint(self) -> dict:
        return {"schedule": asdict(self.schedule), "unet": self.unet.config, "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "ScoreNet":
        net = cls(VESchedule(**checkpoint["schedule"]), checkpoint["unet"])
        net.load_state_dict(checkpoint["state_dict"])
        return net.eval()


def downsampling_operator(name: str, size: tuple[int, int]):
    """H: HR slice batch (cropped to the true slice size) -> the LR slice size."""
    mode = OPERATORS[name]

    def operator(x: torch.Tensor) -> torch.Tensor:
        antialias = mode in ("bicubic", "bilinear")
        return nn.functional.interpolate(x, size=size, mode=mode, antialias=antialias) if antialias else nn.functional.interpolate(x, size=size, mode=mode)

    return operator


def run(request: MethodRequest) -> MethodResult:
    options = request.options
    checkpoint, card = load_checkpoint(options["model"], "cpu")
    net = ScoreNet.from_checkpoint(checkpoint).to(request.device)
    sampler = SRMRISampler(
        net.schedule,
        steps=options["steps"],
        k=options["k"],
        rho=options["rho"],
        snr=options["snr"],
        fusion=options["fusion"],
        start_sigma=None if options["start_sigma"] <= 0 else options["start_sigma"],
    )
    progress = request.progress
    with progress.stage("B-spline conditioning", 0.0, 0.05):
        normalizer = IntensityNormalizer.fit(request.volume.array)
        upsampled = normalizer.forward(resample(request.volume, request.target, "bspline", progress).array)
        measurement = normalizer.forward(request.volume.array)
    plan = SlicePlan.between(request.volume.grid, request.target)
    statistics = SampleStatistics(request.keep_samples)
    for sample in range(request.samples):
        generator = torch.Generator().manual_seed(request.seed * 1000 + sample)

        def restore(batch: SliceBatch) -> torch.Tensor:
            assert batch.measured is not None
            operator = downsampling_operator(options["operator"], tuple(batch.measured.shape[-2:]))
            height, width = batch.size
            return sampler.sample(net, batch.images, batch.measured, lambda x: operator(x[..., :height, :width]), generator)

        span = (0.05 + 0.95 * sample / request.samples, 0.05 + 0.95 * (sample + 1) / request.samples)
        with progress.stage(f"sample {sample + 1}/{request.samples}", *span):
            statistics.add(run_slices(upsampled, plan, restore, options["batch_size"], progress, request.device, measurement=measurement))
    return MethodResult(
        volume=Volume(normalizer.inverse(statistics.mean), request.target),
        variance=None if statistics.variance is None else Volume(normalizer.inverse_variance(statistics.variance), request.target),
        model=ModelInfo(options["model"], card["sha256"], card),
        samples=None if statistics.samples is None else normalizer.inverse(statistics.samples),
    )

