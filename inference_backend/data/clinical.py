"""The real clinical thick-slice scans of the development data (``clinical/``): which patients
train and which are held out, and their acquired slices as training images.

A routine 2D acquisition is high-resolution within its slices (0.5-0.9 mm) and coarse across
them (3-4 mm). Its in-plane slices are real FLAIR, T2 and T1 texture, with the scanner's own
noise and shading: degraded along one in-plane axis they make self-supervised (HR, LR) pairs
of the contrasts that thick slices are mostly acquired in (the idea behind SMORE and ECLARE).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference_backend.imaging.io import read_volume
from inference_backend.imaging.normalization import IntensityNormalizer
from inference_backend.methods.scan_adaptation import in_slice_images

# Patients never trained on: every clinical benchmark figure quoted as held out is theirs.
HELD_OUT_PATIENTS = ("p03", "p12")
TRAINING_PATIENTS = ("p01", "p04", "p09", "p19", "p20")
SCAN_NAME = re.compile(r"oms_long_(?P<patient>p\d+)_study(?P<visit>\d+)_(?P<contrast>FLAIR|T1W|T2W)")


@dataclass(frozen=True)
class ClinicalScan:
    path: Path
    patient: str
    visit: int
    contrast: str  # FLAIR, T1W or T2W

    @property
    def name(self) -> str:
        return f"{self.patient}_v{self.visit}_{self.contrast}"


def clinical_scans(data_dir: Path, patients: tuple[str, ...] | None = None, contrasts: tuple[str, ...] | None = None) -> list[ClinicalScan]:
    """The clinical scans of ``data_dir / "clinical"`` (of these patients and contrasts), sorted by name."""
    scans = []
    for path in sorted((data_dir / "clinical").glob("oms_long_*.nii.gz")):
        match = SCAN_NAME.match(path.name)
        if match is None:
            continue
        scan = ClinicalScan(path, match["patient"], int(match["visit"]), match["contrast"])
        if (patients is None or scan.patient in patients) and (contrasts is None or scan.contrast in contrasts):
            scans.append(scan)
    return scans


def acquired_slices(path: Path) -> list[np.ndarray]:
    """The scan's in-plane slices that hold tissue, normalised as inference normalises the
    whole scan (the slice axis is the coarsest)."""
    volume = read_volume(path)
    array = volume.array.astype(np.float32)
    slice_axis = int(np.argmax(volume.grid.spacing))
    return in_slice_images(IntensityNormalizer.fit(array).forward(array), slice_axis)


def in_plane_slice_source(scans: list[ClinicalScan]):
    """A training source drawing one acquired slice of one of ``scans`` (randomly mirrored);
    2D images: the pair stream degrades them along one of their axes."""
    images = [image for scan in scans for image in acquired_slices(scan.path)]
    if not images:
        raise ValueError("no clinical slices with tissue in the given scans")

    def draw(rng: np.random.Generator) -> np.ndarray:
        image = images[rng.integers(len(images))]
        return np.ascontiguousarray(image[::-1] if rng.uniform() < 0.5 else image)

    return draw
