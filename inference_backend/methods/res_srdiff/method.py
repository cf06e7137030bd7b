"""Res-SRDiff: 4-step residual-shifting diffusion, slice by slice, with a variance map; for thick
slices first adapted to the scan on its own slices (:mod:`inference_backend.methods.scan_adaptation`)."""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import torch

from inference_backend.imaging.normalization import IntensityNormalizer
from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.methods.scan_adaptation import (
    AdaptationSettings,
    HeldOutCheck,
    ScanPairs,
    adapt_to_scan,
    held_out_split,
    in_slice_images,
    network_zooms,
)
from inference_backend.methods.slice_sampling import load_network, sample_slices
from inference_backend.methods.slicing import SliceBatch, SliceModel, SlicePlan
from inference_backend.networks.unet import ScheduledUNet
from inference_backend.schedulers.residual_shift import ResidualShiftSchedule, ResidualShiftScheduler

X0_RANGE = (-1.5, 2.5)  # normalised intensities: background -1, bright tissue ~1; clamp only outliers


class ResSRDiffNet(ScheduledUNet):
    """x0 prediction from the scaled noisy image and the up-sampled LR image (residual on y).

    A 2.5D network (``context`` k > 0) also sees the up-sampled LR slices k either side of this
    one (the 3D structure a single slice lacks); without them it is told "none known" (y repeated).
    """

    schedule_class = ResidualShiftSchedule

    @property
    def context(self) -> int:
        return (self.config["in_channels"] - 2) // 2

    def forward(self, x_t: torch.Tensor, y: torch.Tensor, index: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        scaled = x_t * self.schedule.input_scale(index, x_t)
        inputs = [scaled, y]
        if self.context:
            inputs.append(y.expand(-1, 2 * self.context, -1, -1) if context is None else context)
        return y + self.unet(torch.cat(inputs, dim=1), index)

    def predict_x0(self, x_t: torch.Tensor, y: torch.Tensor, index: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self(x_t, y, index, context).clamp(*X0_RANGE)

    def posterior_mean(self, y: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """E[x0 | y]: the one-sample result (one network call)."""
        return self.schedule.posterior_mean(partial(self.predict_x0, context=context), y)


def residual_shift_loss(model: ResSRDiffNet, batch: dict[str, torch.Tensor], last_step_share: float = 0.0) -> torch.Tensor:
    """MSE of the x0 prediction from x_t ~ q(x_t | x0, y) at a drawn step: t = T for a
    ``last_step_share`` of the batch, uniform otherwise."""
    x0, y = batch["hr"], batch["conditioning"]
    count, last = x0.shape[0], model.schedule.steps - 1
    drawn = torch.randint(0, model.schedule.steps, (count,), device=x0.device)
    index = torch.where(torch.rand(count, device=x0.device) < last_step_share, last, drawn)
    x_t = ResidualShiftScheduler(model.schedule).add_noise(x0, torch.randn_like(x0), index, y=y)
    return torch.nn.functional.mse_loss(model(x_t, y, index, batch.get("context")), x0)


ADAPTATION_LAST_STEP_SHARE = 0.5  # half of each adaptation batch at t = T, where the one-sample result is predicted
UNCHECKED_STEPS = 300  # the most steps where too few slices can be held out to check: the count chosen before the check


def posterior_mean_error(model: ResSRDiffNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """MSE of the one-sample result (the posterior mean): what the held-out check scores."""
    return torch.nn.functional.mse_loss(model.posterior_mean(batch["conditioning"], batch.get("context")), batch["hr"])


def adaptation_pairs(request: MethodRequest) -> tuple[ScanPairs, ScanPairs | None] | None:
    """(training pairs, held-out pairs or None) from the scan's own slices, or None where there
    are none to learn from: the scan has no single coarse axis (thick slices), is up-sampled by
    less than x1.5, or holds no tissue. Slices are held out only where ``adapt_check`` asks."""
    plan = SlicePlan.between(request.volume.grid, request.target)
    if len(plan.coarse_axes) != 1 or round(plan.factors[plan.coarse_axes[0]]) < 2:
        return None
    coarse, array = plan.coarse_axes[0], request.volume.array
    images = in_slice_images(IntensityNormalizer.fit(array).forward(array), coarse)
    if not images:
        return None
    training, held_out = held_out_split(images) if request.options.adapt_check else (images, [])
    zooms = network_zooms(request.volume.grid.spacing, request.target.spacing, coarse)

    def pairs(slices: list[np.ndarray], seed: int) -> ScanPairs:
        rng = np.random.default_rng(seed)
        return ScanPairs(slices, plan.factors[coarse], request.options.adapt_patch, rng, request.relative_thickness()[coarse], zooms)

    return pairs(training, AdaptationSettings.seed), (pairs(held_out, AdaptationSettings.seed + 1) if held_out else None)


def adaptation_share(request: MethodRequest, sampler: str, steps: int) -> float:
    """The fraction of the job's time the adaptation takes (for the progress bar): a training
    step (forward + backward, a batch of 96 x 96 patches) against the network calls of sampling
    (thick slices: every output voxel twice, once per slice orientation; four calls a stochastic sample)."""
    pixels_per_sample = 2 * int(np.prod(request.target.size)) * (1 if sampler == "mean" else 4)
    adaptation = steps * 3 * AdaptationSettings.batch_size * request.options.adapt_patch**2
    return adaptation / (adaptation + pixels_per_sample * request.samples)


def sampler_for(choice: str, samples: int) -> str:
    """``auto``: the posterior mean for a single sample (the point estimate, not one random draw;
    above the deterministic chain on the tuning scans: docs/methods/res-srdiff.md), the published
    stochastic sampler when several give a variance map."""
    if choice == "auto":
        return "mean" if samples == 1 else "stochastic"
    return choice


def run(request: MethodRequest) -> MethodResult:
    net, model = load_network(request, ResSRDiffNet)
    sampler = sampler_for(request.options.sampler, request.samples)
    temperature = 0.0 if sampler == "deterministic" else 1.0
    options = request.options
    settings = AdaptationSettings(options.adapt_steps, options.adapt_lr, options.adapt_patch)  # its own seed: the estimate depends on the scan only
    pairs = adaptation_pairs(request) if settings.steps > 0 else None
    share, steps = 0.0, 0
    if pairs is not None:
        training, held_out = pairs
        check = HeldOutCheck(held_out, settings, posterior_mean_error, request.device) if held_out else None
        if options.adapt_check and check is None:
            settings = replace(settings, steps=min(settings.steps, UNCHECKED_STEPS))
        share = adaptation_share(request, sampler, settings.steps)
        with request.progress.stage("adapting to the scan", 0.0, share):
            loss = lambda network, batch: residual_shift_loss(network, batch, ADAPTATION_LAST_STEP_SHARE)  # noqa: E731
            steps = adapt_to_scan(net, loss, training, settings, request.progress, request.device, check)

    def slice_model_for(generator: torch.Generator) -> SliceModel:
        def restore(batch: SliceBatch) -> torch.Tensor:
            if sampler == "mean":
                return net.posterior_mean(batch.images, batch.context)
            return net.schedule.sample(partial(net.predict_x0, context=batch.context), batch.images, generator, temperature)

        return restore

    with request.progress.stage("super-resolution", share, 1.0):
        result = sample_slices(request, slice_model_for, model, net, context=net.context)
    result.resolved |= {"sampler": sampler, "adapt_steps": steps}
    return result
