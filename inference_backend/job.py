"""What defines a job besides its input data, the one check every job passes, and its command
line: the same :class:`JobOptions` travel from ``mrisr run`` / ``mrisr batch`` arguments, from
the Slicer logic (in-process, or as the command line of a subprocess) and from the batch
runner, and :func:`validate_job` is the one gate they all pass before any work. Light to
import (the command line builds its parser from it before anything heavy loads).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from inference_backend.errors import InputError
from inference_backend.methods.options import LESION_FILLS
from inference_backend.registry import (
    AUTO,
    AUTO_CHOICES,
    get_method,
    parse_method_options,
)

if TYPE_CHECKING:
    from inference_backend.imaging.volume import Grid

MAX_SAMPLES = 64
# --slice-thickness, as a multiple of the slice spacing: thinner leaves most of the tissue between
# the slices unmeasured, thicker overlaps more than any clinical protocol does
SLICE_THICKNESS_RANGE = (0.25, 2.0)
DICOM_THICKNESS = "DICOM (0018,0050)"


@dataclass
class JobOptions:
    """Everything that defines a job besides the input data."""

    method: str = "interpolation"  # the command line, the panel and the console default to auto
    method_options: dict[str, Any] = field(default_factory=dict)
    scale: tuple[float, float, float] | None = None
    spacing: tuple[float, float, float] | None = None
    target: Grid | None = None  # an explicit output grid (e.g. a reference volume's), instead of scale/spacing
    samples: int = 1
    seed: int = 0
    device: str = "auto"
    max_voxels: int | None = None
    keep_samples: bool = False
    lesion_fill: str = "neighbourhood"  # one of LESION_FILLS
    dilate_mask_mm: float = 0.0
    slice_thickness: float | None = None  # mm, of a thick-slice scan's slices; None: DICOM (0018,0050), or the spacing

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> "JobOptions":
        """The options parsed by :func:`add_job_arguments`."""
        from inference_backend.imaging.target import parse_triplet

        return cls(
            method=args.method,
            method_options=parse_method_options(args.opt),
            scale=parse_triplet(args.scale, "--scale") if args.scale else None,
            spacing=parse_triplet(args.spacing, "--spacing") if args.spacing else None,
            samples=args.samples,
            seed=args.seed,
            device=args.device,
            max_voxels=args.max_voxels,
            lesion_fill=args.lesion_fill,
            dilate_mask_mm=args.dilate_mask,
            slice_thickness=args.slice_thickness,
        )

    def arguments(self) -> list[str]:
        """The command-line arguments that give these options back (:meth:`from_arguments`)."""
        if self.target is not None or self.keep_samples:
            raise ValueError("an explicit target grid and kept samples have no command line; run in-process")
        arguments = ["--method", self.method]
        if self.scale is not None:
            arguments += ["--scale", ",".join(repr(float(s)) for s in self.scale)]
        if self.spacing is not None:
            arguments += ["--spacing", ",".join(repr(float(s)) for s in self.spacing)]
        arguments += ["--samples", str(self.samples), "--seed", str(self.seed), "--device", self.device]
        arguments += ["--lesion-fill", self.lesion_fill, "--dilate-mask", repr(float(self.dilate_mask_mm))]
        if self.max_voxels is not None:
            arguments += ["--max-voxels", str(self.max_voxels)]
        if self.slice_thickness is not None:
            arguments += ["--slice-thickness", repr(float(self.slice_thickness))]
        for name, value in self.method_options.items():
            arguments += ["--opt", f"{name}={value}"]
        return arguments


def add_job_arguments(parser: argparse.ArgumentParser, target_required: bool = True) -> None:
    """The arguments of :class:`JobOptions` (``mrisr run`` and ``mrisr batch``)."""
    parser.add_argument("--method", default=AUTO, help="method name (see `mrisr methods`); auto: the best for the scan's acquisition")
    target = parser.add_mutually_exclusive_group(required=target_required)
    target.add_argument("--scale", help="per-axis up-sampling factor, e.g. 1,1,4 (or one value for all axes)")
    target.add_argument("--spacing", help="target voxel spacing in mm, e.g. 1,1,1 (or one value)")
    parser.add_argument("--samples", type=int, default=1, help="samples of a stochastic method (mean + variance)")
    parser.add_argument(
        "--slice-thickness",
        type=float,
        metavar="MM",
        help="thick slices: the acquired slice thickness when it differs from the slice spacing (5 mm slices every "
        "6 mm: 5; a 1 mm gap), between 1/4 and 2x the spacing; default: DICOM (0018,0050), else the spacing",
    )
    parser.add_argument(
        "--lesion-fill",
        default="neighbourhood",
        help="neighbourhood (biharmonic), nawm-mean, or inverse-sr (the 3D prior; slower, and behind neighbourhood on synthetic lesions)",
    )
    parser.add_argument("--dilate-mask", type=float, default=0.0, metavar="MM", help="grow the lesion mask by this many mm")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--seed", type=int, default=0, help="random seed of stochastic methods")
    parser.add_argument("--opt", action="append", default=[], metavar="NAME=VALUE", help="method option (repeatable)")
    parser.add_argument("--max-voxels", type=int, help="refuse outputs larger than this (default 2^28, env MRISR_MAX_VOXELS)")


def acquisition_of(source: Grid, target: Grid) -> str | None:
    """``thick-slices`` (one axis refined), ``in-plane`` (two), or None (none, or all three)."""
    from inference_backend.imaging.target import refined_axes

    return {1: "thick-slices", 2: "in-plane"}.get(len(refined_axes(source, target)))


def slice_thickness_problem(grid: Grid, target: Grid, thickness: float) -> str | None:
    """Why ``thickness`` (mm) cannot be the slice thickness of this job, or None: a job that
    refines one axis only (thick slices), within :data:`SLICE_THICKNESS_RANGE` of its spacing."""
    from inference_backend.imaging.target import refined_axes
    from inference_backend.imaging.volume import fmt_values

    if not (math.isfinite(thickness) and thickness > 0):
        return f"must be a number of mm > 0; got {thickness:g}"
    axes = refined_axes(grid, target)
    if len(axes) != 1:
        return (
            f"applies to thick slices, a job that refines one axis (the slice axis); this one refines {len(axes)} "
            f"(input spacing {fmt_values(grid.spacing)}, output {fmt_values(target.spacing)} mm)"
        )
    spacing = grid.spacing[axes[0]]
    low, high = (bound * spacing for bound in SLICE_THICKNESS_RANGE)
    if not low <= thickness <= high:
        return (
            f"must be between {low:g} and {high:g} mm (1/4 to 2x the {spacing:g} mm slice spacing along "
            f"{'xyz'[axes[0]]}); got {thickness:g}"
        )
    return None


def slice_thickness_of(grid: Grid, target: Grid, options: JobOptions, acquired: float | None = None) -> tuple[float | None, dict[str, Any]]:
    """(the slice thickness in mm the thick-slice forward models use, None where it equals the
    spacing; the report's entries: the value used and where it came from). ``acquired``: the
    thickness of the slices stacked along k as the file recorded it (DICOM (0018,0050)); one
    outside :func:`slice_thickness_problem`'s bounds is ignored, and the report says why."""
    from inference_backend.imaging.target import refined_axes

    axes = refined_axes(grid, target)
    if len(axes) != 1:
        return None, {"slice_thickness_mm": None, "slice_thickness_source": None}
    if options.slice_thickness is not None:
        thickness = float(options.slice_thickness)
        return thickness, {"slice_thickness_mm": thickness, "slice_thickness_source": "option"}
    source = "= slice spacing"
    if acquired is not None and axes[0] == 2:
        problem = slice_thickness_problem(grid, target, acquired)
        if problem is None:
            return acquired, {"slice_thickness_mm": acquired, "slice_thickness_source": DICOM_THICKNESS}
        source += f" ({DICOM_THICKNESS} {acquired:g} mm ignored: it {problem.split('; got')[0]})"
    return None, {"slice_thickness_mm": grid.spacing[axes[0]], "slice_thickness_source": source}


def resolve_method(grid: Grid, options: JobOptions) -> tuple[JobOptions, dict[str, Any]]:
    """``auto`` made concrete for this input: (the options to run, report entries saying what
    was chosen and why); another method as it is, with a ``quality_note`` where it is
    experimental for this acquisition."""
    target = job_target(grid, options)
    acquisition = acquisition_of(grid, target)
    if options.method != AUTO:
        note = None if acquisition is None else get_method(options.method).quality_note(acquisition)
        return options, ({} if note is None else {"quality_note": note})
    if options.method_options:
        raise InputError("--method auto takes no --opt: name the method to set its options")
    method, method_options, reason = AUTO_CHOICES.get(
        acquisition or "", ("interpolation", {}, "no single refined axis or pair of axes: B-spline interpolation")
    )
    if not get_method(method).assets_present():
        method, method_options, reason = "interpolation", {}, f"{method}'s weights are not installed: B-spline interpolation"
    chosen = replace(options, method=method, method_options=method_options)
    return chosen, {"auto": {"chose": method, "options": method_options, "acquisition": acquisition or "other", "reason": reason}}


def job_target(grid: Grid, options: JobOptions) -> Grid:
    from inference_backend.imaging.target import target_grid

    return options.target or target_grid(grid, options.scale, options.spacing, options.max_voxels)


def validate_job(grid: Grid, options: JobOptions) -> Grid:
    """The checks every job passes before any work, whoever asks (command line, Slicer, batch):
    method and its options, samples, lesion fill, target resolution, voxel budget and slice
    thickness. Returns the output grid."""
    from inference_backend.imaging.validation import check_voxel_budget

    options, _ = resolve_method(grid, options)
    spec = get_method(options.method)
    spec.parse_options(options.method_options)
    if not 1 <= options.samples <= MAX_SAMPLES:
        raise InputError(f"--samples must be between 1 and {MAX_SAMPLES}; got {options.samples}")
    if options.lesion_fill not in LESION_FILLS:
        raise InputError(f"--lesion-fill must be one of {', '.join(LESION_FILLS)}; got {options.lesion_fill!r}")
    if not (math.isfinite(options.dilate_mask_mm) and options.dilate_mask_mm >= 0):
        raise InputError(f"--dilate-mask must be a number of mm >= 0; got {options.dilate_mask_mm}")
    target = job_target(grid, options)
    check_voxel_budget(target, "the output", options.max_voxels)  # an explicit target's too
    if options.slice_thickness is not None:
        problem = slice_thickness_problem(grid, target, options.slice_thickness)
        if problem is not None:
            raise InputError(f"--slice-thickness {problem}")
    return target
