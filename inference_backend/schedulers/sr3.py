"""SR3's linear-beta DDPM schedule (MSP-SR), through MONAI's schedulers; sampled with DDIM.

The diffusion runs on the residual between the HR image and the up-sampled scan, so the clip
that SR3 applies to x0 applies to that residual here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from inference_backend.schedulers.base import Schedule, Scheduler

RESIDUAL_LIMIT = 2.0  # |HR - up-sampled LR| in normalised units (the range is [-1, 1] for tissue)


@dataclass(frozen=True)
class SR3Schedule(Schedule):
    """SR3's linear beta schedule (the MSP-SR reference: 1e-6 to 1e-2 over 2000 steps)."""

    train_steps: int = 2000
    beta_start: float = 1e-6
    beta_end: float = 1e-2

    def scheduler_arguments(self) -> dict:
        """MONAI scheduler settings; the predicted residual is clipped to +-RESIDUAL_LIMIT (as SR3 clips x0)."""
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
        from_mean: bool = False,
    ) -> torch.Tensor:
        """DDIM from pure noise to the residual, given the up-sampled LR ``conditioning``
        (``predict_noise(x_t, y, t)``); returns the HR estimate ``conditioning + residual``.
        ``from_mean`` starts from the prior's mean (zero) instead of a draw: with ``eta`` 0 the
        path is deterministic, one estimate without a sample's invented texture."""
        scheduler = SR3Scheduler(self, eta)
        scheduler.set_timesteps(steps)
        x = torch.randn(conditioning.shape, generator=generator, dtype=conditioning.dtype).to(conditioning.device)
        if from_mean:
            x = torch.zeros_like(x)
        for t in scheduler.timesteps:
            timestep = torch.full((x.shape[0],), int(t), device=x.device)
            with torch.no_grad():
                noise = predict_noise(x, conditioning, timestep)
            x = scheduler.step(noise, int(t), x, generator)
        return conditioning + x


class SR3Scheduler(Scheduler):
    """DDIM over the SR3 schedule: MONAI's scheduler, stepping with DDIM's ``eta``."""

    def __init__(self, schedule: SR3Schedule, eta: float = 0.0) -> None:
        from monai.networks.schedulers import DDIMScheduler

        self.ddim, self.eta = DDIMScheduler(**schedule.scheduler_arguments()), eta

    @property
    def timesteps(self):
        return self.ddim.timesteps

    def set_timesteps(self, num_inference_steps: int) -> None:
        self.ddim.set_timesteps(num_inference_steps)

    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.eta > 0 and generator is not None and generator.device != sample.device:
            # MONAI draws a stochastic step's noise on the sample's device, with the generator:
            # the samplers' generators are the CPU's (a seed draws the same noise on every
            # device), so a GPU sample takes this elementwise step on the CPU
            previous = self.ddim.step(model_output.cpu(), timestep, sample.cpu(), eta=self.eta, generator=generator)[0]
            return previous.to(sample.device)
        return self.ddim.step(model_output, timestep, sample, eta=self.eta, generator=generator)[0]

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        return self.ddim.add_noise(original, noise, timesteps)


@functools.cache
def alphas_cumprod(schedule: SR3Schedule) -> torch.Tensor:
    return schedule.alphas_cumprod().float()
