"""SRMRI's posterior sampler over the VE-SDE prior (:mod:`inference_backend.schedulers.score_sde`).

Prior (Song et al., 2021): p_sigma(x) = p_data * N(0, sigma^2 I), sigma from sigma_max down to
sigma_min geometrically; a network learns the score s(x, sigma) = grad log p_sigma(x) by
denoising score matching, ``E || sigma s(x + sigma z, sigma) + z ||^2``.

Sampler (SRMRI, Algorithm 1), for i = N..1:

1. predictor (reverse diffusion): x' = x + (s_i^2 - s_{i-1}^2) score + sqrt(s_i^2 - s_{i-1}^2) z;
2. every k-th step, diffusion posterior sampling (DPS): x0_hat = x + s_i^2 score (Tweedie),
   x_{i-1} = x' - rho * grad_x || y_lr - H(x0_hat) ||, H a down-sampling operator (``jacobian_free``:
   the gradient taken with respect to x0_hat, i.e. without the backward pass through the network);
   the other steps, wavelet fusion: x_{i-1} = W^-1(A(y_up), D(x')) (bior4.4, 2 levels:
   approximation band from the up-sampled scan, detail bands from the sample). Where the
   acquisition is known exactly (an in-plane acquisition matrix is k-space truncation), the
   DPS gradient step is replaced by its hard limit, the projection x' + H^+(y - H x') onto the
   acquired data (the data-consistency step of score-based MRI reconstruction, Chung & Ye 2022);
3. corrector: M Langevin steps at s_{i-1}, step 2 (snr ||z|| / ||score||)^2, applied to x_{i-1}
   (the authors' early code overwrote the corrector's output; here it is kept).

Starting from pure noise at sigma_max needs hundreds of steps; ``start_sigma`` starts instead
from the up-sampled scan plus noise of that level (as SDEdit / CCDF do), which is what makes
the method usable on a CPU. ``start_sigma=None`` runs the full schedule from sigma_max.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pywt
import torch

from inference_backend.schedulers.score_sde import ScoreFunction, VESchedule, VEScheduler

Operator = Callable[[torch.Tensor], torch.Tensor]  # HR batch -> LR batch


class WaveletFusion:
    """Approximation band of the up-sampled scan + detail bands of the sample (per 2D slice)."""

    def __init__(self, wavelet: str = "bior4.4", levels: int = 2) -> None:
        self.wavelet, self.levels = wavelet, levels

    def __call__(self, sample: torch.Tensor, upsampled: torch.Tensor) -> torch.Tensor:
        x = sample.detach().cpu().double().numpy()
        y = upsampled.detach().cpu().double().numpy()
        mode = "periodization"
        coefficients = pywt.wavedec2(x, self.wavelet, mode=mode, level=self.levels, axes=(-2, -1))
        coefficients[0] = pywt.wavedec2(y, self.wavelet, mode=mode, level=self.levels, axes=(-2, -1))[0]
        fused = pywt.waverec2(coefficients, self.wavelet, mode=mode, axes=(-2, -1))[..., : x.shape[-2], : x.shape[-1]]
        return torch.from_numpy(fused).to(sample.dtype).to(sample.device)


@dataclass
class SRMRISampler:
    """Algorithm 1 with the options of the paper's ablations."""

    schedule: VESchedule
    steps: int = 20  # noise scales N (the paper: 2000)
    k: int = 2  # DPS every k-th step, wavelet fusion on the others; k = 1 is pure DPS
    rho: float = 8.0  # DPS step size
    snr: float = 0.16  # Langevin corrector signal-to-noise ratio
    corrector_steps: int = 1  # M
    fusion: bool = True  # False: plain predictor on non-DPS steps (the ablation)
    start_sigma: float | None = 0.1  # None: start from pure noise at sigma_max
    jacobian_free: bool = False  # DPS gradient taken at x0_hat, not through the network (no backward pass)

    def sample(
        self,
        score: ScoreFunction,
        upsampled: torch.Tensor,
        measurement: torch.Tensor,
        operator: Operator,
        generator: torch.Generator | None = None,
        projection: Operator | None = None,
    ) -> torch.Tensor:
        """``projection`` (onto {x : H x = y}), when given, takes the place of the DPS gradient step."""
        scheduler = VEScheduler(self.schedule, self.start_sigma)
        scheduler.set_timesteps(self.steps)
        sigmas = scheduler.sigmas
        fuse = WaveletFusion()

        def noise() -> torch.Tensor:
            return torch.randn(upsampled.shape, generator=generator, dtype=upsampled.dtype).to(upsampled.device)

        x = (upsampled if self.start_sigma is not None else torch.zeros_like(upsampled)) + float(sigmas[0]) * noise()
        for i in scheduler.timesteps:
            sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
            level = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
            consistency_step = (self.steps - i) % self.k == 0
            use_dps = consistency_step and projection is None
            with torch.enable_grad():
                x_in = x.detach().requires_grad_(use_dps and not self.jacobian_free)
                s = score(x_in, level)
                x_next = scheduler.step(s, i, x_in, generator)  # the predictor
                if use_dps:
                    x0_hat = x_in + sigma**2 * s
                    if self.jacobian_free:  # d x0_hat / d x taken as the identity
                        x0_hat = x0_hat.detach().requires_grad_(True)
                    residual = torch.linalg.vector_norm((measurement - operator(x0_hat)).flatten(1), dim=1).sum()
                    (gradient,) = torch.autograd.grad(residual, x0_hat if self.jacobian_free else x_in)
                    x_next = x_next - self.rho * gradient
            x = x_next.detach()
            if consistency_step and projection is not None:
                x = projection(x)
            elif not consistency_step and self.fusion:
                x = fuse(x, upsampled)
            x = self.correct(score, x, sigma_next, noise)
        final = torch.full((x.shape[0],), float(sigmas[-1]), dtype=x.dtype, device=x.device)
        with torch.no_grad():
            return x + float(sigmas[-1]) ** 2 * score(x, final)  # Tweedie: remove the last noise level

    def correct(self, score: ScoreFunction, x: torch.Tensor, sigma: float, noise: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Langevin dynamics at noise level ``sigma`` (Song et al.'s step-size rule)."""
        level = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
        for _ in range(self.corrector_steps):
            with torch.no_grad():
                s = score(x, level)
            z = noise()
            score_norm = torch.linalg.vector_norm(s.flatten(1), dim=1).mean()
            noise_norm = torch.linalg.vector_norm(z.flatten(1), dim=1).mean()
            step = 2 * (self.snr * noise_norm / score_norm.clamp_min(1e-12)) ** 2
            x = x + step * s + torch.sqrt(2 * step) * z
        return x
