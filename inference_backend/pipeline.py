"""A super-resolution job, from volumes (in-process callers) or from files (CLI, batch, subprocess).

:func:`process` works on :class:`Volume` objects and returns volumes, every voxel finite;
:func:`run_job` adds reading, validation, and writing all outputs with ``report.json`` (each
file's size and SHA-256) into an output folder it holds alone (see
:mod:`inference_backend.outputs`). Neither modifies its input; a failed or cancelled job leaves
no output file behind, and a previous run's results are replaced only when asked.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference_backend import __version__, bids
from inference_backend.devices import configure_cpu_threads
from inference_backend.errors import InputError, MRISRError, ResourceError
from inference_backend.imaging.background import physical, zero_background
from inference_backend.imaging.io import (
    cast_like,
    check_storable,
    read_mask,
    read_volume,
    volume_stem,
    write_volume,
)
from inference_backend.imaging.validation import check_path_text, validate_intensities
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.job import JobOptions
from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.methods.lesion_fill import dilate_mask, fill_lesion, mask_on_grid
from inference_backend.operators.consistency_map import consistency_map
from inference_backend.outputs import (
    REPORT_NAME,
    claimed_folder,
    commit,
    file_record,
    previous_outputs,
    staging_folder,
    storage_errors,
)
from inference_backend.plan import JobPlan, plan_job
from inference_backend.progress import Progress
from inference_backend.protocol import OUTPUT_ROLES
from inference_backend.registry import MethodSpec


@dataclass
class JobOutputs:
    """The volumes a job produces and the report describing how."""

    sr: Volume
    variance: Volume | None
    lesion_filled: Volume | None
    report: dict[str, Any]
    samples: np.ndarray | None = None
    consistency: Volume | None = None  # where the result contradicts the acquired volume (noise SDs, input grid)

    def volumes(self) -> dict[str, Volume]:
        """The volumes made, by output role (protocol.OUTPUT_ROLES)."""
        made = {"sr": self.sr, "variance": self.variance, "lesion_filled": self.lesion_filled, "consistency": self.consistency}
        return {role: volume for role, volume in made.items() if volume is not None}


def process(
    volume: Volume, job: JobOptions | JobPlan, lesion_mask: np.ndarray | None = None, progress: Progress | None = None
) -> JobOutputs:
    """Super-resolve ``volume`` (never modified) as ``job`` asks (a request, planned here, or its
    plan); fill the lesion on the HR grid when a mask is given. Outputs with a NaN or Inf voxel
    are refused, never returned."""
    progress = progress or Progress()
    started = time.perf_counter()
    validate_intensities(volume, "input volume")
    plan = job if isinstance(job, JobPlan) else plan_job(volume.grid, job, volume.slice_thickness)
    options, spec = plan.request, plan.spec
    grown = None if lesion_mask is None else grown_mask(lesion_mask, volume.grid, options.dilate_mask_mm)
    device = _device_for(spec, options.device)
    threads = configure_cpu_threads() if spec.uses_gpu else None  # the torch methods

    with progress.stage("super-resolve", 0.0, 0.9 if lesion_mask is not None else 1.0):
        request = MethodRequest(
            volume=volume.with_array(volume.array.astype(np.float32)),
            refinement=plan.refinement,
            options=plan.method_options,
            progress=progress,
            samples=plan.samples,
            seed=options.seed,
            device=device,
            keep_samples=options.keep_samples,
        )
        result: MethodResult = run_guarded(spec.runner(), request)
    background = zero_background(volume, plan.target)
    sr = result.volume.with_array(physical(result.volume.array, volume, background))
    variance = None if result.variance is None else result.variance.with_array(physical(result.variance.array, volume, background))
    lesion_filled = None
    if grown is not None:
        with progress.stage("lesion fill", 0.9, 1.0):
            filled = fill_lesion(sr, mask_on_grid(grown, volume.grid, plan.target), options.lesion_fill)
            lesion_filled = filled.with_array(physical(filled.array, volume, background))
            progress.report(1.0, "lesion filled")
    named = {"super-resolved volume": sr, "variance map": variance, "lesion-filled volume": lesion_filled}
    check_finite(named, spec.name)
    consistency = consistency_map(sr, volume, plan.refinement, warn=spec.learned)
    report = {
        **plan.report(),
        "resolved_options": result.resolved,
        "seed": options.seed,
        "lesion_fill": None if lesion_mask is None else {"method": options.lesion_fill, "dilate_mm": options.dilate_mask_mm},
        "device": device,
        "cpu_threads": threads,
        "input_geometry_from": volume.provenance.get("geometry"),
        "consistency": None if consistency is None else consistency.summary,
        **({"input_warnings": volume.provenance["warnings"]} if volume.provenance.get("warnings") else {}),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "peak_memory_mb": peak_memory_mb(device),
        "versions": library_versions(),
    }
    return JobOutputs(sr, variance, lesion_filled, report, result.samples, None if consistency is None else consistency.residual)


def grown_mask(mask: np.ndarray, grid: Grid, dilate_mm: float) -> np.ndarray:
    """The lesion mask on ``grid``, grown by ``dilate_mm``; refused when it leaves no healthy
    voxel to fill the lesion from."""
    if mask.shape != grid.size:
        raise InputError(f"lesion mask shape {mask.shape} differs from the input's {grid.size}")
    grown = dilate_mask(mask, grid, dilate_mm)
    if grown.all():
        grown_by = f" grown by {dilate_mm:g} mm" if dilate_mm > 0 else ""
        raise InputError(f"the lesion mask{grown_by} covers the whole volume; there is no healthy tissue to fill it from")
    return grown


def check_finite(volumes: dict[str, Volume | None], method: str) -> None:
    """Refuse outputs with NaN/Inf voxels. The input's intensities were checked, so these are
    a method's failure (exit 1): reported, never written as a result."""
    for name, volume in volumes.items():
        bad = 0 if volume is None else int(np.count_nonzero(~np.isfinite(volume.array)))
        if bad:
            raise MRISRError(f"the {name} has {bad:,} NaN/Inf voxels ({method} failed on this input); nothing was written")


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

    if not spec.uses_gpu and requested.strip().lower() == "auto":
        return "cpu"  # no GPU to look for: PyTorch is not even loaded
    device = resolve_device(requested)
    return device if spec.uses_gpu else "cpu"


def peak_memory_mb(device: str) -> dict[str, float | None]:
    """Peak resident memory of this process (and of the GPU when one was used), in MiB; the
    CPU figure is None where the system does not report it (Windows)."""
    peak: dict[str, float | None] = {"cpu_rss": peak_resident_mb()}
    if device.startswith("cuda"):
        import torch

        peak["gpu_allocated"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def peak_resident_mb() -> float | None:
    """This process's peak resident memory in MiB (``resource`` is POSIX-only; macOS reports
    bytes where Linux reports KiB)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)


def library_versions() -> dict[str, str]:
    """The versions that made a result; torch's read from its metadata, not by importing it
    (a job without a network never loads it)."""
    import importlib.metadata

    import SimpleITK

    versions = {
        "mrisr": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "SimpleITK": SimpleITK.Version_VersionString(),
    }
    try:
        versions["torch"] = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        pass
    return versions


OUTPUT_FORMATS = ("nii.gz", "nrrd")
MAX_NAME_BYTES = 255  # a file name's limit on every common file system


def output_paths(input_path: str | os.PathLike, out_dir: str | os.PathLike, output_format: str = "nii.gz") -> dict[str, Path]:
    stem, out_dir = volume_stem(input_path), Path(out_dir)
    paths = {role: out_dir / f"{stem}_{role}.{output_format}" for role in OUTPUT_ROLES}
    return {**paths, "report": out_dir / REPORT_NAME}


def output_names(input_path: str | os.PathLike) -> list[str]:
    """Every output file name a run of this input can write, in every format."""
    return [
        path.name
        for output_format in OUTPUT_FORMATS
        for kind, path in output_paths(input_path, ".", output_format).items()
        if kind != "report"
    ]


def request_record(options: JobOptions, input_path: str | os.PathLike, lesion_mask_path: str | os.PathLike | None) -> dict[str, Any]:
    """What was asked of a run, as ``report.json`` keeps it: equal records, equal requests."""
    record = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in asdict(options).items()
        if key not in ("target", "keep_samples")
    }
    record["input"] = str(Path(input_path).resolve())
    record["lesion_mask"] = None if lesion_mask_path is None else str(Path(lesion_mask_path).resolve())
    return record


def run_job(
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: JobOptions,
    lesion_mask_path: str | os.PathLike | None = None,
    output_dtype: str = "float32",
    progress: Progress | None = None,
    output_format: str = "nii.gz",
    overwrite: bool = False,
    bids_source: str | None = None,
    batch_root: Path | None = None,
) -> dict[str, Path]:
    """Read, super-resolve, and write ``<name>_sr.nii.gz`` (+ variance, lesion-filled, report.json;
    or ``.nrrd`` with ``output_format``).

    The run holds ``out_dir`` alone from start to end. Results of an earlier run there are
    refused unless ``overwrite``, which replaces all of them (also those this run does not
    produce), so the folder holds this run's outputs only. Outputs are written to a staging
    folder and moved in when all exist; a failure or cancellation leaves ``out_dir`` as it was,
    and the final progress report (1.0) comes when the files are in place. ``report.json``
    records the request (:func:`request_record`), so a batch knows a result that is up to date.
    With ``bids_source`` (the input's path in a BIDS dataset) each output volume gets a JSON
    sidecar of its own; ``batch_root``: the output root of the batch that runs this job, recorded
    so that the root's later batches know the result as theirs to redo.
    """
    progress = progress or Progress()
    if output_dtype not in {"float32", "input"}:
        raise InputError(f"--output-dtype must be float32 or input; got {output_dtype!r}")
    if output_format not in OUTPUT_FORMATS:
        raise InputError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}; got {output_format!r}")
    paths = output_paths(input_path, out_dir, output_format)
    inputs = [Path(path) for path in (input_path, lesion_mask_path) if path is not None]
    check_output_paths(paths.values(), inputs)
    with claimed_folder(out_dir) as folder:
        previous = previous_outputs(folder, output_names(input_path), keep=inputs)
        if previous and not overwrite:
            raise InputError(
                f"--out {out_dir} already holds results ({', '.join(previous)}); add --overwrite to replace "
                "them, or choose another folder"
            )
        with progress.stage("read", 0.0, 0.05):
            volume = read_volume(input_path)
            check_storable(volume.grid, paths["sr"], f"{input_path}")
            mask = None if lesion_mask_path is None else read_mask(lesion_mask_path, volume.grid)
        with progress.stage("process", 0.05, 0.95):
            outputs = process(volume, options, mask, progress)
        with progress.stage("write", 0.95, 0.99):
            files = {}
            for key, value in outputs.volumes().items():
                if output_dtype == "input" and key in ("sr", "lesion_filled"):  # a variance or a residual stays float
                    value = value.with_array(cast_like(value.array, volume.array.dtype))
                files[key] = (paths[key].name, value)
            report = dict(outputs.report, input=str(Path(input_path).resolve()))
            report["request"] = request_record(options, input_path, lesion_mask_path)
            if lesion_mask_path is not None:
                report["lesion_mask"] = str(Path(lesion_mask_path).resolve())
            if batch_root is not None:
                report["batch_root"] = str(batch_root.resolve())
            sidecars = None if bids_source is None else {key: bids.sidecar(key, report, bids_source) for key in files}
            write_outputs(folder, files, report, previous, progress, sidecars)
    written = {key: paths[key] for key in files} | {"report": paths["report"]}
    progress.finish(f"wrote {len(written)} files to {out_dir}")
    return written


def check_output_paths(outputs: Iterable[Path], inputs: list[Path]) -> None:
    """Refuse outputs that would replace an input or land inside one (a DICOM series folder),
    and paths the file system cannot hold or the tools cannot pass on, before anything is made."""
    outputs = list(outputs)
    check_path_text(outputs[0].parent, "--out")
    for path in inputs:
        check_path_text(path, "the input")
    taken = {path.resolve(): path for path in inputs}
    for output in outputs:
        if len(os.fsencode(output.name)) > MAX_NAME_BYTES:
            raise InputError(
                f"the output name {output.name[:40]}... would be {len(os.fsencode(output.name))} bytes long, above the "
                f"{MAX_NAME_BYTES} a file name may have; give the input a shorter name"
            )
        resolved = output.resolve()
        for place, given in taken.items():
            if resolved == place or resolved.is_relative_to(place):
                raise InputError(f"an output ({output.name}) would replace or land inside the input {given}; choose another --out folder")


def write_outputs(
    folder: Path,
    files: dict[str, tuple[str, Volume]],
    report: dict[str, Any],
    previous: list[str],
    progress: Progress,
    sidecars: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Write ``files`` (key -> (file name, volume)), their ``sidecars`` (key -> JSON, written as
    ``<file stem>.json``) and the report, listing each file's size and SHA-256 under
    ``outputs`` (and ``sidecars``), into a staging folder; then commit them into ``folder`` in
    place of the ``previous`` outputs."""
    with storage_errors(folder), staging_folder(folder) as staging:
        records, sidecar_records = {}, {}
        for index, (key, (name, volume)) in enumerate(files.items(), start=1):
            write_volume(volume, staging / name)
            records[key] = file_record(staging / name)
            if sidecars is not None:
                sidecar = staging / (volume_stem(name) + ".json")
                sidecar.write_text(json.dumps(sidecars[key], indent=2) + "\n")
                sidecar_records[key] = file_record(sidecar)
            progress.report(index / len(files), f"wrote {name}")
        if sidecar_records:
            report = dict(report, sidecars=sidecar_records)
        (staging / REPORT_NAME).write_text(json.dumps(dict(report, outputs=records), indent=2) + "\n")
        progress.check_cancelled()
        commit(staging, folder, previous)
