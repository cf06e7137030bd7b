"""The line protocol between a job and the program that runs it (the Slicer module, a script,
a cluster scheduler), one place for both sides.

With ``--progress jsonl`` a command writes one JSON object per line on stdout: progress
(``{"fraction", "stage", "message"}``), a batch's finished scans (``{"event": "scan", "done",
"total", ...the scan's summary row}``) and, last, a failure (``{"error", "exit_code"}``). The
exit status says whose problem a failure is. A caller decodes the lines into these records and
turns an error record back into the exception it stands for: nothing matches message text.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_backend.errors import AssetError, Cancelled, InputError, MRISRError, ResourceError

ProgressCallback = Callable[[float, str, str], None]  # (fraction of the job, stage, message)

# The volumes a job makes, by role: report.json's "outputs" keys, the output file names'
# suffixes (<input>_<role>.nii.gz) and the Slicer module's output nodes.
OUTPUT_ROLES = ("sr", "variance", "lesion_filled", "consistency")

# Exit statuses besides those of the errors (errors.py: 1 internal, 2 input, 3 weights, 4 resources, 130 cancelled)
BATCH_FAILURES_STATUS = 5  # mrisr batch ran every scan it could, and some failed: see its summary
BROKEN_PIPE_STATUS = 128 + 13  # what a shell reports for a process ended by SIGPIPE
ERRORS_BY_STATUS: dict[int, type[MRISRError]] = {kind.exit_code: kind for kind in (InputError, AssetError, ResourceError, Cancelled)}


@dataclass(frozen=True)
class ProgressLine:
    fraction: float
    stage: str
    message: str

    def encode(self) -> str:
        return json.dumps({"fraction": round(self.fraction, 5), "stage": self.stage, "message": self.message})


@dataclass(frozen=True)
class ScanLine:
    """A batch's scan that ended: how many have, of how many, and its summary row."""

    done: int
    total: int
    row: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps({"event": "scan", "done": self.done, "total": self.total, **self.row})


@dataclass(frozen=True)
class ErrorLine:
    message: str
    exit_code: int

    def encode(self) -> str:
        return json.dumps({"error": self.message, "exit_code": self.exit_code})

    @classmethod
    def of(cls, error: MRISRError) -> ErrorLine:
        return cls(str(error), error.exit_code)

    def exception(self) -> MRISRError:
        """The error this line reports, as the class its exit status stands for."""
        kind = ERRORS_BY_STATUS.get(self.exit_code, MRISRError)
        return kind(self.message) if kind is not Cancelled else Cancelled(self.message)


Line = ProgressLine | ScanLine | ErrorLine


def decode(text: str) -> Line | None:
    """The record a line holds; None for anything else (a library's stray output)."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    try:
        if "error" in record:
            return ErrorLine(str(record["error"]), int(record["exit_code"]))
        if record.get("event") == "scan":
            row = {key: value for key, value in record.items() if key not in ("event", "done", "total")}
            return ScanLine(int(record["done"]), int(record["total"]), row)
        return ProgressLine(float(record["fraction"]), str(record["stage"]), str(record["message"]))
    except (KeyError, TypeError, ValueError):
        return None
