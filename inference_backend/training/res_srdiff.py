"""Train Res-SRDiff on the data engine: one command, seeded, time-budgeted, resumable.

    python -m inference_backend.training.res_srdiff --data ../shared/data --minutes 90 --export

Each step draws a batch of (HR, up-sampled LR) patches from the data engine (synthetic
label-map brains + augmented real scans; thick-slice and in-plane forward models, factors
2-6, Rician noise), a diffusion step t for each, x_t from the forward marginal, and regresses
x0 (MSE). ``--last-step-share`` draws t = T for that fraction of the batch (the rest uniform):
the one-sample result is the x0 prediction at t = T (the posterior mean), so it gets more of
the training. EMA weights are validated (4-step sampling, PSNR on fixed validation patches beside
the B-spline input) and exported with a model card.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch

from inference_backend.data.training_data import (
    TRAINING_SCANS,
    DataMix,
    SlicePairStream,
    default_sources,
)
from inference_backend.methods.res_srdiff.method import (
    ResSRDiffNet,
    residual_shift_loss,
)
from inference_backend.methods.res_srdiff.options import BUNDLED_MODEL as MODEL_NAME
from inference_backend.schedulers.residual_shift import ResidualShiftSchedule
from inference_backend.training.common import (
    TrainingRecipe,
    data_mix,
    parse_share,
    script_command,
    train,
    training_parser,
)


def data_description(mix: DataMix = DataMix(), scans: tuple[str, ...] = TRAINING_SCANS) -> str:
    return mix.description(scans) + (
        " Held out of training: seg3D_MR and both MNI152 templates (nilearn's and spm152), which the benchmark evaluates "
        "on, and the non-T1 development scans (stroke_T2, stroke_FLAIR, every ms_p07 scan)."
    )


def degradation_description(in_plane_share: float) -> str:
    return (
        f"{1 - in_plane_share:.0%} through-plane: thick slices along the patch's last axis, Gaussian/box/sinc slice "
        f"profile, factor 2-6, thickness 80-100% of the slice spacing; {in_plane_share:.0%} in-plane on both axes: "
        "k-space truncation (60%), anti-aliased bicubic (20%) or Gaussian blur + decimation (20%), factor 2-4; Rician "
        "noise sigma 0-2% of range on 70% of draws; LR up-sampled back with the inference B-spline. Each session's "
        "--in-plane-share is in training.sessions (steps 0-6797: 30%, in-plane factor min(f, 4) of f in 2-6)."
    )


def context_description(context: int, dropout: float) -> str:
    if not context:
        return ""
    return (
        f" 2.5D: each patch comes with the up-sampled LR patches of the {context} slices either side, degraded with it; "
        f"in {dropout:.0%} of the pairs they are replaced by the centre's (neighbours unknown, as in scan adaptation)."
    )


def validation_set(data: Path, context: int = 0, count: int = 96, patch: int = 96) -> dict[str, torch.Tensor]:
    """Fixed validation pairs (separate seed, larger patches; neighbours always given)."""
    stream = SlicePairStream(default_sources(data), patch_size=patch, pairs_per_refresh=8, seed=10_000, context=context)
    pairs = list(itertools.islice(iter(stream), count))
    return {key: torch.stack([p[key] for p in pairs]) for key in pairs[0]}


def patch_psnr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Mean PSNR over patches, data range 2 (the normalised intensity range)."""
    mse = ((reference - estimate) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(4.0 / mse)).mean())


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, MODEL_NAME, lr=2e-4)
    parser.add_argument("--last-step-share", type=parse_share, default=0.0, help="fraction of the batch trained at t = T (the rest uniform)")
    parser.add_argument("--context", type=int, default=0, help="neighbouring LR slices either side given to the network (2.5D); 0: 2D")
    parser.add_argument("--context-dropout", type=parse_share, default=0.2, help="share of 2.5D pairs trained with the neighbours unknown")
    args = parser.parse_args(argv)
    if args.context < 0:
        parser.error("--context: a number of slices, 0 or more")
    schedule = ResidualShiftSchedule()
    channels = tuple(int(c) for c in args.channels.split(","))
    unet = {"in_channels": 2 + 2 * args.context, "out_channels": 1, "channels": channels, "blocks_per_level": 1}
    model = ResSRDiffNet(schedule, unet)
    validation = validation_set(args.data, args.context) if args.data else {}

    @torch.no_grad()
    def validate(ema_model: ResSRDiffNet) -> dict[str, float]:
        generator = torch.Generator().manual_seed(0)
        hr, conditioning = validation["hr"], validation["conditioning"]
        contexts = validation["context"].split(32) if "context" in validation else itertools.repeat(None)
        estimate, mean = [], []
        for y, context in zip(conditioning.split(32), contexts):
            predict_x0 = partial(ema_model.predict_x0, context=context)
            estimate.append(ema_model.schedule.sample(predict_x0, y, generator))
            mean.append(ema_model.schedule.posterior_mean(predict_x0, y))
        return {
            "val_psnr": round(patch_psnr(hr, torch.cat(estimate)), 3),
            "val_psnr_mean": round(patch_psnr(hr, torch.cat(mean)), 3),
            "val_psnr_bspline": round(patch_psnr(hr, conditioning), 3),
        }

    card = {
        "method": "res-srdiff",
        "paper": "Res-SRDiff (residual-shifting diffusion, after ResShift)",
        "schedule": asdict(schedule),
        "data": data_description(data_mix(args)) + context_description(args.context, args.context_dropout),
        "degradations": degradation_description(args.in_plane_share),
        "loss": "MSE on x0, t uniform over the 4 steps (each session's --last-step-share of the batch at t = T)",
        "validation": {
            "note": "96 fixed 96x96 validation patches of the default data mix (whatever a session trains on), PSNR over range 2: val_psnr of a 4-step "
            "sample, val_psnr_mean of the posterior mean (the one-sample default)"
        },
    }
    loss = partial(residual_shift_loss, last_step_share=args.last_step_share)
    stream_options = {"context": args.context, "context_dropout": args.context_dropout}
    return train(TrainingRecipe(MODEL_NAME, model, loss, validate, card, stream_options=stream_options), args, script_command(MODEL_NAME, argv))


if __name__ == "__main__":
    sys.exit(main())
