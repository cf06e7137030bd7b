"""Whether a scan's output folder already holds the complete result of a request.

The batch plan asks it to skip finished scans; a worker asks it again before running, because a
task Ray retries after its actor died may find that the dead actor had already committed the
result (the actor was lost after the commit, before it could answer).
"""
from __future__ import annotations

import json
from pathlib import Path

from inference_backend.errors import MRISRError
from inference_backend.imaging.volume import Grid
from inference_backend.job import JobOptions
from inference_backend.outputs import REPORT_NAME
from inference_backend.plan import plan_job


def up_to_date(out_dir: Path, options: JobOptions, input_path: Path, lesion_mask: Path | None) -> bool:
    """The folder holds this exact request's complete result, as its plan would make it now:
    the same method (``auto``'s choice included), model, samples and output grid, the model
    installed now, and every file the report lists present at its size."""
    from inference_backend.pipeline import request_record

    try:
        report = json.loads((out_dir / REPORT_NAME).read_text())
        if report.get("request") != request_record(options, input_path, lesion_mask):
            return False
        plan = plan_job(Grid.from_description(report["input_grid"]), options).report()
    except (OSError, ValueError, KeyError, TypeError, MRISRError):
        return False
    if any(report.get(key) != plan[key] for key in ("method", "model", "samples", "output_grid")):
        return False
    entries = [*report.get("outputs", {}).values(), *report.get("sidecars", {}).values()]
    return all((out_dir / entry["file"]).is_file() and (out_dir / entry["file"]).stat().st_size == entry["bytes"] for entry in entries)
