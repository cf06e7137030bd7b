"""SRMRI: unsupervised, blind SR with a score-based prior of HR slices, DPS and wavelet fusion.

The prior never sees an LR image, so one model serves every scale factor; the forward
operator H of the DPS step is an option (bicubic by default, as in the paper). Where the
``consistency`` option names an exact acquisition model (``auto``: k-space truncation for
in-plane up-sampling), its projection replaces the DPS step inside the sampler: on a
training scan's slab it beat DPS at every step size. Wavelet fusion copies the up-sampled
scan's approximation band into the sample, which is right for a coarse in-plane matrix but not
for thick slices, whose profile attenuates that band: ``fusion=auto`` fuses except for thick
slices (one coarse axis). The measurements behind both: docs/methods/srmri.md.
"""
from __future__ import annotations

import torch

from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.methods.slice_sampling import (
    acquisition_model,
    load_network,
    sample_slices,
)
from inference_backend.methods.slicing import SliceBatch, SliceModel, SlicePlan
from inference_backend.methods.srmri.options import SRMRIOptions
from inference_backend.methods.srmri.sampler import SRMRISampler
from inference_backend.networks.unet import ScheduledUNet
from inference_backend.operators import consistency
from inference_backend.operators.degradation import downsampling_operator
from inference_backend.schedulers.score_sde import VESchedule

PAPER_NOISE_SCALES = 2000
NOISE_EMBEDDING_SCALE = 100.0  # log(sigma) spans about [-5, 4]: spread it over the sinusoidal embedding's range


class ScoreNet(ScheduledUNet):
    """s(x, sigma) = UNet(x, log sigma) / sigma, the output scaling of NCSN++."""

    schedule_class = VESchedule

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        output = self.unet(x, NOISE_EMBEDDING_SCALE * torch.log(sigma))
        return output / sigma.view(-1, *([1] * (x.ndim - 1)))


# What the options left at auto become (chosen on the tuning slabs: docs/methods/srmri.md). CPU schedule,
# thick slices with DPS steps: a Jacobian-free DPS step on every noise scale, no corrector (a third of the
# earlier time, -0.03 to +0.02 dB); elsewhere the earlier preset (in-plane the corrector is worth
# 0.05-0.39 dB; the full GPU schedule is untuned).
THICK_SLICE_DPS_PRESET = {"k": 1, "corrector_steps": 0, "dps_gradient": "jacobian-free", "rho": 2.0}
DEFAULT_PRESET = {"k": 2, "corrector_steps": 1, "dps_gradient": "network", "rho": 8.0}


def make_sampler(options: SRMRIOptions, schedule: VESchedule, device: str, fusion: bool, thick_slice_dps: bool) -> SRMRISampler:
    """The CPU schedule (``steps`` scales from the up-sampled scan at ``start_sigma``) or the
    paper's full one (2000 scales from pure noise at sigma_max; the default on a GPU). The full
    schedule's DPS step is scaled so that the total data-consistency pull stays that of the options.
    Options left at auto take the preset: for thick slices with DPS on the CPU schedule,
    Jacobian-free DPS steps (no backward pass) on every scale and no corrector; elsewhere the earlier one."""
    full = options.schedule == "full" or (options.schedule == "auto" and device.startswith("cuda"))
    steps = PAPER_NOISE_SCALES if full else options.steps
    preset = THICK_SLICE_DPS_PRESET if thick_slice_dps and not full else DEFAULT_PRESET
    chosen = {name: preset[name] if getattr(options, name) == "auto" else getattr(options, name) for name in preset}
    return SRMRISampler(
        schedule,
        steps=steps,
        k=chosen["k"],
        rho=chosen["rho"] * options.steps / steps,
        snr=options.snr,
        corrector_steps=chosen["corrector_steps"],
        fusion=fusion,
        start_sigma=None if full or options.start_sigma <= 0 else options.start_sigma,
        jacobian_free=chosen["dps_gradient"] == "jacobian-free",
    )


def run(request: MethodRequest) -> MethodResult:
    options = request.options
    net, model = load_network(request, ScoreNet)
    acquisition = acquisition_model(request)
    plan = SlicePlan.between(request.volume.grid, request.target)
    thick_slices = len(plan.coarse_axes) == 1
    thickness = (1.0, request.relative_thickness()[plan.coarse_axes[0]]) if thick_slices else None  # a slice's coarse axis is W
    fusion = options.fusion == "true" or (options.fusion == "auto" and not thick_slices)
    sampler = make_sampler(options, net.schedule, request.device, fusion, thick_slices and acquisition == "none")

    def slice_model_for(generator: torch.Generator) -> SliceModel:
        def restore(batch: SliceBatch) -> torch.Tensor:
            assert batch.measured is not None
            height, width = batch.size
            operator = downsampling_operator(options.operator, (height, width), tuple(batch.measured.shape[-2:]), thickness)
            projection = (
                None if acquisition == "none" else consistency.slice_projection(acquisition, (height, width), batch.measured, thickness)
            )
            return sampler.sample(net, batch.images, batch.measured, lambda x: operator(x[..., :height, :width]), generator, projection)

        return restore

    result = sample_slices(request, slice_model_for, model, net, with_measurement=True)
    result.resolved["data_consistency_step"] = f"dps ({options.operator})" if acquisition == "none" else f"projection ({acquisition})"
    result.resolved["fusion"] = fusion
    result.resolved.update(k=sampler.k, corrector_steps=sampler.corrector_steps, rho=sampler.rho,
                           dps_gradient="jacobian-free" if sampler.jacobian_free else "network")  # fmt: skip
    return result
