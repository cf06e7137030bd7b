"""Whether a scan's output folder already holds the complete result of a request.

The batch plan asks it to skip finished scans; a worker asks it again before running, because a
task Ray retries after its actor died may find that the dead actor had already committed the
result (the actor was lost after the commit, before it could answer).
"""
from __future__ import annotations

import json
from pathlib import Path

from inference_backend.job import JobOptions
from inference_backend.outputs import REPORT_NAME
from inference_backend.registry import get_method


def up_to_date(out_dir: Path, options: JobOptions, input_path: Path, lesion_mask: Path | None) -> bool:
    """The folder holds this exact request's complete result, made with the model installed now."""
    from inference_backend.pipeline import request_record

    try:
        report = json.loads((out_dir / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return False
    if report.get("request") != request_record(options, input_path, lesion_mask):
        return False
    if (report.get("model") or {}).get("sha256") != installed_model_sha256(options):
        return False
    entries = [*report.get("outputs", {}).values(), *report.get("sidecars", {}).values()]
    return all((out_dir / entry["file"]).is_file() and (out_dir / entry["file"]).stat().st_size == entry["bytes"] for entry in entries)


def installed_model_sha256(options: JobOptions) -> str | None:
    """The SHA-256 of the model a job would load now (None for a method without one)."""
    from inference_backend.assets import find_model, read_card

    spec = get_method(options.method)
    name = options.method_options.get("model") or (spec.weights[0] if spec.weights else None)
    found = None if name is None else find_model(name)
    return None if found is None else read_card(found[1])["sha256"]
