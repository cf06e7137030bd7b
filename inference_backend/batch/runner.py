"""A batch: which scans still need running, running them on an engine, and the summary.

A scan is up to date (skipped) when its folder holds a ``report.json`` whose request equals
this batch's for it, made with the model installed now, and every file it lists is there with
its size; a result made for another request (changed options, a new model) is replaced. A scan that fails is recorded with its exit code and message and the batch goes on;
``retry_failed`` runs only the scans the previous batch recorded as failed. The summary
(``batch.json``, ``summary.tsv``, ``summary.md`` in the output root) is rewritten after every
scan, so a stopped batch leaves an exact one, and the same command resumes.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from inference_backend import bids
from inference_backend.batch.completed import up_to_date
from inference_backend.batch.discovery import Scan
from inference_backend.batch.engines import BatchControl, Engine
from inference_backend.batch.worker import ScanResult, ScanTask
from inference_backend.errors import InputError, MRISRError
from inference_backend.imaging.target import parse_triplet
from inference_backend.job import JobOptions
from inference_backend.outputs import REPORT_NAME, claimed_folder, storage_errors
from inference_backend.registry import parse_method_options

STATE_NAME = "batch.json"
ROOT_FILES = (STATE_NAME, "summary.tsv", "summary.md")  # what a batch writes into its output root
SUMMARY_COLUMNS = ("scan", "status", "exit_code", "seconds", "peak_memory_mb", "outputs", "message")
BatchEvent = Callable[[ScanResult, int, int], None]  # (result, scans ended, scans to run)


@dataclass
class BatchSettings:
    out_root: Path
    options: JobOptions
    overwrite: bool = False
    retry_failed: bool = False
    output_format: str = "nii.gz"
    bids_root: Path | None = None  # the scans come from this BIDS dataset: the output root is its derivative


@dataclass
class BatchSummary:
    results: dict[str, ScanResult] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result.status] = counts.get(result.status, 0) + 1
        return counts


def scan_options(base: JobOptions, overrides: dict[str, str]) -> JobOptions:
    """The batch's options with a manifest row's own: a row's scale or spacing replaces both.
    A value of the wrong kind is this row's input error, not the batch's end."""
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("scale", "spacing"):
            changes.update(scale=None, spacing=None)
            changes[key] = parse_triplet(value, key)
        elif key in ("samples", "seed"):
            changes[key] = _number(key, value, int)
        elif key == "dilate_mask":
            changes["dilate_mask_mm"] = _number(key, value, float)
        elif key == "opt":
            changes["method_options"] = {**base.method_options, **parse_method_options(value.split(";"))}
        else:
            changes[key] = value
    return replace(base, **changes)


def _number(column: str, value: str, kind: type) -> Any:
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InputError(f"the manifest's {column} {value!r} is not {what}") from None


def previous_results(out_root: Path) -> dict[str, ScanResult]:
    try:
        return {row["scan_id"]: ScanResult(**row) for row in json.loads((out_root / STATE_NAME).read_text())["scans"]}
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or not one a batch wrote: nothing to resume from
        return {}


def plan(scans: list[Scan], settings: BatchSettings, previous: dict[str, ScanResult]) -> tuple[list[ScanTask], dict[str, ScanResult]]:
    """(the tasks to run, the results of the scans skipped)."""
    tasks, skipped = [], {}
    planned_at = time.time()
    for scan in scans:
        try:
            options = scan_options(settings.options, scan.overrides)
            out_dir = confined(settings.out_root, scan.id)
        except MRISRError as error:
            skipped[scan.id] = ScanResult(scan.id, "failed", error.exit_code, str(error))
            continue
        source = None if settings.bids_root is None else scan.input.relative_to(settings.bids_root).as_posix()
        task = ScanTask(scan.id, scan.input, out_dir, options, scan.lesion_mask, settings.overwrite,
                        settings.output_format, source, planned_at, settings.out_root)  # fmt: skip
        last = previous.get(scan.id)
        if settings.retry_failed and (last is None or last.status != "failed"):
            if last is not None:
                skipped[scan.id] = last
            continue
        if not settings.overwrite and up_to_date(task.out_dir, options, scan.input, scan.lesion_mask):
            skipped[scan.id] = ScanResult(scan.id, "up to date", outputs=[str(task.out_dir)])
            continue
        # a result this root's batches made for another request (other options, another model)
        # is theirs to redo; results they did not make (an earlier `mrisr run`) only with --overwrite
        tasks.append(replace(task, overwrite=True) if made_by(task.out_dir, settings.out_root) else task)
    return tasks, skipped


def made_by(out_dir: Path, out_root: Path) -> bool:
    """Whether ``out_dir`` holds a result that a batch into ``out_root`` wrote (its report says so)."""
    try:
        return json.loads((out_dir / REPORT_NAME).read_text()).get("batch_root") == str(out_root.resolve())
    except (OSError, ValueError, AttributeError):
        return False


def confined(out_root: Path, scan_id: str) -> Path:
    """A scan's output folder, which must lie below the output root once links are resolved."""
    folder = out_root / scan_id
    if not folder.resolve().is_relative_to(out_root.resolve()):
        raise InputError(f"the output folder {folder} leads outside --out {out_root} (a link); remove the link or give another id")
    return folder


def check_batch_outputs(out_root: Path, source: Path, scans: list[Scan], bids_root: Path | None) -> None:
    """The output root is not the source, and no file the batch writes there replaces an input
    (a manifest named summary.tsv, a BIDS dataset's own dataset_description.json)."""
    if source.is_dir() and out_root.resolve() == source.resolve():
        raise InputError(
            f"--out {out_root} is the source itself; give the results a folder of their own "
            f"(for a BIDS dataset: {source / 'derivatives' / 'mrisr'})"
        )
    written = {(out_root / name).resolve() for name in (*ROOT_FILES, *(["dataset_description.json"] if bids_root else []))}
    inputs = [source, *(path for scan in scans for path in (scan.input, scan.lesion_mask) if path is not None)]
    for path in inputs:
        if path.resolve() in written:
            raise InputError(f"the batch's summary in --out {out_root} would replace its input {path}; choose another --out folder")


def run_batch(
    scans: list[Scan], settings: BatchSettings, engine: Engine, control: BatchControl | None = None, on_event: BatchEvent | None = None
) -> BatchSummary:
    """Run the scans that need it; the summary holds every scan's latest result."""
    if not scans:
        raise InputError("no scans found: check the folder, the --pattern, or the BIDS --suffix / --entity")
    control = control or BatchControl()
    with claimed_folder(settings.out_root) as root:  # one batch at a time per output root
        if settings.bids_root is not None:
            write_whole(root / "dataset_description.json", json.dumps(bids.derivative_description(settings.bids_root), indent=2) + "\n")
        tasks, skipped = plan(scans, settings, previous_results(root))
        summary = BatchSummary({scan.id: skipped.get(scan.id, ScanResult(scan.id, "pending")) for scan in scans})
        write_summary(root, summary)
        ended = 0

        def record(result: ScanResult) -> None:
            nonlocal ended
            ended += 1
            summary.results[result.scan_id] = result
            write_summary(root, summary)
            if on_event is not None:
                on_event(result, ended, len(tasks))

        engine.run(tasks, record, control)
    return summary


def write_summary(out_root: Path, summary: BatchSummary) -> None:
    """``batch.json`` (the state a later batch resumes from), ``summary.tsv`` and ``summary.md``,
    each replaced whole (a stopped batch never leaves half a summary)."""
    rows = [result.as_row() for result in summary.results.values()]
    state = {"updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "counts": summary.counts(), "scans": [vars(r) for r in summary.results.values()]}
    tsv = io.StringIO()
    writer = csv.DictWriter(tsv, SUMMARY_COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    counts = ", ".join(f"{count} {status}" for status, count in sorted(summary.counts().items()))
    markdown = ["# Batch summary", "", counts, "", "| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    markdown += ["| " + " | ".join(str(row[c]).replace("|", "\\|") for c in SUMMARY_COLUMNS) + " |" for row in rows]
    for name, text in zip(ROOT_FILES, (json.dumps(state, indent=2) + "\n", tsv.getvalue(), "\n".join(markdown) + "\n")):
        write_whole(out_root / name, text)


def write_whole(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` whole; on a full disk, nothing half-written stays behind."""
    temporary = path.with_name(f".{path.name}.tmp")
    with storage_errors(path.parent):
        try:
            temporary.write_text(text, errors="surrogateescape")  # a file name's bytes as they are
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
