"""MSP-SR: SR3 conditional diffusion with a ControlNet branch, trained in stages; samples give
a variance map whose calibration is the point of the staged training.

The network predicts the noise from ``concat(x_t, up-sampled LR)`` (SR3). As in SRDiff, the
diffusion runs on the residual between the HR image and the up-sampled LR image (small and
sparse, so a CPU-sized network learns it in minutes rather than days); the estimate is the
up-sampled image plus the sampled residual. The noise prediction is preconditioned: it is the
optimal linear estimate for a Gaussian residual of standard deviation ``RESIDUAL_STD`` plus the
UNet's correction (whose zero-initialised head makes an untrained model exactly that linear
estimate), and the UNet sees x_t scaled to unit variance. The base UNet learns
super-resolution on natural images; a ControlNet branch (trainable encoder copy, zero-initialised
joins, base frozen) adapts it to brain MRI and, through ``mrisr finetune``, to a user's scans.
Sampling uses MONAI's DDIM scheduler with few steps (CPU-practical); ``steps`` up to the 2000
training steps gives the paper's ancestral-like sampling on a GPU.
"""
from __future__ import annotations

import torch

from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.methods.slice_sampling import load_network, sample_slices
from inference_backend.methods.slicing import SliceModel
from inference_backend.networks.unet import ControlBranch, ScheduledUNet
from inference_backend.schedulers.sr3 import SR3Schedule, alphas_cumprod

RESIDUAL_STD = 0.03  # prior std of HR - up-sampled LR: below its mean (0.06-0.09, concentrated at edges), so that
# an untrained model samples close to the up-sampled image and training widens the spread where it must


class MSPSRNet(ScheduledUNet):
    """SR3 noise predictor; with ``control=True`` a ControlNet branch adapts the (frozen) base."""

    schedule_class = SR3Schedule

    def __init__(self, schedule: SR3Schedule, unet: dict, control: bool = False) -> None:
        super().__init__(schedule, unet)
        self.control = ControlBranch(self.unet) if control else None

    def add_control(self) -> None:
        """Start the ControlNet stage: copy the encoder, freeze the base."""
        self.control = ControlBranch(self.unet)
        self.unet.requires_grad_(False)

    def forward(self, x_t: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = alphas_cumprod(self.schedule).to(x_t.device)[t].view(-1, 1, 1, 1)
        variance = a * RESIDUAL_STD**2 + (1 - a)  # of x_t, for a residual of std RESIDUAL_STD
        linear_estimate = (1 - a).sqrt() / variance * x_t  # E[eps | x_t] for a Gaussian residual
        return linear_estimate + self.unet(torch.cat([x_t / variance.sqrt(), y], dim=1), t.float(), self.control)

    def checkpoint(self) -> dict:
        return {**super().checkpoint(), "control": self.control is not None}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> MSPSRNet:
        net = cls(SR3Schedule.from_config(checkpoint["schedule"]), checkpoint["unet"], checkpoint.get("control", False))
        net.load_state_dict(checkpoint["state_dict"])
        return net.eval()


def run(request: MethodRequest) -> MethodResult:
    options = request.options
    net, model = load_network(request, MSPSRNet)

    from_mean = sampler_for(options.sampler, request.samples) == "mean"

    def slice_model_for(generator: torch.Generator) -> SliceModel:
        eta = 0.0 if from_mean else options.eta
        return lambda batch: net.schedule.sample(net, batch.images, options.steps, eta, generator, from_mean)

    result = sample_slices(request, slice_model_for, model, net)
    result.resolved["sampler"] = "mean" if from_mean else "stochastic"
    return result


def sampler_for(choice: str, samples: int) -> str:
    """``auto``: one sample is the deterministic DDIM path from the prior's mean (no invented
    texture: chosen on a training scan's slab, docs/methods/msp-sr.md); several are draws (the
    variance map)."""
    if choice == "auto":
        return "mean" if samples == 1 else "stochastic"
    return choice
