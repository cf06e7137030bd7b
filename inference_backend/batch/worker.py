"""One scan of a batch, as a worker runs it: ``run_job`` into the scan's folder, every failure
turned into a record (exit code, one line) instead of an exception, so the batch goes on.

A worker process keeps what it loaded between scans (verified model checkpoints: see
:func:`inference_backend.assets.load_checkpoint`); SIGTERM cancels its current scan cleanly.
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference_backend.batch.completed import up_to_date
from inference_backend.errors import Cancelled, MRISRError, ResourceError
from inference_backend.job import JobOptions
from inference_backend.outputs import REPORT_NAME, listed_outputs, remove_dead_lock
from inference_backend.progress import Progress

_current: Progress | None = None  # the job this worker process runs now


@dataclass(frozen=True)
class ScanTask:
    """What a worker needs to run one scan."""

    scan_id: str
    input: Path
    out_dir: Path
    options: JobOptions
    lesion_mask: Path | None = None
    overwrite: bool = False
    output_format: str = "nii.gz"
    bids_source: str | None = None  # the input's path in a BIDS dataset: outputs get JSON sidecars
    planned_at: float = 0.0  # when the batch planned it (time.time()): a result written since is this batch's own
    batch_root: Path | None = None  # the batch's output root, recorded in the report


@dataclass
class ScanResult:
    """How a scan ended: done, failed (with the exit code ``mrisr run`` would give) or cancelled."""

    scan_id: str
    status: str
    exit_code: int = 0
    message: str = ""
    seconds: float = 0.0
    peak_memory_mb: float | None = None
    outputs: list[str] = field(default_factory=list)
    worker: str = ""

    def as_row(self) -> dict[str, Any]:
        return {
            "scan": self.scan_id, "status": self.status, "exit_code": self.exit_code, "seconds": round(self.seconds, 1),
            "peak_memory_mb": self.peak_memory_mb, "outputs": " ".join(self.outputs), "message": self.message,
        }  # fmt: skip


def init_worker(threads: int) -> None:
    """A worker process: its share of the CPU threads; Ctrl-C is the batch's to handle (the
    terminal sends it to every process), SIGTERM cancels the scan running here, and the worker
    ends with the batch (a batch killed outright must not leave its workers waiting for ever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: _current.cancel() if _current is not None else None)
    threading.Thread(target=_end_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ["MRISR_THREADS"] = str(threads)  # every job in this worker keeps to its share (devices.configure_cpu_threads)
    import torch

    torch.set_num_threads(threads)


def _end_with_parent(parent: int, poll_s: float = 1.0, grace_s: float = 30.0) -> None:
    """Once the batch process is gone: cancel the scan running here, let it clean up, exit."""
    while os.getppid() == parent:
        time.sleep(poll_s)
    if _current is not None:
        _current.cancel()
    deadline = time.monotonic() + grace_s
    while _current is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(0)


def committed_result(task: ScanTask) -> list[str] | None:
    """The files of this task's result if its folder already holds it complete and it may stand
    (Ray retries a task whose actor died, also after the actor committed the result). A task
    that replaces a result accepts only one written since the batch planned it."""
    if not up_to_date(task.out_dir, task.options, task.input, task.lesion_mask):
        return None
    report = task.out_dir / REPORT_NAME
    if task.overwrite and report.stat().st_mtime < task.planned_at:
        return None
    return sorted(str(task.out_dir / name) for name in [REPORT_NAME, *listed_outputs(report)])


def process_scan(task: ScanTask) -> ScanResult:
    """Run one scan; never raises for the scan's own failures."""
    global _current
    from inference_backend.pipeline import peak_resident_mb, run_job

    started = time.monotonic()
    result = ScanResult(task.scan_id, "done", worker=f"{socket.gethostname()}:{os.getpid()}")
    _current = Progress()
    try:
        committed = committed_result(task)
        if committed is not None:  # a retried task whose lost worker had committed it: done once, not refused
            remove_dead_lock(task.out_dir)  # that worker may have died before it removed its lock
            result.outputs = committed
        else:
            written = run_job(
                task.input, task.out_dir, task.options, task.lesion_mask, progress=_current,
                output_format=task.output_format, overwrite=task.overwrite, bids_source=task.bids_source,
                batch_root=task.batch_root,
            )  # fmt: skip
            result.outputs = sorted(str(path) for path in written.values())
    except Cancelled as error:
        result.status, result.exit_code, result.message = "cancelled", error.exit_code, str(error)
    except MRISRError as error:
        result.status, result.exit_code, result.message = "failed", error.exit_code, str(error)
    except MemoryError:
        result.status, result.exit_code, result.message = "failed", ResourceError.exit_code, "out of memory"
    except Exception as error:  # noqa: BLE001 - one scan's defect must not stop the batch
        result.status, result.exit_code = "failed", MRISRError.exit_code
        result.message = f"internal error ({type(error).__name__}: {error})"
    finally:
        _current = None
    result.seconds = time.monotonic() - started
    result.peak_memory_mb = peak_resident_mb()
    return result
