"""The method registry: what each method is, needs and accepts, without importing it.

The command line, the benchmark and the Slicer module all list methods from here. A method's
code (and torch) is imported only when it runs: :attr:`MethodSpec.entry` names it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inference_backend.errors import InputError

if TYPE_CHECKING:
    from inference_backend.methods.base import MethodRequest, MethodResult


@dataclass(frozen=True)
class OptionSpec:
    """One method option; its type is the type of ``default``."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, value: Any) -> Any:
        """Convert (from text, for the CLI) and validate; errors name the option."""
        kind = type(self.default)
        try:
            if kind is bool and isinstance(value, str):
                if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                parsed: Any = value.lower() in {"true", "1", "yes"}
            else:
                parsed = kind(value)
        except (TypeError, ValueError) as error:
            raise InputError(f"option {self.name}: expected {kind.__name__}, got {value!r}") from error
        if self.choices is not None and parsed not in self.choices:
            raise InputError(f"option {self.name}: {parsed!r} is not one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and parsed < self.minimum:
            raise InputError(f"option {self.name}: {parsed} is below the minimum {self.minimum}")
        if self.maximum is not None and parsed > self.maximum:
            raise InputError(f"option {self.name}: {parsed} is above the maximum {self.maximum}")
        return parsed


@dataclass(frozen=True)
class MethodSpec:
    """A super-resolution method as users and programs see it."""

    name: str
    summary: str
    entry: str  # "module:function" taking a MethodRequest and returning a MethodResult
    options: tuple[OptionSpec, ...] = ()
    stochastic: bool = False  # several samples give a mean and a per-voxel variance
    weights: tuple[str, ...] = ()  # model names under inference_backend/models/
    needs_lesion_mask: bool = False
    uses_gpu: bool = True  # False: runs on the CPU whatever device is asked for
    expected_time: str = ""  # for a 181x217x181 volume, shown in the Slicer panel
    paper: str = ""  # citation shown by `mrisr methods` and the Slicer panel

    def assets_present(self) -> bool:
        from inference_backend.assets import model_available

        return all(model_available(name) for name in self.weights)

    def parse_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``given``; unknown names are refused."""
        known = {option.name: option for option in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(
                f"method {self.name} has no option {', '.join(unknown)}; its options: {', '.join(known) or 'none'}"
            )
        return {name: option.parse(given[name]) if name in given else option.default for name, option in known.items()}

    def runner(self) -> Callable[["MethodRequest"], "MethodResult"]:
        module_name, function_name = self.entry.split(":")
        return getattr(importlib.import_module(module_name), function_name)


INTERPOLATION_KINDS = ("linear", "bspline", "lanczos", "zero-fill")
LESION_FILLS = ("neighbourhood", "nawm-mean", "inverse-sr")  # inference_backend.lesion_fill.FILLS


# inference_backend.degradation.AXIS_OPERATORS (not imported here: it needs torch)
AXIS_OPERATORS = ("bicubic", "linear", "box", "lanczos", "kspace", "gaussian-slices", "box-slices", "sinc-slices")


def slice_method_options(default_model: str) -> tuple[OptionSpec, ...]:
    """The options of the 2D slice-engine methods: which weights, slices per call, data consistency."""
    return (
        OptionSpec("model", default_model, "model name (bundled, or in the user models folder)"),
        OptionSpec("batch_size", 8, "slices per network call", minimum=1, maximum=256),
        OptionSpec(
            "consistency",
            "auto",
            "project each sample onto the acquired scan through this acquisition model "
            "(auto: kspace for in-plane up-sampling of two axes, none for thick slices)",
            choices=("auto", "none", *AXIS_OPERATORS),
        ),
    )


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            name="interpolation",
            summary="Classical interpolation (linear, cubic B-spline, Lanczos windowed sinc or k-space zero-filling): the baseline.",
            entry="inference_backend.methods.interpolation:run",
            options=(OptionSpec("kind", "bspline", "interpolation kernel", choices=INTERPOLATION_KINDS),),
            uses_gpu=False,
            expected_time="CPU ~2 s, no GPU needed",
        ),
        MethodSpec(
            name="res-srdiff",
            summary="Res-SRDiff: 4-step residual-shifting diffusion from the up-sampled scan; samples give a variance map.",
            entry="inference_backend.methods.res_srdiff:run",
            options=slice_method_options("res-srdiff")
            + (
                OptionSpec(
                    "sampler",
                    "auto",
                    "stochastic: the published 4-step sampler (a posterior sample); deterministic: its chain of "
                    "posterior means (no noise); mean: the posterior mean E[x0 | y], the x0 prediction at the last "
                    "step (one network call); auto: mean for one sample, stochastic for several (the variance map)",
                    choices=("auto", "mean", "stochastic", "deterministic"),
                ),
                OptionSpec(
                    "adapt_steps",
                    200,
                    "thick slices: fine-tune steps on the scan's own slices, degraded like its slice axis, before "
                    "restoring it (self-supervised, the scan only; 0: the bundled weights as they are)",
                    minimum=0,
                    maximum=5000,
                ),
            ),
            stochastic=True,
            weights=("res-srdiff",),
            expected_time="CPU ~40 s for one sample (25 s adapting to the scan, then the posterior mean), ~50 s more per stochastic sample (2 cores); GPU a few seconds",
            paper="Safari et al., Res-SRDiff: residual shifting diffusion for MRI super-resolution (2025)",
        ),
        MethodSpec(
            name="srmri",
            summary="SRMRI: unsupervised score-based prior of HR slices; DPS alternating with wavelet fusion; any scale.",
            entry="inference_backend.methods.srmri:run",
            options=slice_method_options("srmri")
            + (
                OptionSpec("steps", 20, "noise scales N of the CPU schedule (the paper: 2000)", minimum=2, maximum=4000),
                OptionSpec(
                    "k",
                    2,
                    "data consistency every k-th step, wavelet fusion on the others (1 = pure DPS); the step is DPS, "
                    "or the exact projection where `consistency` names the acquisition (auto: in-plane)",
                    minimum=1,
                    maximum=100,
                ),
                OptionSpec("rho", 8.0, "DPS step size (of the CPU schedule; tuned on a training scan)", minimum=0.0),
                OptionSpec("snr", 0.16, "Langevin corrector signal-to-noise ratio", minimum=0.0),
                OptionSpec(
                    "fusion",
                    "auto",
                    "wavelet fusion on the steps between consistency steps; auto: not for thick slices (their profile "
                    "attenuates the approximation band that fusion copies from the up-sampled scan)",
                    choices=("auto", "true", "false"),
                ),
                OptionSpec("start_sigma", 0.1, "start from the up-sampled scan at this noise level (0: pure noise)", minimum=0.0),
                OptionSpec(
                    "schedule",
                    "auto",
                    "cpu: `steps` scales from `start_sigma`; full: the paper's 2000 scales from pure noise; auto: full on a GPU",
                    choices=("auto", "cpu", "full"),
                ),
                OptionSpec(
                    "operator",
                    "bicubic",
                    "down-sampling operator H of the DPS step (kspace and the thick-slice ones: the data engine's)",
                    choices=AXIS_OPERATORS,
                ),
            ),
            stochastic=True,
            weights=("srmri",),
            expected_time="CPU: ~4-11 min per sample for a whole head with the default 20 scales (seg3D_MR, in-plane x2 / through-plane x4); the paper's 2000 scales are GPU-only",
            paper="Poudel et al., SRMRI: unsupervised MRI super-resolution with score-based diffusion and wavelet fusion",
        ),
        MethodSpec(
            name="msp-sr",
            summary="MSP-SR: SR3 conditional diffusion + ControlNet, staged transfer, few-shot fine-tuning; calibrated variance.",
            entry="inference_backend.methods.msp_sr:run",
            options=slice_method_options("msp-sr")
            + (
                OptionSpec("steps", 10, "DDIM steps (the training schedule has 2000)", minimum=1, maximum=2000),
                OptionSpec("eta", 0.0, "DDIM stochasticity (0: deterministic given the starting noise, 1: DDPM-like)", minimum=0.0, maximum=1.0),
            ),
            stochastic=True,
            weights=("msp-sr",),
            expected_time="CPU: ~2-4 min per sample with 10 DDIM steps (2 cores); GPU seconds",
            paper="MSP-SR: multi-stage probabilistic diffusion super-resolution with ControlNet adaptation",
        ),
        MethodSpec(
            name="inverse-sr",
            summary="InverseSR(Decoder): slice imputation by inverting a 3D generative prior of brain volumes.",
            entry="inference_backend.methods.inverse_sr:run",
            options=(
                OptionSpec("model", "inverse-sr", "model name (bundled, or in the user models folder)"),
                OptionSpec("steps", 40, "Adam steps on the latent of each tile (the paper: 600)", minimum=1, maximum=5000),
                OptionSpec("keep_acquired", True, "project the result onto the acquired slices (they come back unchanged)"),
                OptionSpec(
                    "misfit",
                    "linear",
                    "with keep_acquired: how the decoded volume's misfit at the acquired slices is carried to the slices "
                    "between them before the projection (linear, chosen on a training scan's slab; bspline; none: the "
                    "acquired slices only)",
                    choices=("linear", "bspline", "none"),
                ),
                OptionSpec("anchor", 10.0, "weight of the pull towards the starting latent (0: the paper's loss; 10 chosen on a training scan's slab)", minimum=0.0),
                OptionSpec("acquisition", "thin", "thin: slices with gaps (imputation); thick: contiguous thick slices", choices=("thin", "thick")),
                OptionSpec("tile", 64, "tile side in voxels (memory: one tile at a time)", minimum=16, maximum=512),
                OptionSpec("overlap", 16, "tile overlap in voxels (cross-faded)", minimum=0, maximum=256),
            ),
            weights=("inverse-sr",),
            expected_time="CPU: tens of minutes for a whole head (2 cores); GPU minutes",
            paper="Wang et al., InverseSR: 3D brain MRI super-resolution using a latent diffusion model (MICCAI 2023)",
        ),
    )
}


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; available: {', '.join(METHODS)}") from None


def parse_method_options(pairs: list[str]) -> dict[str, str]:
    """``["kind=linear", "steps=4"]`` -> {"kind": "linear", "steps": "4"} (CLI ``--opt``)."""
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--opt expects NAME=VALUE, got {pair!r}")
        options[name.strip()] = value.strip()
    return options
