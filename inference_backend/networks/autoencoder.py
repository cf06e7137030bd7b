"""InverseSR's generative prior: a 3D KL autoencoder of HR brain volumes (MONAI AutoencoderKL).

The reference uses the 13.8 M-parameter brain LDM autoencoder trained on UK Biobank; here a
small one is trained on the development data. Non-local attention stays off: at volume sizes
it would need tens of GB. The network is fully convolutional, so it is trained on crops and
decodes any size that is a multiple of its down-sampling factor.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

DEFAULT_CONFIG: dict[str, Any] = {"channels": [8, 16, 32], "latent_channels": 4, "num_res_blocks": 1}


class PriorAutoencoder(nn.Module):
    """Encoder mean and decoder of a 3D AutoencoderKL, saved and loaded with its configuration."""

    network_type = "MONAI AutoencoderKL (3D)"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        from monai.networks.nets import AutoencoderKL

        self.config = {**DEFAULT_CONFIG, **(config or {})}
        levels = len(self.config["channels"])
        self.autoencoder = AutoencoderKL(
            spatial_dims=3,
            in_channels=1,
            out_channels=1,
            channels=tuple(self.config["channels"]),
            latent_channels=self.config["latent_channels"],
            num_res_blocks=(self.config["num_res_blocks"],) * levels,
            attention_levels=(False,) * levels,
            with_encoder_nonlocal_attn=False,
            with_decoder_nonlocal_attn=False,
            norm_num_groups=8,
        )

    @property
    def factor(self) -> int:
        """Down-sampling from image to latent, per axis."""
        return 2 ** (len(self.config["channels"]) - 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (the starting point of an inversion)."""
        mean, _ = self.autoencoder.encode(x)
        return mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, posterior mean, posterior sigma), as MONAI's AutoencoderKL."""
        return self.autoencoder(x)

    def checkpoint(self) -> dict[str, Any]:
        return {"config": self.config, "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> "PriorAutoencoder":
        net = cls(checkpoint["config"])
        net.load_state_dict(checkpoint["state_dict"])
        return net.eval()
