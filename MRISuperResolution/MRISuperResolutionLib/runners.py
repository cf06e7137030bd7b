"""Two ways to run the backend behind one interface: in Slicer's own Python, or as a
subprocess in another Python (for instance one with a CUDA build of PyTorch).

``runner.run(request, on_progress, cancel)`` blocks until the job ends and returns a
:class:`JobResult`; ``on_progress(fraction, stage, message)`` is called as work advances;
setting ``cancel`` stops the job (in-process: at the next progress report; subprocess: the
whole process tree is terminated). Failures raise the backend's ``MRISRError`` subclasses,
whose message is meant for the user.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from MRISuperResolutionLib.backend import ensure_importable

if TYPE_CHECKING:
    from inference_backend.errors import MRISRError
    from inference_backend.imaging.volume import Volume
    from inference_backend.plan import JobPlan
    from inference_backend.protocol import ProgressCallback

KILL_GRACE_SECONDS = 5.0
# Its own process group: Cancel ends the backend and everything it started, and only that.
NEW_PROCESS_GROUP: dict[str, Any] = (
    {"start_new_session": True} if os.name == "posix" else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
)


@dataclass
class JobRequest:
    volume: "Volume"
    plan: "JobPlan"
    lesion_mask: np.ndarray | None = None


@dataclass
class JobResult:
    sr: "Volume"
    variance: "Volume | None" = None
    lesion_filled: "Volume | None" = None
    report: dict[str, Any] = field(default_factory=dict)
    consistency: "Volume | None" = None  # where the result contradicts the acquired scan, on the input's grid


class InProcessRunner:
    """The backend in this Python; cancel is checked at every progress report (between batches)."""

    name = "in-process"

    def run(self, request: JobRequest, on_progress: ProgressCallback, cancel: threading.Event) -> JobResult:
        ensure_importable()
        from inference_backend.pipeline import process
        from inference_backend.progress import Progress

        progress = Progress([on_progress], cancel_event=cancel)
        outputs = process(request.volume, request.plan, request.lesion_mask, progress)
        progress.finish()
        return JobResult(outputs.sr, outputs.variance, outputs.lesion_filled, outputs.report, outputs.consistency)


class SubprocessRunner:
    """``python -m inference_backend run`` in ``python_executable``; volumes go through
    temporary NRRD files, progress through ``--progress jsonl`` lines on stdout."""

    name = "subprocess"

    def __init__(
        self, python_executable: str | None = None, temp_root: str | None = None, environment: dict[str, str] | None = None
    ) -> None:
        self.python_executable = python_executable or sys.executable
        self.temp_root = temp_root
        self.environment = dict(os.environ if environment is None else environment)

    def command(self, request: JobRequest, input_path: Path, mask_path: Path | None, out_dir: Path) -> list[str]:
        """``mrisr run`` with the request's own options (their one command-line form)."""
        command = [self.python_executable, "-m", "inference_backend", "run", str(input_path), *request.plan.request.arguments()]
        if mask_path is not None:
            command += ["--lesion-mask", str(mask_path)]
        return command + ["--out", str(out_dir), "--output-format", "nrrd", "--progress", "jsonl"]

    def run(self, request: JobRequest, on_progress: ProgressCallback, cancel: threading.Event) -> JobResult:
        root = ensure_importable()
        from inference_backend.errors import Cancelled, MRISRError
        from inference_backend.imaging.io import read_volume, write_volume
        from inference_backend.imaging.volume import Volume

        with tempfile.TemporaryDirectory(prefix="mrisr-", dir=self.temp_root) as temporary:
            folder = Path(temporary)
            input_path, mask_path = folder / "input.nrrd", None
            write_volume(request.volume, input_path)
            if request.lesion_mask is not None:
                mask_path = folder / "lesion_mask.nrrd"
                write_volume(Volume(request.lesion_mask.astype(np.uint8), request.volume.grid), mask_path)
            out_dir = folder / "out"
            command = self.command(request, input_path, mask_path, out_dir)
            returncode, error, output = self._execute(command, backend_environment(self.environment, root), on_progress, cancel)
            if cancel.is_set():
                raise Cancelled()
            if returncode != 0:
                failure = error or MRISRError(last_line(output.splitlines()) or f"the backend process failed (exit status {returncode}) without a message")
                failure.details = output
                raise failure
            report = json.loads((out_dir / "report.json").read_text())
            volumes = {role: read_volume(out_dir / record["file"]) for role, record in report["outputs"].items()}
        return JobResult(volumes["sr"], volumes.get("variance"), volumes.get("lesion_filled"), report, volumes.get("consistency"))

    def _execute(
        self, command: list[str], environment: dict[str, str], on_progress: ProgressCallback, cancel: threading.Event
    ) -> tuple[int, MRISRError | None, str]:
        """Run the backend, forward its progress, kill its process tree on cancel; (status, the
        error its last line reported, or None where it reported none (its Python could not even
        start the backend), the end of its stderr for the log)."""
        from inference_backend.errors import InputError
        from inference_backend.protocol import ErrorLine, ProgressLine, decode

        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, **NEW_PROCESS_GROUP
            )
        except OSError as error:
            raise InputError(f"the Python executable {command[0]} cannot be started: {error.strerror or error}") from None
        stderr_lines: list[str] = []
        reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)
        reader.start()
        finished = threading.Event()
        killer = threading.Thread(target=self._kill_on_cancel, args=(process, cancel, finished), daemon=True)
        killer.start()
        error = None
        try:
            for line in process.stdout:
                record = decode(line)  # None: stray output of a library, not ours to interpret
                if isinstance(record, ErrorLine):
                    error = record.exception()
                elif isinstance(record, ProgressLine) and not cancel.is_set():
                    on_progress(record.fraction, record.stage, record.message)
            returncode = process.wait()
        finally:
            finished.set()
            killer.join()
            reader.join(timeout=KILL_GRACE_SECONDS)
        return returncode, error, "".join(stderr_lines[-200:])

    @staticmethod
    def _kill_on_cancel(process: subprocess.Popen, cancel: threading.Event, finished: threading.Event) -> None:
        while not finished.is_set():
            if cancel.wait(0.1):
                kill_process_tree(process)
                return


def last_line(lines: list[str]) -> str:
    """The last non-empty line (a Python's own failure, e.g. a missing package, ends there)."""
    meaningful = [line.strip() for line in lines if line.strip()]
    return meaningful[-1] if meaningful else ""


def backend_environment(environment: dict[str, str], backend_root: Path) -> dict[str, str]:
    """``environment`` with the backend importable and the output unbuffered (progress lines)."""
    environment = dict(environment, PYTHONUNBUFFERED="1")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(backend_root), environment.get("PYTHONPATH")]))
    return environment


def query_devices(python_executable: str, environment: dict[str, str], timeout: float = 120.0) -> list[dict[str, Any]]:
    """The devices ``python_executable`` can compute on (``mrisr devices --json`` there)."""
    root = ensure_importable()
    command = [python_executable, "-m", "inference_backend", "devices", "--json"]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, env=backend_environment(environment, root), timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"{python_executable} could not be asked for its devices: {error}") from None
    if completed.returncode != 0:
        raise RuntimeError(last_line(completed.stderr.splitlines()) or f"{python_executable} failed (exit status {completed.returncode})")
    return json.loads(completed.stdout)


def kill_process_tree(process: subprocess.Popen) -> None:
    """Terminate the backend and anything it started; force-kill after a grace period."""
    if process.poll() is not None:
        return
    if os.name == "posix":
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    else:
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True)


RUNNERS = {"in-process": InProcessRunner, "subprocess": SubprocessRunner}
