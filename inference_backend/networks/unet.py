"""A compact time-conditioned 2D UNet sized for CPU inference of few-step diffusion.

Why not MONAI's DiffusionModelUNet: its always-on mid-block self-attention and
full-resolution ResBlocks cost an order of magnitude more per slice on a CPU (measured in the
Res-SRDiff model card), too slow for a few steps over a whole head. This UNet starts
with a pixel-unshuffle (space-to-depth by 2), so no convolution runs at full resolution,
has no attention, and conditions every ResBlock on the diffusion time through a learned
scale and shift (FiLM), as in the DDPM/ADM UNets.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) time steps, as in DDPM."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with a time-dependent scale and shift between."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, groups: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, 2 * out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.time(embedding)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(nn.functional.silu(h))


class CompactUNet(nn.Module):
    """``(B, in_channels, H, W)`` + time ``(B,)`` -> ``(B, out_channels, H, W)``; H, W multiples of 16."""

    def __init__(
        self, in_channels: int = 2, out_channels: int = 1, channels: tuple[int, ...] = (48, 96, 192), blocks_per_level: int = 1
    ) -> None:
        super().__init__()
        time_dim = 4 * channels[0]
        self.config = {"in_channels": in_channels, "out_channels": out_channels, "channels": list(channels), "blocks_per_level": blocks_per_level}
        self.time_mlp = nn.Sequential(nn.Linear(channels[0], time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.channels = channels
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4 * in_channels, channels[0], 3, padding=1))
        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        for level, width in enumerate(channels):
            previous = channels[max(level - 1, 0)]
            blocks = [ResBlock(previous if i == 0 else width, width, time_dim) for i in range(blocks_per_level)]
            self.down_blocks.append(nn.ModuleList(blocks))
            if level < len(channels) - 1:
                self.downsamplers.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.middle = ResBlock(channels[-1], channels[-1], time_dim)
        self.up_blocks = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in reversed(range(len(channels) - 1)):
            self.upsamplers.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels[level + 1], channels[level], 3, padding=1)))
            self.up_blocks.append(ResBlock(2 * channels[level], channels[level], time_dim))
        self.head = nn.Sequential(
            nn.GroupNorm(8, channels[0]), nn.SiLU(), nn.Conv2d(channels[0], 4 * out_channels, 3, padding=1), nn.PixelShuffle(2)
        )
        nn.init.zeros_(self.head[2].weight)  # start as the zero map: a residual model starts at its input
        nn.init.zeros_(self.head[2].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, control: "ControlBranch | None" = None) -> torch.Tensor:
        embedding = self.time_mlp(timestep_embedding(t, self.channels[0]))
        h, skips = self.encode(x, embedding)
        if control is not None:
            middle_residual, skip_residuals = control(x, embedding)
            h = h + middle_residual
            skips = [skip + residual for skip, residual in zip(skips, skip_residuals)]
        return self.decode(h, skips, embedding)

    def encode(self, x: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Stem, down path and middle block: (the middle features, the skips of each level but the last)."""
        h = self.stem(x)
        skips = []
        for level, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, embedding)
            if level < len(self.downsamplers):
                skips.append(h)
                h = self.downsamplers[level](h)
        return self.middle(h, embedding), skips

    def decode(self, h: torch.Tensor, skips: list[torch.Tensor], embedding: torch.Tensor) -> torch.Tensor:
        skips = list(skips)
        for upsample, block in zip(self.upsamplers, self.up_blocks):
            h = block(torch.cat([upsample(h), skips.pop()], dim=1), embedding)
        return self.head(h)


class ControlBranch(nn.Module):
    """ControlNet (Zhang et al., 2023) for a CompactUNet: a trainable copy of its encoder whose
    features join the frozen base's middle block and skips through zero-initialised 1x1
    convolutions, so that the adapted network starts exactly as the base and learns a residual."""

    def __init__(self, base: CompactUNet) -> None:
        super().__init__()
        self.stem = copy.deepcopy(base.stem)
        self.down_blocks = copy.deepcopy(base.down_blocks)
        self.downsamplers = copy.deepcopy(base.downsamplers)
        self.middle = copy.deepcopy(base.middle)
        self.skip_projections = nn.ModuleList(zero_convolution(width) for width in base.channels[:-1])
        self.middle_projection = zero_convolution(base.channels[-1])

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, skips = CompactUNet.encode(self, x, embedding)  # the same encoder code on the copied layers
        return self.middle_projection(h), [projection(skip) for projection, skip in zip(self.skip_projections, skips)]


def zero_convolution(channels: int) -> nn.Conv2d:
    convolution = nn.Conv2d(channels, channels, 1)
    nn.init.zeros_(convolution.weight)
    nn.init.zeros_(convolution.bias)
    return convolution


class ScheduledUNet(nn.Module):
    """A CompactUNet paired with the noise schedule it was trained for; saved and loaded together.

    Subclasses set ``schedule_class`` and define ``forward``.
    """

    schedule_class: type
    network_type = "CompactUNet"

    def __init__(self, schedule, unet: dict) -> None:
        super().__init__()
        self.schedule = schedule
        self.unet = CompactUNet(**unet)

    @property
    def config(self) -> dict:
        return self.unet.config

    def checkpoint(self) -> dict:
        return {"schedule": self.schedule.config(), "unet": self.unet.config, "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "ScheduledUNet":
        net = cls(cls.schedule_class.from_config(checkpoint["schedule"]), checkpoint["unet"])
        net.load_state_dict(checkpoint["state_dict"])
        return net.eval()
