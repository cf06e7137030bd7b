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

import functools
from dataclasses import dataclass

import torch

from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.methods.slice_sampling import load_network, sample_slices
from inference_backend.networks import ControlBranch, ScheduledUNet
from inference_backend.slicing import SliceModel

MODEL_NAME = "msp-sr"
BASE_MODEL_NAME = "msp-sr-base"
RESIDUAL_LIMIT = 2.0  # |HR - up-sampled LR| in normalised units (the range is [-1, 1] for tissue)
RESIDUAL_STD = 0.03  # prior std of HR - up-sampled LR: below its mean (0.06-0.09, concentrated at edges), so that
# an untrained model samples close to the up-sampled image and training widens the spread where it must


@dataclass(frozen=True)
class SR3Schedule:
    """SR3's linear beta schedule (the MSP-SR reference: 1e-6 to 1e-2 over 2000 steps)."""

    train_steps: int = 2000
    beta_start: float = 1e-6
    beta_end: float = 1e-2

    def scheduler_arguments(self) -> dict:
        """MONAI scheduler settings; the predicted residual is clipped to [-1, 1] (as SR3 clips x0)."""
        return {
            "num_train_timesteps": self.train_steps,
            "schedule": "linear_beta",
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "clip_sample": True,
            "clip_sample_min": -RESIDUAL_LIMIT,
            "clip_sample_max": RESIDUAL_LIMIT,
        }

    def alphas_cumprod(self) -> torch.Tensor:
        from monai.networks.schedulers import DDPMScheduler

        return DDPMScheduler(**self.scheduler_arguments()).alphas_cumprod

    def sample(
        self,
        predict_noise,
        conditioning: torch.Tensor,
        steps: int,
        eta: float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """DDIM from pure noise to the residual, given the up-sampled LR ``conditioning``
        (``predict_noise(x_t, y, t)``); returns the HR estimate ``conditioning + residual``."""
        from monai.networks.schedulers import DDIMScheduler

        scheduler = DDIMScheduler(**self.scheduler_arguments())
        scheduler.set_timesteps(steps)
        x = torch.randn(conditioning.shape, generator=generator, dtype=conditioning.dtype).to(conditioning.device)
        for t in scheduler.timesteps:
            timestep = torch.full((x.shape[0],), int(t), device=x.device)
            with torch.no_grad():
                noise = predict_noise(x, conditioning, timestep)
            x, _ = scheduler.step(noise, int(t), x, eta=eta, generator=generator)
        return conditioning + x


@functools.cache
def alphas_cumprod(schedule: SR3Schedule) -> torch.Tensor:
    return schedule.alphas_cumprod().float()


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
    def from_checkpoint(cls, checkpoint: dict) -> "MSPSRNet":
        net = cls(SR3Schedule(**checkpoint["schedule"]), checkpoint["unet"], checkpoint.get("control", False))
        net.load_state_dict(checkpoint["state_dict"])
        return net.eval()


def run(request: MethodRequest) -> MethodResult:
    options = request.options
    net, model = load_network(request, MSPSRNet)

    def slice_model_for(generator: torch.Generator) -> SliceModel:
        return lambda batch: net.schedule.sample(net, batch.images, options["steps"], options["eta"], generator)

    return sample_slices(request, slice_model_for, model)
