"""ITK's resamplings in a run, recorded on one machine and served to the same run on another.

A GPU machine may lack SimpleITK (benchmarks/gpu_check.py). The jobs ask ITK only to resample
arrays that every machine computes alike from the same input (the B-spline start, the
background indicator, the scan adaptation's up-sampling matrices), so the recording machine
keeps each answer under a digest of its question and the other is served that answer. A
question the record lacks stops the job: nothing is answered approximately.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Iterator

import numpy as np

from inference_backend.imaging import resampling
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.progress import Progress


def grid_record(grid: Grid) -> dict:
    """The grid as JSON (its fields are plain numbers)."""
    return dataclasses.asdict(grid)


def grid_from(record: dict) -> Grid:
    return Grid(**record)


def question_digest(volume: Volume, grid: Grid, kind: str) -> str:
    key = hashlib.sha256(np.ascontiguousarray(volume.array, dtype=np.float32).tobytes())
    key.update(json.dumps([grid_record(volume.grid), grid_record(grid), kind]).encode())
    return key.hexdigest()


@contextlib.contextmanager
def recorded_resampling(answers: dict[str, np.ndarray], record: bool) -> Iterator[None]:
    """Within: every module's ``resample`` (those imported inside too) adds ITK's answers to
    ``answers`` (``record``) or serves them from it; ITK's comes back on exit."""
    original = resampling.resample

    def resample(volume: Volume, grid: Grid, kind: str = "bspline", progress: Progress | None = None) -> Volume:
        key = question_digest(volume, grid, kind)
        if record:
            answers.setdefault(key, original(volume, grid, kind, progress).array)
        elif key not in answers:
            raise LookupError(f"the record holds no {kind} resampling of this volume onto {grid.size}")
        return Volume(answers[key].copy(), grid)

    def rebind(old: Callable[..., Volume], new: Callable[..., Volume]) -> None:
        for module in list(sys.modules.values()):
            if getattr(module, "resample", None) is old:
                module.resample = new

    rebind(original, resample)
    resampling.bspline_upsampling_matrix.cache_clear()  # it resamples: answers cached before would bypass the record
    try:
        yield
    finally:
        rebind(resample, original)
        resampling.bspline_upsampling_matrix.cache_clear()  # nor may the record's stay cached after
