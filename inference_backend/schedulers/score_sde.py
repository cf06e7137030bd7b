"""SRMRI's prior: a variance-exploding SDE (Song et al., 2021).

p_sigma(x) = p_data * N(0, sigma^2 I), sigma from sigma_max down to sigma_min geometrically; a
network learns the score s(x, sigma) = grad log p_sigma(x) by denoising score matching,
``E || sigma s(x + sigma z, sigma) + z ||^2``. The posterior sampler that uses it is SRMRI's
(:mod:`inference_backend.methods.srmri.sampler`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from inference_backend.schedulers.base import Schedule, Scheduler

ScoreFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, sigma per item) -> score


@dataclass(frozen=True)
class VESchedule(Schedule):
    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def sigmas(self, count: int, start: float | None = None) -> np.ndarray:
        """``count`` noise levels from ``start`` (default sigma_max) down to sigma_min."""
        top = self.sigma_max if start is None else min(start, self.sigma_max)
        return np.geomspace(top, self.sigma_min, count)

    def sample_sigma(self, shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Log-uniform noise levels for training."""
        u = torch.rand(shape, generator=generator)
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** u


class VEScheduler(Scheduler):
    """The reverse diffusion (predictor) over ``count`` noise scales from ``start_sigma`` (default
    sigma_max) down to sigma_min; the timesteps index the scales."""

    def __init__(self, schedule: VESchedule, start_sigma: float | None = None) -> None:
        self.schedule, self.start_sigma = schedule, start_sigma
        self.sigmas: np.ndarray = np.empty(0)
        self.timesteps: list[int] = []

    def set_timesteps(self, num_inference_steps: int) -> None:
        self.sigmas = self.schedule.sigmas(num_inference_steps + 1, self.start_sigma)
        self.timesteps = list(range(num_inference_steps))

    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x' = x + (s_i^2 - s_{i+1}^2) score + sqrt(s_i^2 - s_{i+1}^2) z (``model_output``: the score)."""
        sigma, sigma_next = float(self.sigmas[timestep]), float(self.sigmas[timestep + 1])
        variance = sigma**2 - sigma_next**2
        noise = torch.randn(sample.shape, generator=generator, dtype=sample.dtype).to(sample.device)
        return sample + variance * model_output + np.sqrt(variance) * noise

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        """x0 + sigma z at the noise scales ``timesteps`` index."""
        sigma = torch.as_tensor(self.sigmas, dtype=original.dtype, device=original.device)[timesteps]
        return original + sigma.view(-1, *([1] * (original.ndim - 1))) * noise


def dsm_loss(score: ScoreFunction, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Denoising score matching with the sigma^2 weighting: || sigma s(x0 + sigma z) + z ||^2."""
    view = sigma.view(-1, *([1] * (x0.ndim - 1)))
    return ((view * score(x0 + view * noise, sigma) + noise) ** 2).flatten(1).sum(1).mean() / x0[0].numel()
