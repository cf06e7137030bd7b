"""A run's output folder: one run at a time, outputs moved in whole, nothing stale, nothing lost.

A run holds the folder's lock file ``.mrisr-lock`` (its record, pid and host, written first and
hard-linked into place, so a lock is never empty) from its first check to its last move, so two
runs cannot write into one folder at once; a batch holds its output root's lock the same way. It writes into a staging folder ``.mrisr-partial-<host>-<pid>-*`` inside the output
folder (the same file system: the final moves are renames) and moves the files out only when
all of them are written; ``report.json`` goes last, so a folder with a report holds the whole
set it lists, whenever the run is killed. A run killed outright (SIGKILL, the out-of-memory
killer) leaves its lock and staging folder behind; the next run removes them once their owner
is provably dead: the same host, and no process with that pid. Those of live processes or of
other hosts are never touched, and nothing in a staging folder is ever taken as a result.
A batch runner takes the same steps per scan: :func:`claimed_folder`, :func:`previous_outputs`,
then :func:`inference_backend.pipeline.write_outputs` (:func:`staging_folder`, :func:`file_record`,
:func:`commit`).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference_backend.assets import sha256_of
from inference_backend.errors import InputError, MRISRError, ResourceError
from inference_backend.imaging.io import free_space

LOCK_NAME = ".mrisr-lock"
STAGING_PREFIX = ".mrisr-partial-"
REPORT_NAME = "report.json"
NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)  # disk full, quota, file size limit
NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK)  # file systems without hard links


@dataclass(frozen=True)
class Owner:
    """The process a lock or a staging folder belongs to."""

    host: str
    pid: int

    @classmethod
    def current(cls) -> "Owner":
        return cls(_host(), os.getpid())

    def provably_dead(self) -> bool:
        """True only when this host has no process with the pid. A live pid may be another
        process that reused it, and another host's processes cannot be seen: both count as alive."""
        return self.host == _host() and not _pid_alive(self.pid)

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _host() -> str:
    """This machine's name, in the characters a folder name carries safely."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # no portable test: a lock or staging folder stays until removed by hand
        return True
    try:
        os.kill(pid, 0)  # signal 0: the existence check, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def claimed_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """``out_dir``, created if needed, held by this run for the block: locked, with the staging
    folders of dead runs removed. A folder the block created is removed again if the block
    fails and leaves it empty."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder} exists and is not a folder")
    created = not folder.exists()
    try:
        with storage_errors(folder):
            folder.mkdir(parents=True, exist_ok=True)
        with output_lock(folder):
            remove_dead_staging(folder)
            yield folder
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


@contextmanager
def output_lock(folder: Path) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block. A lock held by a live run (or one whose owner
    cannot be known) is refused: InputError, exit 2; a dead run's lock is taken over."""
    lock = folder / LOCK_NAME
    with storage_errors(folder):
        _acquire(lock)
    try:
        yield lock
    finally:
        if _lock_owner(lock) == Owner.current():
            lock.unlink()


LOCK_TURNS = 5  # create, or find a dead owner's lock, remove it and create: a few turns at most


def _acquire(lock: Path) -> None:
    for _ in range(LOCK_TURNS):
        if _create_lock(lock):
            return
        if lock.is_symlink() or (lock.exists() and not lock.is_file()):
            raise InputError(
                f"--out {lock.parent}: {lock.name} is not a lock file a run wrote (a link, or a folder); "
                "if no run is writing there, delete it"
            )
        holder = _lock_owner(lock)
        if holder is None and lock.exists():
            time.sleep(0.1)  # a run that has just created the lock (without link support) writes its record now
            holder = _lock_owner(lock)
        if holder is None and lock.exists():
            raise InputError(
                f"--out {lock.parent} is locked by {lock} of an unknown owner; if no run is writing "
                "there, delete that file"
            )
        if holder is not None and not holder.provably_dead():
            raise InputError(
                f"--out {lock.parent} is in use by another run ({holder}); wait for it to finish, "
                "or choose another folder"
            )
        if holder is not None:
            _remove_dead_lock(lock, holder)
    raise InputError(f"--out {lock.parent}: its lock {lock} changed hands {LOCK_TURNS} times; retry when no other run starts there")


def _create_lock(lock: Path) -> bool:
    """Create the lock holding this process's record, whole or not at all: the record is
    written to a file of its own, then linked to the lock's name (which fails if it exists).
    A full disk leaves no lock behind. Where the file system has no hard links, the lock is
    created exclusively and its record written, and removed again if that fails."""
    me = Owner.current()
    record = json.dumps({"pid": me.pid, "host": me.host})
    draft = lock.parent / f"{STAGING_PREFIX}{me.host}-{me.pid}-lock"
    try:
        draft.write_text(record)
        try:
            os.link(draft, lock)
            return True
        except FileExistsError:
            return False
        except OSError as error:
            if error.errno not in NO_LINKS:
                raise
    finally:
        draft.unlink(missing_ok=True)
    try:
        descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(descriptor, "w") as stream:
            stream.write(record)
    except OSError:
        lock.unlink(missing_ok=True)
        raise
    return True


def _lock_owner(lock: Path) -> Owner | None:
    """The owner a lock file names; None if it is gone or does not name one (yet)."""
    try:
        record = json.loads(lock.read_text())
        owner = Owner(str(record["host"]), int(record["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return owner if owner.pid > 0 else None


def remove_dead_lock(folder: Path) -> None:
    """Remove ``folder``'s lock if the run it names is provably dead: a run killed after it
    committed its result, and before it could remove its lock."""
    lock = folder / LOCK_NAME
    holder = _lock_owner(lock)
    if holder is not None and holder.provably_dead():
        _remove_dead_lock(lock, holder)


def _remove_dead_lock(lock: Path, holder: Owner) -> None:
    """Remove the lock if it still names the dead ``holder``. Runs that found the same dead
    lock take turns here (flock on the folder), so none removes the lock another has just taken."""
    import fcntl  # POSIX: elsewhere no owner is provably dead, and this is never reached

    descriptor = os.open(lock.parent, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        if _lock_owner(lock) == holder:
            lock.unlink()
    finally:
        os.close(descriptor)


def staging_owner(path: Path) -> Owner | None:
    """The owner named by a staging folder (``.mrisr-partial-<host>-<pid>-<random>``); None if
    the name carries none (a foreign folder)."""
    if not path.name.startswith(STAGING_PREFIX):
        return None
    parts = path.name[len(STAGING_PREFIX) :].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) == 0:
        return None
    return Owner(parts[0], int(parts[1]))


def remove_dead_staging(folder: Path) -> list[Path]:
    """Remove the staging folders (and lock drafts) in ``folder`` whose owner is provably dead; returns them."""
    dead = []
    for path in sorted(folder.glob(STAGING_PREFIX + "*")):
        owner = staging_owner(path)
        if owner is None or not owner.provably_dead() or path.is_symlink():
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        dead.append(path)
    return dead


@contextmanager
def staging_folder(folder: Path) -> Iterator[Path]:
    """A new staging folder in ``folder``, named after this process; removed with whatever of
    it was not committed when the block ends."""
    me = Owner.current()
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{me.host}-{me.pid}-", dir=folder))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def previous_outputs(folder: Path, candidates: Iterable[str], keep: Iterable[Path] = ()) -> list[str]:
    """The files in ``folder`` a previous run left: its report, the files the report lists, and
    any of ``candidates`` (the names this run may write); never a file in ``keep`` (the inputs)."""
    keep = {Path(path).resolve() for path in keep}
    names = {REPORT_NAME, *listed_outputs(folder / REPORT_NAME), *candidates}
    return sorted(name for name in names if (folder / name).is_file() and (folder / name).resolve() not in keep)


def listed_outputs(report: Path) -> list[str]:
    """The output files a ``report.json`` lists (``{"file": name}`` records, or bare names as
    earlier versions wrote them); names with a path part are ignored, never followed."""
    try:
        content = json.loads(report.read_text())
        entries = [*content.get("outputs", {}).values(), *content.get("sidecars", {}).values()]
        names = [entry["file"] if isinstance(entry, dict) else entry for entry in entries]
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return []
    return [name for name in names if isinstance(name, str) and name == Path(name).name and not name.startswith(".")]


def file_record(path: Path) -> dict[str, Any]:
    """What a report says of an output file: its name, size and SHA-256."""
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def commit(staging: Path, folder: Path, previous: Iterable[str]) -> None:
    """Move every file of ``staging`` into ``folder`` and remove the ``previous`` outputs it does
    not replace. The old report goes first and the new one last: killed in between, the folder
    has no report, rather than one that lists files it does not hold."""
    new = sorted(path.name for path in staging.iterdir())
    (folder / REPORT_NAME).unlink(missing_ok=True)
    for name in new:
        if name != REPORT_NAME:
            os.replace(staging / name, folder / name)
    for name in set(previous) - set(new):
        (folder / name).unlink(missing_ok=True)
    if REPORT_NAME in new:
        os.replace(staging / REPORT_NAME, folder / REPORT_NAME)


@contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Failures to write into ``folder`` as what the user can act on: a full disk (exit 4) or
    a folder that cannot be written (exit 2)."""
    try:
        yield
    except FileExistsError:
        raise
    except OSError as error:
        raise storage_error(error, folder) from error


def storage_error(error: OSError, folder: Path) -> MRISRError:
    reason = (error.strerror or type(error).__name__).lower()
    if error.errno in NO_SPACE:
        return ResourceError(f"--out {folder}: {reason} ({_free(folder)} free); free space or choose another folder")
    return InputError(f"--out {folder} cannot be written ({reason}); choose a folder you can write to")


def _free(folder: Path) -> str:
    existing = next(path for path in (folder, *folder.resolve().parents) if path.exists())
    return free_space(existing)
