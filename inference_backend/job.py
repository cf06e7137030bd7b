"""What defines a job besides its input data, and its command line: the same
:class:`JobOptions` travel from ``mrisr run`` / ``mrisr batch`` arguments, from the Slicer logic
(in-process, or as the command line of a subprocess) and from the batch runner; what they
decide for an input is worked out once, by :func:`inference_backend.plan.plan_job`. Light to
import (the command line builds its parser from it before anything heavy loads).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inference_backend.registry import AUTO, parse_method_options

if TYPE_CHECKING:
    from inference_backend.imaging.volume import Grid

# --slice-thickness, as a multiple of the slice spacing: thinner leaves most of the tissue between
# the slices unmeasured, thicker overlaps more than any clinical protocol does
SLICE_THICKNESS_RANGE = (0.25, 2.0)
DICOM_THICKNESS = "DICOM (0018,0050)"


@dataclass
class JobOptions:
    """Everything that defines a job besides the input data."""

    method: str = AUTO
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
