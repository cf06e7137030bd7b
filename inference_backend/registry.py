"""The method registry: what each method is, needs and accepts, without importing its code.

The command line, the benchmark, the batch runner and the Slicer module all list methods from
here. A method's options are the dataclass beside its code (``methods/<name>/options.py``);
its code (and torch) is imported only when it runs: :attr:`MethodSpec.entry` names it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inference_backend.errors import InputError
from inference_backend.methods.interpolation.options import InterpolationOptions
from inference_backend.methods.inverse_sr import options as inverse_sr_options
from inference_backend.methods.msp_sr import options as msp_sr_options
from inference_backend.methods.options import LESION_FILLS, MethodOptions, OptionInfo
from inference_backend.methods.res_srdiff import options as res_srdiff_options
from inference_backend.methods.srmri import options as srmri_options

if TYPE_CHECKING:
    from inference_backend.methods.base import MethodRequest, MethodResult

__all__ = ["ACQUISITIONS", "AUTO", "AUTO_CHOICES", "LESION_FILLS", "MAX_SAMPLES", "METHODS", "MethodSpec", "get_method", "parse_method_options"]


# What an input's acquisition is, from which of its axes the target refines (one: thick slices;
# two: a coarse in-plane matrix). Slice imputation (thin slices with gaps) is one coarse axis
# too: nothing in a volume's geometry tells it from thick slices, so only a method named for it
# treats an input as such.
ACQUISITIONS = ("thick-slices", "in-plane", "imputation")
MAX_SAMPLES = 64  # samples of a stochastic method per job


@dataclass(frozen=True)
class MethodSpec:
    """A super-resolution method as users and programs see it."""

    name: str
    summary: str
    entry: str  # "module:function" taking a MethodRequest and returning a MethodResult
    options_type: type[MethodOptions]
    acquisitions: tuple[str, ...] = ACQUISITIONS  # what it is made for
    below_floor: tuple[tuple[str, str], ...] = ()  # (acquisition, what the headline benchmark measured): experimental there
    stochastic: bool = False  # several samples give a mean and a per-voxel variance
    weights: tuple[str, ...] = ()  # model names under inference_backend/models/
    uses_gpu: bool = True  # False: runs on the CPU whatever device is asked for
    paper: str = ""  # citation shown by `mrisr methods` and the Slicer panel

    @property
    def options(self) -> tuple[OptionInfo, ...]:
        return self.options_type.describe()

    @property
    def learned(self) -> bool:
        """It draws what a trained model expects, which the scan may not show."""
        return bool(self.weights)

    def assets_present(self) -> bool:
        from inference_backend.assets import model_available

        return all(model_available(name) for name in self.weights)

    def parse_options(self, given: Mapping[str, Any]) -> MethodOptions:
        """Defaults overridden by ``given`` (text from the command line, or values); unknown names refused."""
        return self.options_type.parse(given, owner=f"method {self.name}")

    def quality_note(self, acquisition: str) -> str | None:
        """Said wherever the method is chosen for an acquisition it does not do well (CLI,
        panel, report.json); None where its default reaches the classical floor."""
        for flagged, measured in self.below_floor:
            if flagged == acquisition:
                return f"experimental for {acquisition}: {measured}"
        if acquisition not in self.acquisitions:
            return f"not made for {acquisition} (made for {', '.join(self.acquisitions)})"
        return None

    def runner(self) -> Callable[["MethodRequest"], "MethodResult"]:
        module_name, function_name = self.entry.split(":")
        return getattr(importlib.import_module(module_name), function_name)


AUTO = "auto"
# What ``auto`` chooses per acquisition: the method whose defaults the headline benchmark
# (benchmarks/results/headline) shows best there, with its options; a test holds this table
# against that benchmark's committed results.
AUTO_CHOICES: dict[str, tuple[str, dict[str, str], str]] = {
    "thick-slices": ("res-srdiff", {}, "thick slices: Res-SRDiff is above B-spline in PSNR and SSIM on every headline case"),
    "in-plane": ("interpolation", {"kind": "zero-fill"}, "a coarse in-plane matrix: no learned method beats k-space zero-filling on the headline cases"),
    "imputation": ("interpolation", {"kind": "linear"}, "thin slices with gaps: linear interpolation is the best on the headline case"),
}


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            name=AUTO,
            summary="The method the headline benchmark shows best for the scan's acquisition (thick slices, a coarse in-plane matrix), "
            "with its defaults; interpolation where its weights are missing. The choice and the reason are in report.json.",
            entry="",
            options_type=MethodOptions,
            stochastic=True,
        ),
        MethodSpec(
            name="interpolation",
            summary="Classical interpolation (linear, cubic B-spline, Lanczos windowed sinc or k-space zero-filling): the baseline.",
            entry="inference_backend.methods.interpolation.method:run",
            options_type=InterpolationOptions,
            uses_gpu=False,
        ),
        MethodSpec(
            name="res-srdiff",
            summary="Res-SRDiff: 4-step residual-shifting diffusion from the up-sampled scan; samples give a variance map.",
            entry="inference_backend.methods.res_srdiff.method:run",
            acquisitions=("thick-slices", "in-plane"),
            below_floor=(("in-plane", "below k-space zero-filling on the headline cases (benchmarks/results/headline)"),),
            options_type=res_srdiff_options.ResSRDiffOptions,
            stochastic=True,
            weights=(res_srdiff_options.BUNDLED_MODEL,),
            paper="Safari et al., Res-SRDiff: residual shifting diffusion for MRI super-resolution (2025)",
        ),
        MethodSpec(
            name="srmri",
            summary="SRMRI: unsupervised score-based prior of HR slices; DPS alternating with wavelet fusion; any scale.",
            entry="inference_backend.methods.srmri.method:run",
            acquisitions=("thick-slices", "in-plane"),
            below_floor=(("in-plane", "below k-space zero-filling on the headline cases (benchmarks/results/headline)"),),
            options_type=srmri_options.SRMRIOptions,
            stochastic=True,
            weights=(srmri_options.BUNDLED_MODEL,),
            paper="Poudel et al., SRMRI: unsupervised MRI super-resolution with score-based diffusion and wavelet fusion",
        ),
        MethodSpec(
            name="msp-sr",
            summary="MSP-SR: SR3 conditional diffusion + ControlNet, staged transfer, few-shot fine-tuning; calibrated variance.",
            entry="inference_backend.methods.msp_sr.method:run",
            acquisitions=("thick-slices", "in-plane"),
            below_floor=(("in-plane", "below k-space zero-filling on the headline cases (benchmarks/results/headline)"),),
            options_type=msp_sr_options.MSPSROptions,
            stochastic=True,
            weights=(msp_sr_options.BUNDLED_MODEL,),
            paper="MSP-SR: multi-stage probabilistic diffusion super-resolution with ControlNet adaptation",
        ),
        MethodSpec(
            name="inverse-sr",
            summary="InverseSR(Decoder): slice imputation by inverting a 3D generative prior of brain volumes.",
            entry="inference_backend.methods.inverse_sr.method:run",
            options_type=inverse_sr_options.InverseSROptions,
            acquisitions=("imputation",),
            below_floor=(("imputation", "below linear interpolation on the headline case (benchmarks/results/headline)"),),
            weights=(inverse_sr_options.BUNDLED_MODEL,),
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
