"""Options of Res-SRDiff; why their defaults: docs/methods/res-srdiff.md."""
from __future__ import annotations

from dataclasses import dataclass

from inference_backend.methods.options import SliceMethodOptions, option

BUNDLED_MODEL = "res-srdiff"  # the weights shipped with the method (registry.METHODS: its default model)


@dataclass(frozen=True)
class ResSRDiffOptions(SliceMethodOptions):
    sampler: str = option(
        "auto",
        "stochastic: the published 4-step sampler (a posterior sample); deterministic: its chain of "
        "posterior means (no noise); mean: the posterior mean E[x0 | y], the x0 prediction at the last "
        "step (one network call); auto: mean for one sample, stochastic for several (the variance map)",
        choices=("auto", "mean", "stochastic", "deterministic"),
    )
    # the adaptation's cost and rate: chosen on the tuning slabs (chris_t1, a training scan, and spm152,
    # which no model saw) and on the training patients' real clinical scans, never on a held-out
    # scan; the curves: docs/methods/res-srdiff.md
    adapt_steps: int = option(
        300,
        "thick slices: fine-tune steps on the scan's own slices, degraded like its slice axis, before "
        "restoring it (self-supervised, the scan only; 0: the bundled weights as they are; with "
        "adapt_check: the most steps)",
        minimum=0,
        maximum=5000,
    )
    adapt_patch: int = option(
        64, "thick slices: side of the adaptation patches (a step's cost grows with its square)", minimum=32, maximum=256
    )
    adapt_lr: float = option(1e-4, "thick slices: the adaptation's learning rate (Adam)", minimum=0.0, maximum=1e-2)
    adapt_check: bool = option(
        False,
        "thick slices: hold every fifth of the scan's slices out of the adaptation and keep the weights "
        "that restore them best, stopping once more steps stop helping (e.g. with adapt_steps=1000)",
    )
