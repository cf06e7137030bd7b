"""Train SRMRI's score prior on HR slices only (denoising score matching): no LR image is seen.

    python -m inference_backend.training.srmri --data ../shared/data --minutes 90 --export

The HR patches come from the same data engine as the supervised models (synthetic label-map
brains + augmented real scans); their degraded counterparts are ignored. Validation: the
denoising PSNR of the EMA model's Tweedie estimate at a few fixed noise levels.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import asdict

import torch

from inference_backend.data.training_data import SlicePairStream, default_sources
from inference_backend.methods.srmri.method import ScoreNet
from inference_backend.methods.srmri.options import BUNDLED_MODEL as MODEL_NAME
from inference_backend.schedulers.score_sde import VESchedule, dsm_loss
from inference_backend.training.common import (
    TrainingRecipe,
    data_mix,
    script_command,
    train,
    training_parser,
)
from inference_backend.training.res_srdiff import data_description, patch_psnr

VALIDATION_SIGMAS = (0.05, 0.2, 0.5)


def score_matching_loss(model: ScoreNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    x0 = batch["hr"]
    return dsm_loss(model, x0, model.schedule.sample_sigma(x0.shape[0]).to(x0.device), torch.randn_like(x0))


def main(argv: list[str] | None = None) -> int:
    args = training_parser(__doc__, MODEL_NAME, lr=2e-4).parse_args(argv)
    schedule = VESchedule()
    channels = tuple(int(c) for c in args.channels.split(","))
    model = ScoreNet(schedule, {"in_channels": 1, "out_channels": 1, "channels": channels, "blocks_per_level": 1})
    stream = SlicePairStream(default_sources(args.data), patch_size=96, pairs_per_refresh=8, seed=10_000, hr_only=True) if args.data else None
    val_hr = torch.stack([p["hr"] for p in itertools.islice(iter(stream), 96)]) if stream else None

    @torch.no_grad()
    def validate(ema_model: ScoreNet) -> dict[str, float]:
        generator = torch.Generator().manual_seed(0)
        metrics = {}
        for sigma in VALIDATION_SIGMAS:
            noisy = val_hr + sigma * torch.randn(val_hr.shape, generator=generator)
            level = torch.full((val_hr.shape[0],), sigma)
            denoised = noisy + sigma**2 * ema_model(noisy, level)
            metrics[f"val_denoise_psnr_sigma{sigma}"] = round(patch_psnr(val_hr, denoised), 3)
            metrics[f"val_noisy_psnr_sigma{sigma}"] = round(patch_psnr(val_hr, noisy), 3)
        return metrics

    card = {
        "method": "srmri",
        "paper": "SRMRI (score-based prior, DPS + wavelet fusion)",
        "schedule": asdict(schedule),
        "data": data_description(data_mix(args)) + " HR patches only: the prior never sees an LR image.",
        "loss": "denoising score matching, sigma^2-weighted, sigma log-uniform in [sigma_min, sigma_max]",
        "validation": {"note": "Tweedie denoising PSNR of 96 fixed 96x96 HR patches at sigma 0.05/0.2/0.5 (range 2)"},
    }
    return train(TrainingRecipe(MODEL_NAME, model, score_matching_loss, validate, card, hr_only=True), args, script_command(MODEL_NAME, argv))


if __name__ == "__main__":
    sys.exit(main())
