"""MSP-SR: SR3 conditional diffusion with a ControlNet branch, trained in stages; samples give
a variance map whose calibration is the point of the staged training.

The network predicts the noise from ``concat(x_t, up-sampled LR)`` (SR3). The base UNet learns
super-resolution on natural images; a ControlNet branch (trainable encoder copy, zero-initialised
joins, base frozen) adapts it to brain MRI and, through ``mrisr finetune``, to a user's scans.
Sampling uses MONAI's DDIM scheduler with few steps (CPU-practical); ``steps`` up to the 2000
training steps gives the paper's ancestral-like sampling on a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.methods.slice_sampling import load_network, sample_slices
from inference_backend.networks import ControlBranch, ScheduledUNet
from inference_backend.slicing import SliceModel

MODEL_NAME = "msp-sr"
BASE_MODEL_NAME = "msp-sr-base"


@dataclass(frozen=True)
class SR3Schedule:
    """SR3's linear beta schedule (the MSP-SR reference: 1e-6 to 1e-2 over 2000 steps)."""

    train_steps: int = 2000
    beta_start: float = 1e-6
    beta_end: float = 1e-2

    def scheduler_arguments(self) -> dict:
        return {
            "num_train_timesteps": self.train_steps,
            "schedule": "linear_beta",
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "clip_sample": False,
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
        """DDIM from pure noise to x0 given the up-sampled LR (``predict_noise(x_t, y, t)``)."""
        from monai.networks.schedulers import DDIMScheduler

        scheduler = DDIMScheduler(**self.scheduler_arguments())
        scheduler.set_timesteps(steps)
        x = torch.randn(conditioning.shape, generator=generator, dtype=conditioning.dtype).to(conditioning.device)
        for t in scheduler.timesteps:
            timestep = torch.full((x.shape[0],), int(t), device=x.device)
            with torch.no_grad():
                noise = predict_noise(x, conditioning, timestep)
            x, _ = scheduler.step(noise, int(t), x, eta=eta, generator=generator)
        return x


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
        return self.unet(torch.cat([x_t, y], dim=1), t.float(), self.control)

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
