"""The exception hierarchy. Every error capsvc raises on purpose derives from CapsvcError."""

from __future__ import annotations

import os

__all__ = [
    "BackendUnavailableError",
    "CapsvcError",
    "CaptureError",
    "CaptureFileError",
    "PermissionNeededError",
]


class CapsvcError(Exception):
    """Base class of capsvc's own errors."""


class CaptureFileError(CapsvcError):
    """A file is no capture file capsvc can read, or is corrupt.

    Attributes:
        path: the file, or ``"<stream>"`` for an unnamed stream.
        reason: what is wrong with it.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class BackendUnavailableError(CapsvcError):
    """A capture backend (libpcap, PF_RING) cannot be loaded; the message says what to install."""


class CaptureError(CapsvcError):
    """A live capture could not be opened or failed while running."""


class PermissionNeededError(CaptureError):
    """The operation needs a privilege the process lacks (the message names it)."""
