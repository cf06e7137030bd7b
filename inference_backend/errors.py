"""Errors that reach users as one clear line (and a distinct exit status), never a traceback."""
from __future__ import annotations


class MRISRError(Exception):
    """Base of every failure the user can act on; its message is shown as is."""

    exit_code = 1


class InputError(MRISRError):
    """The input (file, mask, option) cannot be processed as given."""

    exit_code = 2


class AssetError(MRISRError):
    """Model weights are missing, tampered with or unreadable."""

    exit_code = 3


class ResourceError(MRISRError):
    """The job does not fit: voxel budget, memory, or the requested device is absent."""

    exit_code = 4


class Cancelled(MRISRError):
    """The user stopped the job (Cancel, Ctrl-C, SIGTERM); nothing was written."""

    exit_code = 130

    def __init__(self, message: str = "cancelled: no output was written") -> None:
        super().__init__(message)
