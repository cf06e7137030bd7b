"""A super-resolution job, from volumes (in-process callers) or from files (CLI, batch, subprocess).

:func:`process` works on :class:`Volume` objects and returns volumes; :func:`run_job` adds
reading, validation, atomic writing of all outputs and ``report.json``. Neither modifies its
input; a failed or cancelled job leaves no output file behind.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference_backend import __version__
from inference_backend.errors import InputError, ResourceError
from inference_backend.io import (
    cast_like,
    check_voxel_budget,
    read_mask,
    read_volume,
    validate_intensities,
    volume_stem,
    write_volume,
)
from inference_backend.lesion_fill import FILLS, dilate_mask, fill_lesion, mask_on_grid
from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.progress import Progress
from inference_backend.registry import MethodSpec, get_method
from inference_backend.target import target_grid
from inference_backend.volume import Grid, Volume

MAX_SAMPLES = 64


@dataclass
class JobOptions:
    """Everything that defines a job besides the input data."""

    method: str = "interpolation"
    method_options: dict[str, Any] = field(default_factory=dict)
    scale: tuple[float, float, float] | None = None
    spacing: tuple[float, float, float] | None = None
    target: Grid | None = None  # an explicit output grid (e.g. a reference volume's), instead of scale/spacing
    samples: int = 1
    seed: int = 0
    device: str = "auto"
    max_voxels: int | None = None
    keep_samples: bool = False
    lesion_fill: str = "neighbourhood"  # see inference_backend.lesion_fill.FILLS
    dilate_mask_mm: float = 0.0


@dataclass
class JobOutputs:
    """The volumes a job produces and the report describing how."""

    sr: Volume
    variance: Volume | None
    lesion_filled: Volume | None
    report: dict[str, Any]
    samples: np.ndarray | None = None


def process(
    volume: Volume, options: JobOptions, lesion_mask: np.ndarray | None = None, progress: Progress | None = None
) -> JobOutputs:
    """Super-resolve ``volume`` (never modified); fill the lesion on the HR grid when a mask is given."""
    progress = progress or Progress()
    started = time.perf_counter()
    spec = get_method(options.method)
    method_options = spec.parse_options(options.method_options)
    if not 1 <= options.samples <= MAX_SAMPLES:
        raise InputError(f"--samples must be between 1 and {MAX_SAMPLES}; got {options.samples}")
    validate_intensities(volume, "input volume")
    target = options.target or target_grid(volume.grid, scale=options.scale, spacing=options.spacing)
    check_voxel_budget(target, "the output", options.max_voxels)
    if lesion_mask is not None and lesion_mask.shape != volume.grid.size:
        raise InputError(f"lesion mask shape {lesion_mask.shape} differs from the input's {volume.grid.size}")
    if options.lesion_fill not in FILLS:
        raise InputError(f"--lesion-fill must be one of {', '.join(FILLS)}; got {options.lesion_fill!r}")
    if options.dilate_mask_mm < 0:
        raise InputError(f"--dilate-mask must be >= 0 mm; got {options.dilate_mask_mm}")
    device = _device_for(spec, options.device)

    with progress.stage("super-resolve", 0.0, 0.9 if lesion_mask is not None else 1.0):
        request = MethodRequest(
            volume=volume.with_array(volume.array.astype(np.float32)),
            target=target,
            options=method_options,
            progress=progress,
            samples=options.samples,
            seed=options.seed,
            device=device,
            keep_samples=options.keep_samples,
        )
        result: MethodResult = run_guarded(spec.runner(), request)
    lesion_filled = None
    if lesion_mask is not None:
        with progress.stage("lesion fill", 0.9, 1.0):
            grown = dilate_mask(lesion_mask, volume.grid, options.dilate_mask_mm)
            lesion_filled = fill_lesion(result.volume, mask_on_grid(grown, volume.grid, target), options.lesion_fill)
            progress.report(1.0, "lesion filled")
    report = {
        "method": spec.name,
        "options": method_options,
        "resolved_options": result.resolved,
        "model": None if result.model is None else {"name": result.model.name, "sha256": result.model.sha256},
        "samples": options.samples,
        "seed": options.seed,
        "lesion_fill": None if lesion_mask is None else {"method": options.lesion_fill, "dilate_mm": options.dilate_mask_mm},
        "device": device,
        "input_grid": volume.grid.describe(),
        "output_grid": target.describe(),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "peak_memory_mb": peak_memory_mb(device),
        "versions": library_versions(),
    }
    return JobOutputs(result.volume, result.variance, lesion_filled, report, result.samples)


def run_guarded(runner, request: MethodRequest) -> MethodResult:
    """Run a method, turning out-of-memory failures into a message users can act on."""
    try:
        return runner(request)
    except MemoryError as error:
        raise ResourceError("out of memory: use a coarser target, fewer samples or a smaller batch_size") from error
    except RuntimeError as error:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if "out of memory" not in str(error).lower():
            raise
        raise ResourceError(
            f"the {request.device} device ran out of memory: use --device cpu, fewer samples or a smaller batch_size"
        ) from error


def _device_for(spec: MethodSpec, requested: str) -> str:
    """The resolved device (a request for a missing GPU fails for any method); CPU-only methods use the CPU."""
    from inference_backend.devices import resolve_device

    device = resolve_device(requested)
    return device if spec.uses_gpu else "cpu"


def peak_memory_mb(device: str) -> dict[str, float]:
    """Peak resident memory of this process (and of the GPU when one was used), in MiB."""
    peak = {"cpu_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.startswith("cuda"):
        import torch

        peak["gpu_allocated"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def library_versions() -> dict[str, str]:
    import SimpleITK

    versions = {
        "mrisr": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "SimpleITK": SimpleITK.Version_VersionString(),
    }
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return versions


OUTPUT_FORMATS = ("nii.gz", "nrrd")


def output_paths(input_path: str | os.PathLike, out_dir: str | os.PathLike, output_format: str = "nii.gz") -> dict[str, Path]:
    stem, out_dir = volume_stem(input_path), Path(out_dir)
    return {
        "sr": out_dir / f"{stem}_sr.{output_format}",
        "variance": out_dir / f"{stem}_variance.{output_format}",
        "lesion_filled": out_dir / f"{stem}_lesion_filled.{output_format}",
        "report": out_dir / "report.json",
    }


def run_job(
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: JobOptions,
    lesion_mask_path: str | os.PathLike | None = None,
    output_dtype: str = "float32",
    progress: Progress | None = None,
    output_format: str = "nii.gz",
) -> dict[str, Path]:
    """Read, super-resolve, and write ``<name>_sr.nii.gz`` (+ variance, lesion-filled, report.json;
    or ``.nrrd`` with ``output_format``).

    Outputs are first written to a hidden folder inside ``out_dir`` and moved into place only
    when all of them exist, so a failure or cancellation leaves ``out_dir`` as it was.
    """
    progress = progress or Progress()
    if output_dtype not in {"float32", "input"}:
        raise InputError(f"--output-dtype must be float32 or input; got {output_dtype!r}")
    if output_format not in OUTPUT_FORMATS:
        raise InputError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}; got {output_format!r}")
    paths = output_paths(input_path, out_dir, output_format)
    if Path(input_path).resolve() in {p.resolve() for p in paths.values()}:
        raise InputError(f"an output would overwrite the input {input_path}; choose another --out folder")
    with progress.stage("read", 0.0, 0.05):
        volume = read_volume(input_path)
        mask = None if lesion_mask_path is None else read_mask(lesion_mask_path, volume.grid)
    with progress.stage("process", 0.05, 0.95):
        outputs = process(volume, options, mask, progress)
    with progress.stage("write", 0.95, 1.0):
        volumes = {"sr": outputs.sr, "variance": outputs.variance, "lesion_filled": outputs.lesion_filled}
        written = {key: paths[key] for key, value in volumes.items() if value is not None}
        report = dict(outputs.report, input=str(Path(input_path).resolve()), outputs={k: p.name for k, p in written.items()})
        if lesion_mask_path is not None:
            report["lesion_mask"] = str(Path(lesion_mask_path).resolve())
        with staged_output_dir(out_dir) as staging:
            for index, key in enumerate(written, start=1):
                value = volumes[key]
                if output_dtype == "input" and key != "variance":
                    value = value.with_array(cast_like(value.array, volume.array.dtype))
                write_volume(value, staging / paths[key].name)
                progress.report(index / len(written), f"wrote {paths[key].name}")
            (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            progress.check_cancelled()
    written["report"] = paths["report"]
    progress.finish(f"wrote {len(written)} files to {out_dir}")
    return written


class staged_output_dir:
    """Context manager: a hidden staging folder whose files move into ``out_dir`` on success."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.created_out_dir = False
        self.staging: Path | None = None

    def __enter__(self) -> Path:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"--out {self.out_dir} exists and is not a folder")
        if not self.out_dir.exists():
            self.out_dir.mkdir(parents=True)
            self.created_out_dir = True
        self.staging = Path(tempfile.mkdtemp(prefix=".mrisr-partial-", dir=self.out_dir))
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.staging is not None
        try:
            if exc_type is None:
                for item in sorted(self.staging.iterdir()):
                    os.replace(item, self.out_dir / item.name)
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
            if exc_type is not None and self.created_out_dir and not any(self.out_dir.iterdir()):
                self.out_dir.rmdir()
