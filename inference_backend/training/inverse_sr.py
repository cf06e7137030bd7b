"""Train InverseSR's 3D generative prior (a small AutoencoderKL) on HR brain volumes.

    python -m inference_backend.training.inverse_sr --data ../shared/data --minutes 40 --export

3D crops of synthetic label-map brains and augmented real scans (the held-out scans and the
MNI templates excluded, as for every model); loss: L1 reconstruction + a small KL term
(as MONAI's latent-diffusion tutorials; no adversarial or perceptual term: their networks'
weights are not obtainable offline). Validation: reconstruction PSNR of fixed crops.
"""
from __future__ import annotations

import itertools
import sys

import torch

from inference_backend.data.training_data import VolumeCropStream, default_sources
from inference_backend.methods.inverse_sr.options import BUNDLED_MODEL as MODEL_NAME
from inference_backend.networks.autoencoder import PriorAutoencoder
from inference_backend.training.common import (
    TrainingRecipe,
    data_mix,
    script_command,
    train,
    training_parser,
)
from inference_backend.training.res_srdiff import data_description, patch_psnr

KL_WEIGHT = 1e-6
CROP = 48


def autoencoder_loss(model: PriorAutoencoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    x = batch["hr"]
    reconstruction, mean, sigma = model(x)
    kl = 0.5 * (mean**2 + sigma**2 - torch.log(sigma**2 + 1e-12) - 1).flatten(1).sum(1).mean()
    return (reconstruction - x).abs().mean() + KL_WEIGHT * kl


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, MODEL_NAME, lr=1e-3)
    parser.set_defaults(batch=2, patch=CROP, warmup=100, val_every=200)  # --patch: the crop's edge
    args = parser.parse_args(argv)
    model = PriorAutoencoder()
    if args.data is None:
        raise SystemExit("no --data folder (../shared/data is absent)")
    sources = default_sources(args.data, mix=data_mix(args))  # read once: validation and training
    val_stream = VolumeCropStream(sources, crop=64, crops_per_refresh=2, seed=10_000)
    val_hr = torch.stack([c["hr"] for c in itertools.islice(iter(val_stream), 8)])

    @torch.no_grad()
    def validate(ema_model: PriorAutoencoder) -> dict[str, float]:
        reconstruction = torch.cat([ema_model.decode(ema_model.encode(x[None])) for x in val_hr])
        return {"val_reconstruction_psnr": round(patch_psnr(val_hr, reconstruction), 3)}

    card = {
        "method": "inverse-sr",
        "paper": "InverseSR (generative-prior inversion), decoder variant",
        "data": data_description(data_mix(args)).replace("2D patches", f"{args.patch}^3 crops (random flips)"),
        "loss": f"L1 reconstruction + {KL_WEIGHT} * KL",
        "validation": {"note": "reconstruction PSNR of 8 fixed 64^3 crops (range 2)"},
    }
    recipe = TrainingRecipe(
        MODEL_NAME,
        model,
        autoencoder_loss,
        validate,
        card,
        sources=sources,
        make_stream=lambda sources, seed: VolumeCropStream(sources, crop=args.patch, seed=seed),
    )
    return train(recipe, args, script_command(MODEL_NAME, argv))


if __name__ == "__main__":
    sys.exit(main())
