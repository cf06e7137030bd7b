"""Progress reporting and cooperative cancellation for long jobs.

A job reports ``(fraction, stage, message)`` through a :class:`Progress`; sinks turn reports
into a terminal bar (tqdm), JSON lines for programs that drive the backend (the Slicer
module's subprocess runner), or a Python callback (the Slicer module's in-process runner).
Every report is also a cancellation point: once :meth:`Progress.cancel` was called, the next
report raises :class:`~inference_backend.errors.Cancelled`.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import IO, Iterator

from inference_backend.errors import Cancelled
from inference_backend.protocol import ProgressCallback, ProgressLine


class Progress:
    """Maps stage-local fractions to the overall fraction, forwards them to sinks, checks cancel."""

    def __init__(self, sinks: list[ProgressCallback] | None = None, cancel_event: threading.Event | None = None) -> None:
        self._sinks = list(sinks or [])
        self._cancelled = cancel_event or threading.Event()  # a caller's event cancels from another thread
        self._span = (0.0, 1.0)
        self._stage = ""
        self._fraction = 0.0

    def cancel(self) -> None:
        """Ask the job to stop at its next report (thread- and signal-safe)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled()

    @contextmanager
    def stage(self, name: str, start: float, end: float) -> Iterator["Progress"]:
        """Within the block, ``report(f)`` with f in [0, 1] maps to [start, end] of the job."""
        outer_span, outer_stage = self._span, self._stage
        low, high = outer_span
        self._span = (low + (high - low) * start, low + (high - low) * end)
        self._stage = name
        self.report(0.0, "started")
        try:
            yield self
        finally:
            self._span, self._stage = outer_span, outer_stage

    def report(self, local_fraction: float, message: str = "") -> None:
        self.check_cancelled()
        low, high = self._span
        fraction = min(1.0, max(self._fraction, low + (high - low) * min(1.0, max(0.0, local_fraction))))
        self._fraction = fraction
        for sink in self._sinks:
            sink(fraction, self._stage, message)
        self.check_cancelled()

    def finish(self, message: str = "done") -> None:
        self._fraction = 1.0
        for sink in self._sinks:
            sink(1.0, "done", message)


def jsonl_sink(stream: IO[str] | None = None) -> ProgressCallback:
    """One :class:`~inference_backend.protocol.ProgressLine` per line."""

    def sink(fraction: float, stage: str, message: str) -> None:
        out = stream or sys.stdout
        out.write(ProgressLine(fraction, stage, message).encode() + "\n")
        out.flush()

    return sink


class TqdmSink:
    """A terminal progress bar (on stderr) showing the current stage and message."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}", leave=False)

    def __call__(self, fraction: float, stage: str, message: str) -> None:
        self._bar.set_description_str(stage, refresh=False)
        self._bar.set_postfix_str(message, refresh=False)
        self._bar.update(int(fraction * 1000) - self._bar.n)

    def close(self) -> None:
        self._bar.close()
