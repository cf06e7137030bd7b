"""Options of SRMRI; why their defaults: docs/methods/srmri.md."""
from __future__ import annotations

from dataclasses import dataclass

from inference_backend.methods.options import SliceMethodOptions, option
from inference_backend.operators import AXIS_OPERATORS

BUNDLED_MODEL = "srmri"  # the weights shipped with the method (registry.METHODS: its default model)


@dataclass(frozen=True)
class SRMRIOptions(SliceMethodOptions):
    steps: int = option(20, "noise scales N of the CPU schedule (the paper: 2000)", minimum=2, maximum=4000)
    k: int | str = option(
        "auto",
        "data consistency every k-th step, wavelet fusion on the others (1 = pure DPS); the step is DPS, "
        "or the exact projection where `consistency` names the acquisition (auto: in-plane). k=auto: 1 for thick "
        "slices with DPS steps on the CPU schedule (Jacobian-free steps are cheap), 2 otherwise",
        minimum=1,
        maximum=100,
        number=int,
    )
    dps_gradient: str = option(
        "auto",
        "DPS gradient: through the network (the paper), or jacobian-free (taken at the denoised estimate: no "
        "backward pass, the network stays on the inference engine); auto: jacobian-free for thick slices with DPS "
        "steps on the CPU schedule, network otherwise",
        choices=("auto", "network", "jacobian-free"),
    )
    rho: float | str = option(
        "auto",
        "DPS step size of the CPU schedule (auto: 2 for thick slices with DPS steps, 8 otherwise; tuned on training scans)",
        minimum=0.0,
        number=float,
    )
    snr: float = option(0.16, "Langevin corrector signal-to-noise ratio", minimum=0.0)
    corrector_steps: int | str = option(
        "auto",
        "Langevin corrector steps M after each predictor step (the paper: 1; 0: predictor only); auto: 0 for thick "
        "slices with DPS steps on the CPU schedule, 1 otherwise",
        minimum=0,
        maximum=10,
        number=int,
    )
    fusion: str = option(
        "auto",
        "wavelet fusion on the steps between consistency steps; auto: not for thick slices (their profile "
        "attenuates the approximation band that fusion copies from the up-sampled scan)",
        choices=("auto", "true", "false"),
    )
    start_sigma: float = option(0.1, "start from the up-sampled scan at this noise level (0: pure noise)", minimum=0.0)
    schedule: str = option(
        "auto",
        "cpu: `steps` scales from `start_sigma`; full: the paper's 2000 scales from pure noise; auto: full on a GPU",
        choices=("auto", "cpu", "full"),
    )
    operator: str = option(
        "bicubic",
        "down-sampling operator H of the DPS step (kspace and the thick-slice ones: the data engine's)",
        choices=AXIS_OPERATORS,
    )
