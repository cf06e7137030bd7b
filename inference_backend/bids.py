"""The little of BIDS a batch needs: which files are anatomical scans of which suffix and
entities, and what a derivative dataset says about itself and about each output."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from inference_backend import __version__

BIDS_VERSION = "1.10.0"
DATATYPES = ("anat",)  # where structural scans live
NOT_RAW = ("derivatives", "sourcedata", "code", "stimuli")  # folders of a dataset that hold no raw scans
ENTITY = re.compile(r"^([a-zA-Z0-9]+)-([a-zA-Z0-9]+)$")


def is_bids_dataset(folder: Path) -> bool:
    return (folder / "dataset_description.json").is_file()


def parse_name(name: str) -> tuple[dict[str, str], str] | None:
    """``sub-01_ses-2_run-1_T2w.nii.gz`` -> ({"sub": "01", "ses": "2", "run": "1"}, "T2w");
    None for a name that is not a BIDS scan name."""
    stem = name.split(".", 1)[0]
    *pairs, suffix = stem.split("_")
    entities = {}
    for pair in pairs:
        match = ENTITY.match(pair)
        if match is None:
            return None
        entities[match.group(1)] = match.group(2)
    if "sub" not in entities or not suffix.isalnum():
        return None
    return entities, suffix


def bids_scans(root: Path, suffixes: tuple[str, ...], filters: dict[str, str]) -> list[Path]:
    """The anatomical NIfTI scans of ``root`` with one of ``suffixes`` whose entities match
    ``filters`` (e.g. {"acq": "axial"}), in a stable order."""
    found = []
    for path in sorted(root.glob("sub-*/**/*.nii*")):
        relative = path.relative_to(root)
        if relative.parts[0] in NOT_RAW or path.parent.name not in DATATYPES:
            continue
        parsed = parse_name(path.name)
        if parsed is None:
            continue
        entities, suffix = parsed
        if suffix in suffixes and all(entities.get(key) == value for key, value in filters.items()):
            found.append(path)
    return found


def derivative_description(source: Path) -> dict[str, Any]:
    """``dataset_description.json`` of the output root, a BIDS derivative dataset."""
    return {
        "Name": "MRISuperResolution: super-resolved scans",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "mrisr", "Version": __version__, "Description": "MRISuperResolution backend, mrisr batch"}],
        "SourceDatasets": [{"URL": source.resolve().as_uri()}],
    }


def sidecar(role: str, report: dict[str, Any], source: str) -> dict[str, Any]:
    """The JSON sidecar of one output: what it is and exactly how it was made."""
    descriptions = {
        "sr": "super-resolved volume",
        "variance": "per-voxel variance of the samples (uncertainty)",
        "lesion_filled": "super-resolved volume with the lesion filled",
        "consistency": "the super-resolved volume through the acquisition model minus the acquired scan, in noise SDs, on the scan's grid",
    }
    model = report.get("model") or {}
    return {
        "Description": descriptions[role],
        "Sources": [f"bids:raw:{source}"],
        "Method": report["method"],
        "MethodOptions": report["options"],
        "ResolvedOptions": report.get("resolved_options", {}),
        "Model": model.get("name"),
        "ModelSHA256": model.get("sha256"),
        "Samples": report["samples"],
        "Seed": report["seed"],
        "OutputGrid": report["output_grid"],
        "SoftwareVersions": report.get("versions", {}),
    }
