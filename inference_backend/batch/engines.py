"""Where a batch's scans run: worker processes on this machine, or Ray actors on a cluster.
Both run :func:`~inference_backend.batch.worker.process_scan` in long-lived workers (each keeps
its models loaded) and share one small interface, so the batch logic exists once.

``engine.run(tasks, on_result, control)`` blocks until every task has a result, or until the
batch is stopped (:class:`BatchControl`): then no new scan starts, and a second stop cancels
the running ones (they clean up; nothing partial is kept).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol

from inference_backend.batch.worker import (
    ScanResult,
    ScanTask,
    init_worker,
    process_scan,
)


class BatchControl:
    """Ctrl-C / SIGTERM for a batch: the first stops starting scans, the next cancels the running ones."""

    def __init__(self) -> None:
        self.stops = 0
        self.stopped = threading.Event()
        self.cancel_running: Callable[[], None] = lambda: None

    def cancel(self) -> None:  # the name the command line's signal handling calls
        self.stops += 1
        self.stopped.set()
        if self.stops > 1:
            self.cancel_running()


class Engine(Protocol):
    def run(self, tasks: Iterable[ScanTask], on_result: Callable[[ScanResult], None], control: BatchControl) -> None: ...


def threads_per_worker(workers: int) -> int:
    """The machine's cores shared out among the workers (one at least)."""
    return max(1, (os.cpu_count() or 1) // workers)


class LocalEngine:
    """``workers`` processes of this machine (spawned: the same on every platform)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def run(self, tasks: Iterable[ScanTask], on_result: Callable[[ScanResult], None], control: BatchControl) -> None:
        pending = iter(tasks)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, context, initializer=init_worker, initargs=(threads_per_worker(self.workers),)) as pool:
            control.cancel_running = lambda: self._signal_workers(pool)
            running: dict[Future, ScanTask] = {}
            while True:
                while not control.stopped.is_set() and len(running) < self.workers:
                    task = next(pending, None)
                    if task is None:
                        break
                    running[pool.submit(process_scan, task)] = task
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    on_result(_result_of(future, task))

    @staticmethod
    def _signal_workers(pool: ProcessPoolExecutor) -> None:
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)


def _result_of(future: Future, task: ScanTask) -> ScanResult:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a worker process that died (killed, out of memory)
        return ScanResult(task.scan_id, "failed", 1, f"the worker running this scan died ({type(error).__name__}); rerun the batch")


class RayEngine:
    """``workers`` Ray actors (each holding its models) on a running cluster (``address``) or a
    local Ray instance. A scan whose actor dies (a crashed or preempted node) is retried on the
    restarted actor; its output folder's lock and staging keep it written once."""

    def __init__(self, workers: int = 1, address: str | None = None, cpus_per_worker: int = 1, gpus_per_worker: float = 0.0,
                 retries: int = 2) -> None:  # fmt: skip
        self.workers, self.address = workers, address
        self.cpus_per_worker, self.gpus_per_worker, self.retries = cpus_per_worker, gpus_per_worker, retries

    def run(self, tasks: Iterable[ScanTask], on_result: Callable[[ScanResult], None], control: BatchControl) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        worker_class = ray.remote(ScanWorker)
        actors = [
            worker_class.options(
                name=f"mrisr-worker-{index}", num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker,
                max_restarts=self.retries, max_task_retries=self.retries,
                max_concurrency=2,  # a cancel reaches an actor while it runs a scan
            ).remote(self.cpus_per_worker)
            for index in range(self.workers)
        ]  # fmt: skip
        control.cancel_running = lambda: [actor.cancel_current.remote() for actor in actors]
        pending, idle, running = iter(tasks), list(actors), {}
        try:
            while True:
                while not control.stopped.is_set() and idle:
                    task = next(pending, None)
                    if task is None:
                        break
                    actor = idle.pop()
                    running[actor.process.remote(task)] = (task, actor)
                if not running:
                    return
                done, _ = ray.wait(list(running), num_returns=1)
                task, actor = running.pop(done[0])
                idle.append(actor)
                try:
                    on_result(ray.get(done[0]))
                except ray.exceptions.RayError as error:  # the actor died more often than it may restart
                    on_result(ScanResult(task.scan_id, "failed", 1, f"the worker running this scan was lost ({type(error).__name__})"))
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)


class ScanWorker:
    """A Ray actor: one worker process that keeps its models between scans."""

    def __init__(self, threads: int) -> None:
        import torch

        os.environ["MRISR_THREADS"] = str(threads)  # every job in this actor keeps to its share (devices.configure_cpu_threads)
        torch.set_num_threads(threads)

    def process(self, task: ScanTask) -> ScanResult:
        return process_scan(task)

    def where(self) -> dict[str, object]:
        """The node and process this worker runs in (for logs and cluster checks)."""
        import os

        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def cancel_current(self) -> None:
        from inference_backend.batch import worker

        if worker._current is not None:
            worker._current.cancel()
