"""A job worked out once, before any work: from a request (:class:`~inference_backend.job.JobOptions`)
and the input's grid, the method that runs (with ``auto``'s choice and why), its options with
the model resolved, that model's SHA-256, the output grid and the axes it refines, the
acquisition, the effective sample count and the slice thickness.

The pipeline runs the plan and writes it into ``report.json``; the command line's ``methods``,
the Slicer panel's preview, the batch's completeness check and the benchmark read it. Nothing
works any of it out again. Light to import (no numpy, no torch): the panel plans on every edit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from inference_backend.errors import InputError
from inference_backend.imaging.target import Refinement, finer_than_target, refined_axes, target_grid
from inference_backend.job import DICOM_THICKNESS, SLICE_THICKNESS_RANGE, JobOptions
from inference_backend.methods.options import LESION_FILLS, MethodOptions
from inference_backend.registry import AUTO, AUTO_CHOICES, MAX_SAMPLES, MethodSpec, get_method

if TYPE_CHECKING:
    from inference_backend.imaging.volume import Grid


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` chose for this input, and why."""

    method: str
    options: dict[str, str]
    reason: str


@dataclass(frozen=True)
class ModelRef:
    """The weights a job loads: their name and the SHA-256 their card holds (None: not installed)."""

    name: str
    sha256: str | None

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256}


@dataclass(frozen=True)
class JobPlan:
    request: JobOptions  # as asked (``auto`` included)
    method: str  # what runs
    method_options: MethodOptions  # parsed and checked, the model resolved
    refinement: Refinement  # input grid, output grid, refined axes, slice thickness
    samples: int  # what runs: the request's for a stochastic method, 1 otherwise
    thickness_notes: dict[str, Any]  # slice_thickness_mm and slice_thickness_source, for reports
    auto: AutoChoice | None = None
    model: ModelRef | None = None
    quality_note: str | None = None  # the method is experimental, or not made, for this acquisition

    @property
    def spec(self) -> MethodSpec:
        return get_method(self.method)

    @property
    def target(self) -> Grid:
        return self.refinement.target

    @property
    def acquisition(self) -> str:
        return self.refinement.acquisition

    def report(self) -> dict[str, Any]:
        """The plan's entries of ``report.json``."""
        entries: dict[str, Any] = {
            "method": self.method,
            "options": self.method_options.as_dict(),
            "model": None if self.model is None else self.model.record(),
            "samples": self.samples,
            "acquisition": self.acquisition,
            "input_grid": self.refinement.source.describe(),
            "output_grid": self.target.describe(),
            **self.thickness_notes,
        }
        if self.auto is not None:
            entries["auto"] = {"chose": self.auto.method, "options": self.auto.options, "reason": self.auto.reason}
        if self.quality_note is not None:
            entries["quality_note"] = self.quality_note
        if self.kept_note is not None:
            entries["spacing_kept"] = self.kept_note
        return entries

    @property
    def kept_note(self) -> str | None:
        """Which axes a spacing target left at the input's finer spacing, and why (None: none)."""
        if self.request.spacing is None:
            return None
        kept = finer_than_target(self.refinement.source, self.request.spacing)
        if not kept:
            return None
        axes, source = ", ".join("xyz"[a] for a in kept), self.refinement.source.spacing
        return f"{axes} kept at {', '.join(f'{source[a]:g}' for a in kept)} mm: finer than the {', '.join(f'{self.request.spacing[a]:g}' for a in kept)} mm target"

    def expected_time(self, device: str) -> str:
        """How long this job takes on ``device``, from the measured rates."""
        from inference_backend.time_estimates import expected_time

        return expected_time(self.method, self.target.num_voxels, self.samples, device)


def plan_job(grid: Grid, options: JobOptions, acquired_thickness: float | None = None) -> JobPlan:
    """The checks every job passes before any work, whoever asks (command line, Slicer, batch),
    and what they decide: method and its options, samples, lesion fill, target resolution,
    voxel budget, slice thickness. ``acquired_thickness``: the thickness of the slices stacked
    along k as the file recorded it (DICOM (0018,0050))."""
    from inference_backend.imaging.validation import check_voxel_budget

    target = options.target or target_grid(grid, options.scale, options.spacing, options.max_voxels)
    acquisition = Refinement(grid, target).acquisition
    method, method_options, auto = options.method, options.method_options, None
    if method == AUTO:
        if method_options:
            raise InputError("--method auto takes no --opt: name the method to set its options")
        auto = auto_choice(acquisition)
        method, method_options = auto.method, auto.options
    spec = get_method(method)
    parsed = spec.parse_options(method_options)
    if not 1 <= options.samples <= MAX_SAMPLES:
        raise InputError(f"--samples must be between 1 and {MAX_SAMPLES}; got {options.samples}")
    if options.lesion_fill not in LESION_FILLS:
        raise InputError(f"--lesion-fill must be one of {', '.join(LESION_FILLS)}; got {options.lesion_fill!r}")
    if not (math.isfinite(options.dilate_mask_mm) and options.dilate_mask_mm >= 0):
        raise InputError(f"--dilate-mask must be a number of mm >= 0; got {options.dilate_mask_mm}")
    check_voxel_budget(target, "the output", options.max_voxels)  # an explicit target's too
    if options.slice_thickness is not None:
        problem = slice_thickness_problem(grid, target, options.slice_thickness)
        if problem is not None:
            raise InputError(f"--slice-thickness {problem}")
    thickness, notes = slice_thickness_of(grid, target, options.slice_thickness, acquired_thickness)
    model = None
    if spec.weights:
        parsed = replace(parsed, model=parsed.model or spec.weights[0])  # type: ignore[call-arg]
        model = ModelRef(parsed.model, installed_sha256(parsed.model))  # type: ignore[attr-defined]
    return JobPlan(
        request=options,
        method=method,
        method_options=parsed,
        refinement=Refinement(grid, target, thickness),
        samples=options.samples if spec.stochastic else 1,
        thickness_notes=notes,
        auto=auto,
        model=model,
        quality_note=None if auto is not None or acquisition == "other" else spec.quality_note(acquisition),
    )


def auto_choice(acquisition: str) -> AutoChoice:
    """The method ``auto`` runs for an acquisition; interpolation where its weights are missing."""
    method, method_options, reason = AUTO_CHOICES.get(
        acquisition, ("interpolation", {}, "no single refined axis or pair of axes: B-spline interpolation")
    )
    if not get_method(method).assets_present():
        method, method_options, reason = "interpolation", {}, f"{method}'s weights are not installed: B-spline interpolation"
    return AutoChoice(method, method_options, reason)


def installed_sha256(name: str) -> str | None:
    """The SHA-256 the installed model's card holds (None where it is not installed)."""
    from inference_backend.assets import find_model, read_card

    found = find_model(name)
    return None if found is None else read_card(found[1])["sha256"]


def slice_thickness_problem(grid: Grid, target: Grid, thickness: float) -> str | None:
    """Why ``thickness`` (mm) cannot be the slice thickness of the job from ``grid`` to
    ``target``, or None: a job that refines one axis only (thick slices), within
    :data:`SLICE_THICKNESS_RANGE` of its spacing."""
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


def slice_thickness_of(
    grid: Grid, target: Grid, requested: float | None, acquired: float | None
) -> tuple[float | None, dict[str, Any]]:
    """(the slice thickness in mm the thick-slice forward models use, None where it equals the
    spacing; the report's entries: the value used and where it came from). ``acquired``: the
    thickness the file recorded for the slices stacked along k; one outside
    :func:`slice_thickness_problem`'s bounds is ignored, and the report says why."""
    axes = refined_axes(grid, target)
    if len(axes) != 1:
        return None, {"slice_thickness_mm": None, "slice_thickness_source": None}
    if requested is not None:
        return float(requested), {"slice_thickness_mm": float(requested), "slice_thickness_source": "option"}
    source = "= slice spacing"
    if acquired is not None and axes[0] == 2:
        problem = slice_thickness_problem(grid, target, acquired)
        if problem is None:
            return acquired, {"slice_thickness_mm": acquired, "slice_thickness_source": DICOM_THICKNESS}
        source += f" ({DICOM_THICKNESS} {acquired:g} mm ignored: it {problem.split('; got')[0]})"
    return None, {"slice_thickness_mm": grid.spacing[axes[0]], "slice_thickness_source": source}
