"""The exception hierarchy. Every error capsvc raises on purpose derives from CapsvcError.

The one rule this module keeps: a user's mistake (a bad filter, option, config key, file or
interface) is a CapsvcError, so the command line and the HTTP API can turn exactly these into a
one-line message or a 4xx answer, and anything else (a bug) still shows as one::

    CapsvcError
    ├── CaptureFileError           a file is no capture file capsvc can read, or is corrupt
    ├── BackendUnavailableError    libpcap or libpfring cannot be loaded
    ├── CaptureError               a live capture could not be opened or failed
    │   ├── PermissionNeededError  ... for want of a privilege (the message names it)
    │   └── NoSuchInterfaceError   ... because the interface does not exist
    ├── OptionError                an argument has a value capsvc cannot use (a ValueError)
    ├── DecodeError                a frame cannot be decoded as its link type (a ValueError)
    ├── FilterError                a filter expression cannot be used (a ValueError)
    │   ├── FilterSyntaxError      ... it is malformed
    │   └── FilterCompileError     ... the link type or the kernel cannot express it
    ├── ConfigError                a configuration or session spec is invalid (a ValueError)
    │   └── PathOutsideError       ... it names a path outside the directory it must stay in
    └── ServiceError               the service refuses a request (``status`` is its HTTP code)
        ├── NotFoundError          ... no such session or file
        └── ConflictError          ... a name, path or limit is taken
"""

from __future__ import annotations

import os

__all__ = [
    "BackendUnavailableError",
    "CapsvcError",
    "CaptureError",
    "CaptureFileError",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "FilterCompileError",
    "FilterError",
    "FilterSyntaxError",
    "NoSuchInterfaceError",
    "NotFoundError",
    "OptionError",
    "PathOutsideError",
    "PermissionNeededError",
    "ServiceError",
]


class CapsvcError(Exception):
    """Base class of capsvc's own errors."""


class CaptureFileError(CapsvcError):
    """A file is no capture file capsvc can read, or is corrupt.

    The message names the file and what is wrong; it never quotes the file's content.

    Attributes:
        path: the file, or ``"<stream>"`` for an unnamed stream.
        reason: what is wrong with it.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[CaptureFileError], tuple[str, str]]:
        """Pickle by the two parts (errors cross the pipe from worker processes)."""
        return (type(self), (self.path, self.reason))


class BackendUnavailableError(CapsvcError):
    """A capture backend (libpcap, PF_RING) cannot be loaded; the message says what to install."""


class CaptureError(CapsvcError):
    """A live capture could not be opened or failed while running."""


class PermissionNeededError(CaptureError):
    """The operation needs a privilege the process lacks (the message names it)."""


class NoSuchInterfaceError(CaptureError):
    """The interface to capture on does not exist (``str()``: ``no such interface: NAME``).

    Every backend raises this (libpcap's ``NoSuchDeviceError`` is a subclass), and so does the
    service for a spec naming an unknown interface.

    Attributes:
        interface: the name that was asked for.
    """

    def __init__(self, interface: str, detail: str = "") -> None:
        self.interface = interface
        plain = interface and interface.isprintable() and " " not in interface
        text = f"no such interface: {interface if plain else repr(interface)}"
        super().__init__(f"{text} ({detail})" if detail else text)

    def __reduce__(self) -> tuple[type[NoSuchInterfaceError], tuple[str]]:
        """Pickle by the name."""
        return (type(self), (self.interface,))


class OptionError(CapsvcError, ValueError):
    """An argument or option has a value capsvc cannot use (a negative snaplen, an unknown
    fanout mode, a link type name nobody knows). It is a ValueError too, as Python expects."""


class DecodeError(CapsvcError, ValueError):
    """A frame cannot be decoded as its link type (``Packet.decode``): too short or malformed
    for the decoder (the message is dpkt's), or a link type dpkt has no decoder for."""


class FilterError(CapsvcError, ValueError):
    """A filter expression cannot be used; ``str()`` shows the expression and a caret.

    Attributes:
        expr: the whole expression as given.
        offset: the character offset (0-based) of the offending token in ``expr``; ``len(expr)``
            when the expression ended too early.
        reason: the message without the expression and caret.
    """

    def __init__(self, reason: str, expr: str, offset: int) -> None:
        self.reason = reason
        self.expr = expr
        self.offset = max(0, min(offset, len(expr)))
        super().__init__(reason)

    def __str__(self) -> str:
        line = self.expr.replace("\n", " ").replace("\t", " ")
        return f"{self.reason}\n  {line}\n  {' ' * self.offset}^"

    def __reduce__(self) -> tuple[type[FilterError], tuple[str, str, int]]:
        """Pickle by the three parts."""
        return (type(self), (self.reason, self.expr, self.offset))


class FilterSyntaxError(FilterError):
    """A filter expression is malformed (an unknown word, a missing operand, a bad address)."""


class FilterCompileError(FilterError):
    """A well-formed expression asks for something the link type or the kernel cannot express:
    ``ether host ...`` on raw IP, ``vlan`` on Linux cooked captures, a program over 4096
    instructions. The offset is that of the primitive."""


class ConfigError(CapsvcError, ValueError):
    """A configuration or session spec is invalid.

    Attributes:
        origin: the config file, or ``"request"`` for a spec sent over the API.
        key: the dotted key that is wrong (``session[0].source.type``), ``""`` for the whole.
        problem: what is wrong and what is expected.
    """

    def __init__(self, origin: str, key: str, problem: str) -> None:
        self.origin = origin
        self.key = key
        self.problem = problem
        where = f"{origin}: {key}" if key else origin
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str, str]]:
        """Pickle by the three parts (errors cross the pipe from worker processes)."""
        return (type(self), (self.origin, self.key, self.problem))


class PathOutsideError(ConfigError):
    """A path would read or write outside the directory it must stay in (the service's output
    or input directory), or through a symbolic link, or is no regular file."""


class ServiceError(CapsvcError):
    """An API-level refusal; ``status`` is the HTTP status it maps to."""

    status = 500


class NotFoundError(ServiceError):
    """No session (or file) by that name."""

    status = 404


class ConflictError(ServiceError):
    """The name or path is taken, or a limit is reached."""

    status = 409
