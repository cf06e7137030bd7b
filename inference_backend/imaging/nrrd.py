"""What a NRRD header may make the reader do, checked before ITK reads it.

A detached header (``.nhdr``, or a ``.nrrd`` with a ``data file`` field) names the files that
hold its voxels, and ITK follows any name: ``../../etc/passwd``, an absolute path, a FIFO that
never ends. Here every data file must be a regular file in the header's folder or below it
(after resolving links), as a user who names a header expects. The origin and the axis
vectors must be numbers: ITK turns some non-numbers into 0 and reads on.
"""
from __future__ import annotations

import math
import re
import stat
from pathlib import Path

from inference_backend.errors import InputError

MAX_HEADER_BYTES = 1 << 20  # a NRRD header is text of a few hundred bytes; its end is a blank line
MAX_DATA_FILES = 100_000  # a data file per slice at most; more is no volume of a scanner
NUMBER = re.compile(r"[-+]?[^,()\s]+")


def header_fields(path: Path) -> tuple[dict[str, str], list[str]]:
    """(the header's fields, lower-case names without spaces -> value; the lines after a
    ``data file: LIST`` field, which name the data files)."""
    with open(path, "rb") as stream:
        text = stream.read(MAX_HEADER_BYTES).decode("latin-1")
    lines = text.split("\n")
    if not lines[0].startswith("NRRD"):
        return {}, []
    fields: dict[str, str] = {}
    for index, line in enumerate(lines[1:], start=1):
        line = line.rstrip("\r")
        if not line.strip():
            break  # the end of the header; the voxels follow in an attached file
        if line.startswith("#") or ":=" in line:
            continue  # a comment, or a key/value pair (free text, no field)
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.replace(" ", "").lower()
        fields[key] = value.strip()
        if key == "datafile" and fields[key].split()[:1] == ["LIST"]:
            return fields, [entry.rstrip("\r") for entry in lines[index + 1 :] if entry.strip()]
    return fields, []


def data_file_names(value: str, listed: list[str]) -> list[str]:
    """The names a ``data file`` field stands for: one name, a ``LIST`` (the lines after it), or
    a printf-style pattern with its first, last and step (``slice%03d.raw 1 40 1``)."""
    parts = value.split()
    if parts[:1] == ["LIST"]:
        return listed
    if "%" in value and len(parts) >= 4:
        try:
            first, last, step = (int(p) for p in parts[1:4])
        except ValueError:
            return [value]
        if step == 0 or (last - first) // step + 1 > MAX_DATA_FILES:
            raise InputError(f"data file pattern {value!r} names no or too many files")
        try:
            return [parts[0] % number for number in range(first, last + (1 if step > 0 else -1), step)]
        except (TypeError, ValueError):
            raise InputError(f"data file pattern {value!r} is not a valid pattern") from None
    return [value]


def check_data_files(path: Path, value: str, listed: list[str]) -> None:
    """Every data file lies in the header's folder or below it and is a regular file."""
    folder = path.resolve().parent
    for name in data_file_names(value, listed):
        target = (folder / name).resolve()
        if not target.is_relative_to(folder):
            raise InputError(
                f"{path}: its data file {name!r} lies outside the header's folder {folder}; a detached NRRD's data "
                "files must lie beside its header (or below it)"
            )
        try:
            mode = target.stat().st_mode
        except OSError:
            raise InputError(f"{path}: its data file {name!r} is not found beside the header") from None
        if not stat.S_ISREG(mode):
            raise InputError(f"{path}: its data file {name!r} is not a regular file (a pipe, device or folder)")


def vectors_problem(text: str) -> str | None:
    """Why the numbers of an origin or direction field are unusable, or None (``none`` entries
    stand for non-spatial axes)."""
    numbers = [token for token in NUMBER.findall(text) if token.lower() != "none"]
    try:
        values = [float(token) for token in numbers]
    except ValueError:
        return "holds entries that are not numbers"
    if not all(math.isfinite(value) for value in values):
        return "holds entries that are not finite numbers"
    return None


def check_nrrd_header(path: Path) -> None:
    """Refuse a header whose data files lie outside its folder or are not regular files, or
    whose origin or axis vectors are not finite numbers."""
    try:
        fields, listed = header_fields(path)
    except OSError:
        return  # unreadable: ITK's own read says so
    if "datafile" in fields:
        check_data_files(path, fields["datafile"], listed)
    for key, what in (("spaceorigin", "origin"), ("spacedirections", "space directions")):
        problem = vectors_problem(fields[key]) if key in fields else None
        if problem:
            raise InputError(f"{path}: the header's {what} {fields[key]!r} {problem}; the header defines no position")
