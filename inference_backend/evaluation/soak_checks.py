"""What the soak checks (``benchmarks/soak.py``, ``benchmarks/batch_soak.py``) hold an output
root to: a folder with a report holds exactly the files it lists, of their size and SHA-256,
finite when read back; no lock or staging folder outlives the runs."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.outputs import LOCK_NAME, REPORT_NAME, STAGING_PREFIX


def make_inputs(folder: Path, rng: np.random.Generator, names: tuple[str, ...] = ("axial.nii.gz", "axial.nrrd", "oblique.nii.gz")) -> list[Path]:
    """Tiny volumes with structure (32x32x12, 3 mm slices), one per name; names with
    ``oblique`` get a random rotation."""
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))
    paths = []
    for name in names:
        array = ndimage.gaussian_filter(rng.normal(size=(32, 32, 12)), 1.5).astype(np.float32) * 400 + 300
        direction = rotation if "oblique" in name else np.eye(3)
        paths.append(folder / name)
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        write_volume(Volume(array, Grid(array.shape, (1.0, 1.0, 3.0), (-16.0, -16.0, -18.0), direction)), paths[-1])
    return paths


def check_folder(folder: Path) -> tuple[str, dict, int]:
    """(state, the report (empty without one), files verified). States: complete, no report,
    corrupt (a listed file missing, of another size or SHA-256, unreadable or non-finite, or an
    output the report does not list)."""
    report_path = folder / REPORT_NAME
    if not report_path.exists():
        return "no report", {}, 0
    report = json.loads(report_path.read_text())
    listed = {record["file"]: record for record in [*report["outputs"].values(), *report.get("sidecars", {}).values()]}
    visible = {p.name for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()}
    if visible != {*listed, REPORT_NAME}:
        return "corrupt", report, 0
    for name, record in listed.items():
        data = (folder / name).read_bytes()
        if len(data) != record["bytes"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
            return "corrupt", report, 0
        if name.endswith((".nii.gz", ".nrrd")) and not np.isfinite(read_volume(folder / name).array).all():
            return "corrupt", report, 0
    return "complete", report, len(listed)


def leftovers(root: Path) -> dict[str, list[Path]]:
    return {"staging": sorted(root.rglob(STAGING_PREFIX + "*")), "locks": sorted(root.rglob(LOCK_NAME))}


def digests(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(path.read_bytes()).hexdigest() for path in paths]


def tree_digest(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file below ``root`` (none below ``skip``) with its SHA-256."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not (skip is not None and path.is_relative_to(skip))
    }
