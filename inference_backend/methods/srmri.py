"""SRMRI: unsupervised, blind SR with a score-based prior of HR slices, DPS and wavelet fusion.

The prior never sees an LR image, so one model serves every scale factor; the forward
operator H used for data consistency is an option (bicubic by default, as in the paper).
"""
from __future__ import annotations

import torch
from torch import nn

from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.methods.slice_sampling import load_network, sample_slices
from inference_backend.networks import ScheduledUNet
from inference_backend.score_sde import SRMRISampler, VESchedule
from inference_backend.slicing import SliceBatch, SliceModel

MODEL_NAME = "srmri"
OPERATORS = {"bicubic": "bicubic", "linear": "bilinear", "box": "area"}  # H: anti-aliased torch resizing
NOISE_EMBEDDING_SCALE = 100.0  # log(sigma) spans about [-5, 4]: spread it over the sinusoidal embedding's range


class ScoreNet(ScheduledUNet):
    """s(x, sigma) = UNet(x, log sigma) / sigma, the output scaling of NCSN++."""

    schedule_class = VESchedule

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        output = self.unet(x, NOISE_EMBEDDING_SCALE * torch.log(sigma))
        return output / sigma.view(-1, *([1] * (x.ndim - 1)))


def downsampling_operator(name: str, size: tuple[int, int]):
    """H: HR slice batch (cropped to the true slice size) -> the LR slice size."""
    mode = OPERATORS[name]

    def operator(x: torch.Tensor) -> torch.Tensor:
        antialias = mode in ("bicubic", "bilinear")
        return nn.functional.interpolate(x, size=size, mode=mode, antialias=antialias) if antialias else nn.functional.interpolate(x, size=size, mode=mode)

    return operator


def run(request: MethodRequest) -> MethodResult:
    options = request.options
    net, model = load_network(request, ScoreNet)
    sampler = SRMRISampler(
        net.schedule,
        steps=options["steps"],
        k=options["k"],
        rho=options["rho"],
        snr=options["snr"],
        fusion=options["fusion"],
        start_sigma=None if options["start_sigma"] <= 0 else options["start_sigma"],
    )

    def slice_model_for(generator: torch.Generator) -> SliceModel:
        def restore(batch: SliceBatch) -> torch.Tensor:
            assert batch.measured is not None
            operator = downsampling_operator(options["operator"], tuple(batch.measured.shape[-2:]))
            height, width = batch.size
            return sampler.sample(net, batch.images, batch.measured, lambda x: operator(x[..., :height, :width]), generator)

        return restore

    return sample_slices(request, slice_model_for, model, with_measurement=True)
