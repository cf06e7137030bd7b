"""The scans of a batch, from a folder (by glob), a BIDS dataset (by suffix and entities) or a
CSV/TSV manifest (input, optional lesion mask, optional per-row options). Each scan's results
go to its own folder below the output root, at the place of its input in the source layout."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from inference_backend.bids import bids_scans, is_bids_dataset
from inference_backend.errors import InputError

VOLUME_PATTERNS = ("*.nii.gz", "*.nii", "*.nrrd", "*.nhdr")
MANIFEST_SUFFIXES = {".csv": ",", ".tsv": "\t"}
# manifest columns besides input / lesion_mask / id: the per-row options of the job
OPTION_COLUMNS = ("method", "scale", "spacing", "samples", "seed", "lesion_fill", "dilate_mask", "opt")


@dataclass(frozen=True)
class Scan:
    """One input of a batch. ``id`` is its path in the source layout without the image suffix
    (unique; its results go to ``<output root>/<id>``)."""

    id: str
    input: Path
    lesion_mask: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)


def scan_id(path: Path, root: Path) -> str:
    """The input's place below ``root`` without its image suffix; its file name where it lies
    elsewhere (a manifest's ``../scans/a.nii.gz``)."""
    from inference_backend.imaging.io import volume_stem

    resolved, folder = path.resolve(), root.resolve()
    relative = resolved.relative_to(folder) if resolved.is_relative_to(folder) else Path(resolved.name)
    return (relative.parent / volume_stem(relative.name)).as_posix()


def folder_scans(root: Path, pattern: str | None, exclude: Path | None = None) -> list[Scan]:
    """Volumes below ``root`` matching ``pattern`` (default: every NIfTI/NRRD file, recursively),
    none inside ``exclude`` (the output root, when it lies below) or a hidden folder."""
    patterns = (pattern,) if pattern else tuple(f"**/{p}" for p in VOLUME_PATTERNS)
    found = {path for p in patterns for path in root.glob(p) if path.is_file()}
    excluded = None if exclude is None else exclude.resolve()
    scans = []
    for path in sorted(found):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        scans.append(Scan(scan_id(path, root), path))
    return scans


def normalised_id(identifier: str, where: str) -> str:
    """A scan id as the relative folder its results go to: ``x``, ``x/`` and ``./x`` are one id;
    an absolute path, ``..`` or a hidden name (the output folder's own files) is refused."""
    text = identifier.strip().replace("\\", "/")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or not parts or ".." in parts or any(p.startswith(".") for p in parts):
        raise InputError(f"{where}: the id {identifier!r} is no folder below --out (no absolute path, '..' or hidden name)")
    return "/".join(parts)


def manifest_scans(manifest: Path) -> list[Scan]:
    """Rows of a CSV/TSV with a header: ``input`` (required), ``lesion_mask``, ``id`` and option
    columns (``method``, ``scale``, ``spacing``, ``samples``, ``seed``, ``lesion_fill``,
    ``dilate_mask``, ``opt`` as NAME=VALUE;NAME=VALUE). Relative paths are relative to the
    manifest. A row without an id gets its input's path below the manifest's folder, or its
    file name when the input lies elsewhere; every id is a folder below the output root."""
    delimiter = MANIFEST_SUFFIXES.get(manifest.suffix.lower())
    if delimiter is None:
        raise InputError(f"{manifest}: a manifest is a .csv or .tsv file")
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.DictReader(stream, delimiter=delimiter))
    except UnicodeDecodeError as error:
        raise InputError(f"{manifest}: is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except csv.Error as error:
        raise InputError(f"{manifest}: is not a valid {manifest.suffix[1:].upper()} file ({error})") from None
    if not rows or "input" not in rows[0]:
        raise InputError(f"{manifest}: needs a header row with an 'input' column (and one row per scan)")
    unknown = sorted(set(rows[0]) - {"input", "lesion_mask", "id", *OPTION_COLUMNS})
    if unknown:
        raise InputError(f"{manifest}: unknown column(s) {', '.join(unknown)}; known: input, lesion_mask, id, {', '.join(OPTION_COLUMNS)}")
    base = manifest.parent
    scans = []
    for number, row in enumerate(rows, start=2):
        if not (row.get("input") or "").strip():
            raise InputError(f"{manifest}, line {number}: the input is empty")
        path = base / row["input"].strip()
        mask = (row.get("lesion_mask") or "").strip()
        identifier = (row.get("id") or "").strip() or scan_id(path, base)
        overrides = {key: row[key].strip() for key in OPTION_COLUMNS if (row.get(key) or "").strip()}
        scans.append(Scan(normalised_id(identifier, f"{manifest}, line {number}"), path, base / mask if mask else None, overrides))
    return scans


def discover(source: Path, pattern: str | None = None, suffixes: tuple[str, ...] = (), filters: dict[str, str] | None = None,
             exclude: Path | None = None) -> tuple[list[Scan], bool]:
    """(the scans of ``source``, whether it is a BIDS dataset)."""
    if source.is_file():
        return manifest_scans(source), False
    if not source.is_dir():
        raise InputError(f"{source}: no such folder or manifest file")
    if is_bids_dataset(source) and pattern is None:
        paths = bids_scans(source, suffixes or ("T1w", "T2w", "FLAIR"), filters or {})
        return [Scan(scan_id(path, source), path) for path in paths], True
    if suffixes or filters:
        raise InputError(f"{source}: --suffix and --entity select scans of a BIDS dataset (it has no dataset_description.json)")
    return folder_scans(source, pattern, exclude), False


def check_unique(scans: list[Scan]) -> None:
    seen: dict[str, Path] = {}
    for scan in scans:
        if scan.id in seen:
            raise InputError(f"two scans would write to the same place {scan.id!r}: {seen[scan.id]} and {scan.input}; give them ids")
        seen[scan.id] = scan.input
