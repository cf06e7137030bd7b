"""Train MSP-SR in its three stages (each one command, seeded, time-budgeted, resumable).

    # 1. out-of-domain: the SR3 base on scikit-image's photographs
    python -m inference_backend.training.msp_sr --stage out-of-domain --minutes 20 --export
    # 2. in-domain: a ControlNet branch on brain MRI, base frozen
    python -m inference_backend.training.msp_sr --stage in-domain --minutes 30 --export
    # 3. target domain: the ControlNet branch fine-tuned on a site's own HR scans
    python -m inference_backend.training.msp_sr --stage target --hr scan1.nii.gz --export-name my-site

Loss (MSP-SR eq. 13): gamma * ||eps - eps_hat||^2 + (1 - gamma) * ||A x0_hat - y||^2, gamma 0.5
(the noise is that of the diffused residual x0 - y; x0_hat = y + the residual's Tweedie estimate),
A the pair's own forward model from the data engine (acquisition + B-spline up-sampling) and
y the conditioning image. The consistency term is weighted by alpha_bar_t: x0_hat's error grows
as 1 / sqrt(alpha_bar_t) (~150x at t = T), and unweighted the term diverges at high noise.

``--stage scratch`` trains the base on any --source without the staged transfer (the ablation's
"target-only" model).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from inference_backend.assets import verified_model
from inference_backend.data.training_data import (
    DataMix,
    SlicePairStream,
    default_sources,
    natural_image_sources,
    scan_sources,
)
from inference_backend.methods.msp_sr.method import MSPSRNet
from inference_backend.methods.msp_sr.options import BASE_MODEL as BASE_MODEL_NAME
from inference_backend.methods.msp_sr.options import BUNDLED_MODEL as MODEL_NAME
from inference_backend.schedulers.sr3 import SR3Schedule, alphas_cumprod
from inference_backend.training.common import (
    TrainingRecipe,
    data_mix,
    script_command,
    train,
    training_parser,
)
from inference_backend.training.res_srdiff import data_description, patch_psnr

GAMMA = 0.5
LOSS_BORDER = 12  # pixels at the patch border where A restricted to the patch is inexact
IN_DOMAIN_SCANS = ("stroke_T1",)  # chris_t1 is kept out of the in-domain stage: it is the few-shot target

STAGES = {
    # stage: (default source, model it starts from (then a ControlNet branch on its frozen base is trained), exported name)
    "out-of-domain": ("natural", None, BASE_MODEL_NAME),
    "in-domain": ("brain", BASE_MODEL_NAME, MODEL_NAME),
    "target": ("scans", MODEL_NAME, MODEL_NAME + "-target"),
    "scratch": ("scans", None, MODEL_NAME + "-scratch"),
}


def msp_sr_loss(model: MSPSRNet, batch: dict[str, torch.Tensor], gamma: float = GAMMA) -> torch.Tensor:
    y = batch["conditioning"]
    residual = batch["hr"] - y  # the diffused quantity (see inference_backend.methods.msp_sr.method)
    alpha_bar = alphas_cumprod(model.schedule).to(y.device)
    t = torch.randint(0, model.schedule.train_steps, (y.shape[0],), device=y.device)
    a = alpha_bar[t].view(-1, 1, 1, 1)
    noise = torch.randn_like(y)
    x_t = a.sqrt() * residual + (1 - a).sqrt() * noise
    predicted = model(x_t, y, t)
    ground_truth_term = torch.nn.functional.mse_loss(predicted, noise)
    x0_hat = y + (x_t - (1 - a).sqrt() * predicted) / a.sqrt()
    projected = batch["operator_rows"][:, None] @ x0_hat @ batch["operator_columns"][:, None].transpose(-1, -2)
    inner = (..., slice(LOSS_BORDER, -LOSS_BORDER), slice(LOSS_BORDER, -LOSS_BORDER))
    consistency_term = (a * (projected - y) ** 2)[inner].mean()
    return gamma * ground_truth_term + (1 - gamma) * consistency_term


def stage_sources(source: str, data: Path | None, hr: list[Path], mix: DataMix) -> list:
    """The training images of a stage: photographs, development brains, or given HR scans."""
    if source == "natural":
        return natural_image_sources()
    if source == "brain":
        if data is None:
            raise SystemExit("no --data folder (../shared/data is absent)")
        return default_sources(data, IN_DOMAIN_SCANS, mix)
    if not hr:
        raise SystemExit("--source scans needs --hr SCAN [SCAN ...]")
    return scan_sources(hr)


def with_replay(sources: list, rehearsed: list, share: float) -> list:
    """Sources mixed so that ``share`` of the pairs come from ``rehearsed`` (the in-domain data
    rehearsed beside a site's scans, against forgetting); each list's weights sum to 1."""
    return [(s, w * (1 - share)) for s, w in sources] + [(s, w * share) for s, w in rehearsed]


def build_model(stage: str, args: argparse.Namespace) -> MSPSRNet:
    """The stage's network: new, or the model it starts from with a ControlNet branch on its
    frozen base (also when a run resumes: the checkpoint's weights are loaded into it)."""
    _, start_from, _ = STAGES[stage]
    if start_from is None:
        channels = tuple(int(c) for c in args.channels.split(","))
        return MSPSRNet(SR3Schedule(), {"in_channels": 2, "out_channels": 1, "channels": channels, "blocks_per_level": 1})
    from inference_backend.assets import load_checkpoint

    checkpoint, _ = load_checkpoint(args.start_from or start_from)
    net = MSPSRNet.from_checkpoint(checkpoint).train()
    if net.control is None:
        net.add_control()
    net.unet.requires_grad_(False)
    return net


def stage_parser() -> argparse.ArgumentParser:
    parser = training_parser(__doc__, MODEL_NAME, lr=1e-4)
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--source", choices=("natural", "brain", "scans"), help="training images (default: the stage's)")
    parser.add_argument("--hr", type=Path, nargs="*", default=[], help="HR scans (--source scans)")
    parser.add_argument("--replay", type=float, default=0.0, help="share of in-domain pairs mixed into a target stage (needs --data)")
    parser.add_argument("--start-from", help="the model this stage starts from (default: the previous stage's)")
    parser.set_defaults(channels="24,48,96,192", val_every=250, warmup=100)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.replay < 1.0:  # before any scan is read
        parser.error(f"--replay {args.replay}: a share from 0 to below 1")
    args.export_name = args.export_name or STAGES[args.stage][2]
    if args.run_dir == parser.get_default("run_dir"):
        args.run_dir = args.run_dir.parent / args.export_name
    return run_stage(args, script_command(MODEL_NAME, argv))


def finetune(
    hr: list[Path],
    name: str,
    minutes: float,
    start_from: str = MODEL_NAME,
    threads: int = 2,
    factors: tuple[int, ...] | None = None,
    in_plane_share: float | None = None,
) -> Path:
    """MSP-SR's third stage on a site's own HR scans (``mrisr finetune``): the ControlNet branch
    of ``start_from`` trained on them for ``minutes``, exported to the user models folder as
    ``name``; the same call resumes. Returns the run folder."""
    from inference_backend.assets import user_models_dir

    args = stage_parser().parse_args(["--stage", "target"])
    args.hr, args.start_from, args.minutes, args.threads = [Path(p) for p in hr], start_from, minutes, threads
    args.export, args.export_name, args.models_dir = True, name, user_models_dir()
    args.run_dir = user_models_dir().parent / "finetune-runs" / name
    args.factors = factors or args.factors
    args.in_plane_share = args.in_plane_share if in_plane_share is None else in_plane_share
    command = f"mrisr finetune msp-sr --hr {' '.join(map(str, hr))} --out {name} --minutes {minutes:g} --from {start_from}"
    run_stage(args, command)
    return args.run_dir


def run_stage(args: argparse.Namespace, command: str) -> int:
    """Train the stage ``args`` name (its sources, its start model, its card)."""
    source, start_from, _ = STAGES[args.stage]
    source = args.source or source
    sources = stage_sources(source, args.data, args.hr, data_mix(args))
    if args.replay > 0:
        sources = with_replay(sources, stage_sources("brain", args.data, [], data_mix(args)), args.replay)
    model = build_model(args.stage, args)
    start_name = None if start_from is None else (args.start_from or start_from)
    validation = SlicePairStream(
        sources, patch_size=64, pairs_per_refresh=4, seed=10_000, factors=args.factors, in_plane_share=args.in_plane_share
    )
    val_pairs = list(itertools.islice(iter(validation), 32))
    val_hr, val_conditioning = torch.stack([p["hr"] for p in val_pairs]), torch.stack([p["conditioning"] for p in val_pairs])

    @torch.no_grad()
    def validate(ema_model: MSPSRNet) -> dict[str, float]:
        generator = torch.Generator().manual_seed(0)
        estimate = ema_model.schedule.sample(ema_model, val_conditioning, steps=10, eta=0.0, generator=generator)
        return {"val_psnr": round(patch_psnr(val_hr, estimate), 3), "val_psnr_bspline": round(patch_psnr(val_hr, val_conditioning), 3)}

    descriptions = {
        "natural": "64x64 patches of the 18 grey photographs bundled with scikit-image (rotations, flips, gamma).",
        "brain": data_description(data_mix(args), IN_DOMAIN_SCANS) + " chris_t1 is also held out here: it is the few-shot target scan.",
        "scans": "augmented slices of the given HR scans: " + ", ".join(p.name for p in args.hr),
    }
    card = {
        "method": "msp-sr",
        "paper": "MSP-SR (multi-stage SR3 + ControlNet, calibrated uncertainty)",
        "stage": args.stage,
        "started_from": start_name,
        "started_from_sha256": None if start_name is None else verified_model(start_name)[1]["sha256"],  # which export, when names repeat
        "schedule": asdict(model.schedule),
        "data": descriptions[source] + (f" Mixed with {args.replay:.0%} in-domain pairs (replay)." if args.replay > 0 else ""),
        "degradations": f"the data engine's forward models ({1 - args.in_plane_share:.0%} thick slices, {args.in_plane_share:.0%} in-plane; "
        f"factors {','.join(map(str, args.factors))}; Rician noise)",
        "loss": f"{GAMMA} * MSE(eps) + {1 - GAMMA} * alpha_bar-weighted ||A x0_hat - y||^2 (A: the pair's forward model)",
        "validation": {"note": "10-step DDIM sample of 32 fixed 64x64 validation patches of the stage's data; PSNR over range 2"},
    }
    recipe = TrainingRecipe(MODEL_NAME, model, msp_sr_loss, validate, card, with_operator=True, sources=sources)
    return train(recipe, args, command)


if __name__ == "__main__":
    sys.exit(main())
