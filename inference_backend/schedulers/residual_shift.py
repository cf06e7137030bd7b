"""Residual-shifting diffusion (ResShift / Res-SRDiff): a Markov chain between the HR image
x0 and the up-sampled LR image y, in a handful of steps.

Forward marginal:  q(x_t | x0, y) = N(x0 + eta_t (y - x0), kappa^2 eta_t I),  t = 1..T
Prior at t = T:    x_T ~ N(y, kappa^2 eta_T I)   (eta_T ~ 1: start from y plus noise, not pure noise)
Posterior:         q(x_{t-1} | x_t, x0) = N(eta_{t-1}/eta_t x_t + alpha_t/eta_t x0,
                                            kappa^2 eta_{t-1}/eta_t alpha_t I),  alpha_t = eta_t - eta_{t-1}
Schedule:          sqrt(eta_t) grows geometrically from sqrt(eta_1) = min(m / kappa, m) to
                   sqrt(eta_T) on the warped time ((t-1)/(T-1))^p  (kappa = 2, p = 0.3, m = 0.2).

The network predicts x0 from (x_t, y, t); sampling applies the posterior with x0 replaced by
that prediction. Trained under MSE, the prediction is E[x0 | x_t, y]; at t = T, where the noise
(std kappa sqrt(eta_T) ~ 2) hides x0, it is close to E[x0 | y] itself, the minimum-MSE point
estimate (:meth:`ResidualShiftSchedule.posterior_mean`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from inference_backend.schedulers.base import Schedule, Scheduler

X0Predictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, y, t index) -> x0


@dataclass(frozen=True)
class ResidualShiftSchedule(Schedule):
    steps: int = 4
    kappa: float = 2.0
    power: float = 0.3
    min_noise: float = 0.2
    sqrt_eta_end: float = 0.99

    @property
    def sqrt_eta(self) -> np.ndarray:
        """sqrt(eta_t) for t = 1..T (index 0..T-1)."""
        start = min(self.min_noise / self.kappa, self.min_noise)
        warped = np.linspace(0.0, 1.0, self.steps) ** self.power
        return start * (self.sqrt_eta_end / start) ** warped

    @property
    def eta(self) -> np.ndarray:
        return self.sqrt_eta**2

    @property
    def alpha(self) -> np.ndarray:
        """alpha_t = eta_t - eta_{t-1}, with eta_0 = 0."""
        return np.diff(self.eta, prepend=0.0)

    def _at(self, values: np.ndarray, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        gathered = torch.as_tensor(values, dtype=like.dtype, device=like.device)[index]
        return gathered.reshape(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, y: torch.Tensor, index: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Draw x_t from the forward marginal (``index`` = t - 1, one per batch element)."""
        eta = self._at(self.eta, index, x0)
        return x0 + eta * (y - x0) + self.kappa * eta.sqrt() * noise

    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x0)."""
        eta_previous = self._at(np.concatenate([[0.0], self.eta[:-1]]), index, x_t)
        eta, alpha = self._at(self.eta, index, x_t), self._at(self.alpha, index, x_t)
        mean = eta_previous / eta * x_t + alpha / eta * x0
        return mean, self.kappa**2 * eta_previous / eta * alpha

    def input_scale(self, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """1 / std of x_t for an image of unit variance: keeps the network's input well scaled."""
        return 1.0 / torch.sqrt(self.kappa**2 * self._at(self.eta, index, like) + 1.0)

    def posterior_mean(self, predict_x0: X0Predictor, y: torch.Tensor) -> torch.Tensor:
        """E[x0 | y], approximately: the x0 prediction at t = T from the prior's mean x_T = y (one
        network call). The chain's later steps add detail the scan does not determine, which
        costs PSNR: this is the point estimate, the chain the sample."""
        return predict_x0(y, y, torch.full((y.shape[0],), self.steps - 1, dtype=torch.long, device=y.device))

    def sample(
        self, predict_x0: X0Predictor, y: torch.Tensor, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """Run the reverse chain from x_T ~ N(y, kappa^2 eta_T) to x_0 (``steps`` network calls).

        ``temperature`` scales every noise draw: 1 is the published sampler (a posterior sample),
        0 the deterministic chain of posterior means from x_T = y (one point estimate; no spread).
        """
        scheduler = ResidualShiftScheduler(self, temperature)
        x = y + scheduler.init_noise_sigma * scheduler.noise(y, generator)
        for step in scheduler.timesteps:
            index = torch.full((y.shape[0],), step, dtype=torch.long, device=y.device)
            x = scheduler.step(predict_x0(x, y, index), step, x, generator)
        return x


class ResidualShiftScheduler(Scheduler):
    """The chain's steps T-1..0 (indices), each a draw from the posterior around the network's x0."""

    def __init__(self, schedule: ResidualShiftSchedule, temperature: float = 1.0) -> None:
        self.schedule, self.temperature = schedule, temperature
        self.set_timesteps(schedule.steps)

    @property
    def init_noise_sigma(self) -> float:
        """The prior's standard deviation around y at t = T."""
        return self.schedule.kappa * float(self.schedule.sqrt_eta[-1])

    def set_timesteps(self, num_inference_steps: int) -> None:
        if num_inference_steps != self.schedule.steps:
            raise ValueError(f"the residual-shifting chain is sampled in its {self.schedule.steps} steps; got {num_inference_steps}")
        self.timesteps = list(reversed(range(self.schedule.steps)))

    def noise(self, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return self.temperature * torch.randn(like.shape, generator=generator, dtype=like.dtype, device="cpu").to(like.device)

    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_{t-1} from x_t and the predicted x0 (the posterior's mean at the last step)."""
        index = torch.full((sample.shape[0],), timestep, dtype=torch.long, device=sample.device)
        mean, variance = self.schedule.posterior(sample, model_output, index)
        return mean + variance.sqrt() * self.noise(sample, generator) if timestep > 0 else mean

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        """x_t from the forward marginal, around the up-sampled scan ``conditioning["y"]``."""
        return self.schedule.q_sample(original, conditioning["y"], timesteps, noise)
