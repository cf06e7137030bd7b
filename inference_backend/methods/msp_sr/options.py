"""Options of MSP-SR; why their defaults: docs/methods/msp-sr.md."""
from __future__ import annotations

from dataclasses import dataclass

from inference_backend.methods.options import SliceMethodOptions, option

BUNDLED_MODEL = "msp-sr"  # the weights shipped with the method (registry.METHODS: its default model)
BASE_MODEL = "msp-sr-base"  # the out-of-domain stage the ControlNet adapts


@dataclass(frozen=True)
class MSPSROptions(SliceMethodOptions):
    steps: int = option(5, "DDIM steps (the training schedule has 2000; 5 chosen on the tuning slabs: above 10 and 4)", minimum=1, maximum=2000)
    eta: float = option(0.0, "DDIM stochasticity (0: deterministic given the starting noise, 1: DDPM-like)", minimum=0.0, maximum=1.0)
    sampler: str = option(
        "auto",
        "mean: the deterministic DDIM path from the prior's mean (one estimate, no sampled texture); stochastic: "
        "a posterior draw from random noise; auto: mean for one sample, stochastic for several (the variance map)",
        choices=("auto", "mean", "stochastic"),
    )
