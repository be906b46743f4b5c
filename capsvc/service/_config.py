"""Service configuration: TOML tables and JSON session specs -> frozen dataclasses.

Pure module: no sockets, no event loop, and the file system is touched only by ``load_config``
(reading the one file: a regular file of at most ``MAX_CONFIG_BYTES``). Every validation error
names where it comes from (the file or "request"), the key (``session[0].sinks[1].path``) and
what is wrong, so a bad config is refused as a whole before anything starts. Every number has a
bound, every backend option a known name and type. Output paths are checked lexically here
(relative, no ``..``); the service opens them below its directories' descriptors, which follow
no symbolic link (``capsvc._files``).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigError, PathOutsideError
from ..sinks._build import SinkSpec
from ._settings import DEFAULT_LISTEN, MAX_FILTER_BYTES, ServiceSettings, parse_service
from ._sinkconf import parse_sink
from ._validate import (
    as_bool,
    as_int,
    as_num,
    as_str,
    check_filter_size,
    check_filter_syntax,
    check_options,
    key_of,
    no_unknown,
    relative_path,
    table,
)

__all__ = [
    "DEFAULT_LISTEN",
    "LIVE_SOURCES",
    "SINK_TYPES",
    "SOURCE_TYPES",
    "ConfigError",
    "PathOutsideError",
    "ServiceConfig",
    "ServiceSettings",
    "SessionSpec",
    "SinkSpec",
    "SourceSpec",
    "check_filter_size",
    "load_config",
    "parse_config",
    "parse_session_spec",
    "relative_path",
]

LIVE_SOURCES = ("afpacket", "libpcap", "pfring")
SOURCE_TYPES = (*LIVE_SOURCES, "file")
SINK_TYPES = ("pcap", "pcapng", "text", "stats", "recorder")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_DIRECTIONS = ("in", "out", "inout")
#: The largest configuration file read (bytes).
MAX_CONFIG_BYTES = 1 << 20
#: The options each live backend takes, with their types (int: a number >= 0).
BACKEND_OPTIONS: dict[str, dict[str, type]] = {
    "afpacket": {
        "buffer_kib": int,
        "cooked": bool,
        "ring_size": int,
        "block_size": int,
        "block_timeout_ms": int,
        "userspace_fallback": bool,
    },
    "libpcap": {"buffer_kib": int, "timeout_ms": int, "buffer_size": int, "immediate": bool},
    "pfring": {"cluster": str, "sampling_rate": int},
}


@dataclass(frozen=True)
class SourceSpec:
    """Where a session's packets come from.

    Attributes:
        type: ``afpacket``, ``libpcap``, ``pfring`` or ``file``.
        interface: the interface of a live source ("" for a file).
        path: a capture file relative to the output directory (file sources only).
        promisc: put the interface into promiscuous mode (live sources; default True).
        direction: ``in``, ``out`` or ``inout`` (default).
        options: further backend options, passed through as keyword arguments.
    """

    type: str
    interface: str = ""
    path: str = ""
    promisc: bool = True
    direction: str = "inout"
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class SessionSpec:
    """A named capture session (a ``[[session]]`` table or a POSTed JSON object).

    Attributes:
        name: 1-64 characters of letters, digits, ``_.-``; not starting with ``.`` or ``-``.
        source: where packets come from.
        filter: a tcpdump-style filter expression; "" accepts everything.
        snaplen: bytes kept per packet; 0 means 262144.
        queue_size: the session queue in packets; 0 means the Session default.
        sinks: outputs; may be empty for a session that only feeds live streams.
        duration: stop after this many seconds; 0 means run until stopped.
        autostart: start with the service (config sessions; default True).
        workers: processes sharing an AF_PACKET fanout group (default 1, in-process).
        conversations: count its conversations (True or False); None (the default) means
            the service's ``conversations`` setting. Not with workers.
        series: keep its per-second I/O series; None means the service's ``series``
            setting. Not with workers.
    """

    name: str
    source: SourceSpec
    filter: str = ""
    snaplen: int = 0
    queue_size: int = 0
    sinks: tuple[SinkSpec, ...] = ()
    duration: float = 0.0
    autostart: bool = True
    workers: int = 1
    conversations: bool | None = None
    series: bool | None = None


@dataclass(frozen=True)
class ServiceConfig:
    """A whole configuration: the service settings and the declared sessions.

    Attributes:
        path: the file it was read from ("" when built in code).
        service: the ``[service]`` table.
        sessions: the ``[[session]]`` tables, names unique.
    """

    service: ServiceSettings = field(default_factory=ServiceSettings)
    sessions: tuple[SessionSpec, ...] = ()
    path: str = ""


def load_config(path: str | os.PathLike[str]) -> ServiceConfig:
    """Read and validate a TOML configuration file.

    Relative ``token_file`` and ``output_dir`` are taken from the current directory.

    Args:
        path: the TOML file.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file cannot be read, is no regular file (a device, a FIFO), is larger
            than ``MAX_CONFIG_BYTES``, is not UTF-8 TOML, or a key is invalid (the message names
            the file, the key and the problem).
    """
    origin = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
        fd = os.open(origin, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(origin, "", "is not a regular file")
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(origin, "", f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(origin, "", f"is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(origin, "", f"is not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(origin, "", f"not valid TOML: {exc}") from exc
    return parse_config(data, origin=origin)


def parse_config(
    data: Mapping[str, Any], *, origin: str = "<config>", cwd: str | None = None
) -> ServiceConfig:
    """Validate a parsed TOML document.

    Args:
        data: the document (``tomllib.load`` output).
        origin: named in errors (the file path).
        cwd: directory relative paths are taken from; None means the current directory.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: an unknown or invalid key, or duplicate session names.
    """
    no_unknown(data, {"service", "session"}, origin, "")
    service_table = table(data.get("service", {}), origin, "service")
    service = parse_service(service_table, origin, cwd or os.getcwd())
    raw_sessions = data.get("session", [])
    if not isinstance(raw_sessions, list):
        raise ConfigError(origin, "session", "must be an array of tables ([[session]])")
    sessions: list[SessionSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_sessions):
        spec = parse_session_spec(
            raw, origin=origin, key=f"session[{i}]", max_filter_bytes=service.max_filter_bytes
        )
        if spec.name in seen:
            raise ConfigError(origin, f"session[{i}].name", f"duplicate session name {spec.name!r}")
        seen.add(spec.name)
        sessions.append(spec)
    return ServiceConfig(service, tuple(sessions), origin)


def parse_session_spec(
    raw: Any,
    *,
    origin: str = "request",
    key: str = "",
    check_filter: bool = True,
    max_filter_bytes: int = MAX_FILTER_BYTES,
) -> SessionSpec:
    """Validate one session spec (a ``[[session]]`` table or a JSON object).

    CPU work grows with the filter (it is parsed): the service calls this in a worker thread.

    Args:
        raw: the table.
        origin: named in errors (the file path, or "request").
        key: prefix of the keys named in errors (``session[0]``); "" for a bare spec.
        check_filter: parse the filter expression now, so a malformed one is refused with its
            caret message.
        max_filter_bytes: a longer filter expression is refused before it is parsed.

    Returns:
        The validated spec.

    Raises:
        ConfigError: an invalid key; PathOutsideError for a path leaving the output directory.
    """
    t = table(raw, origin, key or "session")
    keys = {
        "name",
        "source",
        "filter",
        "snaplen",
        "queue_size",
        "sinks",
        "duration",
        "autostart",
        "workers",
        "conversations",
        "series",
    }
    no_unknown(t, keys, origin, key)
    if "name" not in t:
        raise ConfigError(origin, key_of(key, "name"), "missing (every session needs a name)")
    name = as_str(t, "name", "", origin, key)
    if not _NAME.match(name):
        raise ConfigError(
            origin,
            key_of(key, "name"),
            f"{name!r} is not a valid name (1-64 of A-Z a-z 0-9 _ . -, not starting with . or -)",
        )
    if "source" not in t:
        raise ConfigError(
            origin, key_of(key, "source"), 'missing (e.g. {type = "afpacket", interface = "lo"})'
        )
    source = _parse_source(t["source"], origin, key_of(key, "source"))
    raw_sinks = t.get("sinks", [])
    if not isinstance(raw_sinks, list):
        raise ConfigError(origin, key_of(key, "sinks"), "must be an array of tables")
    sinks = tuple(
        parse_sink(
            s,
            origin,
            f"{key_of(key, 'sinks')}[{i}]",
            session=name,
            max_filter_bytes=max_filter_bytes,
            check_filter=check_filter,
        )
        for i, s in enumerate(raw_sinks)
    )
    workers = as_int(t, "workers", 1, origin, key, low=1, high=64)
    if workers > 1 and source.type != "afpacket":
        raise ConfigError(
            origin,
            key_of(key, "workers"),
            "more than one worker needs an afpacket source (a fanout group)",
        )
    recorders = [i for i, s in enumerate(sinks) if s.type == "recorder"]
    if len(recorders) > 1:
        raise ConfigError(
            origin,
            f"{key_of(key, 'sinks')}[{recorders[1]}]",
            "a session has at most one recorder sink",
        )
    if recorders and workers > 1:
        raise ConfigError(
            origin,
            f"{key_of(key, 'sinks')}[{recorders[0]}]",
            "a recorder sink needs workers = 1 (each worker would hold its own part)",
        )
    analysis: dict[str, bool | None] = {}
    for flag in ("conversations", "series"):
        value = t.get(flag)
        analysis[flag] = None if value is None else as_bool(t, flag, False, origin, key)
        if analysis[flag] and workers > 1:
            raise ConfigError(origin, key_of(key, flag), "needs workers = 1")
    filter_expr = as_str(t, "filter", "", origin, key).strip()
    check_filter_size(filter_expr, max_filter_bytes, origin, key_of(key, "filter"))
    if filter_expr and check_filter:
        check_filter_syntax(filter_expr, origin, key_of(key, "filter"))
    return SessionSpec(
        name=name,
        source=source,
        filter=filter_expr,
        snaplen=as_int(t, "snaplen", 0, origin, key, low=0, high=262144),
        queue_size=as_int(t, "queue_size", 0, origin, key, low=0, high=1 << 24),
        sinks=sinks,
        duration=as_num(t, "duration", 0.0, origin, key),  # at most 1e9 s
        autostart=as_bool(t, "autostart", True, origin, key),
        workers=workers,
        conversations=analysis["conversations"],
        series=analysis["series"],
    )


def _parse_source(raw: Any, origin: str, key: str) -> SourceSpec:
    t = table(raw, origin, key)
    kind = as_str(t, "type", "", origin, key)
    if kind not in SOURCE_TYPES:
        raise ConfigError(
            origin,
            key_of(key, "type"),
            f"unknown source type {kind!r} (one of: {', '.join(SOURCE_TYPES)})",
        )
    no_unknown(
        t,
        {"type", "interface", "promisc", "direction", *BACKEND_OPTIONS.get(kind, {})}
        if kind != "file"
        else {"type", "path", "realtime"},
        origin,
        key,
    )
    if kind == "file":
        path = relative_path(as_str(t, "path", "", origin, key), origin, key_of(key, "path"))
        options: tuple[tuple[str, Any], ...] = ()
        if "realtime" in t:
            options = (("realtime", as_bool(t, "realtime", False, origin, key)),)
        return SourceSpec(type=kind, path=path, options=options)
    interface = as_str(t, "interface", "", origin, key)
    if not interface or "/" in interface or len(interface) > 15:
        raise ConfigError(
            origin, key_of(key, "interface"), f"expected an interface name, got {interface!r}"
        )
    direction = as_str(t, "direction", "inout", origin, key)
    if direction not in _DIRECTIONS:
        raise ConfigError(
            origin,
            key_of(key, "direction"),
            f"expected one of {', '.join(_DIRECTIONS)}, got {direction!r}",
        )
    options = check_options(
        {k: v for k, v in t.items() if k not in {"type", "interface", "promisc", "direction"}},
        BACKEND_OPTIONS[kind],
        origin,
        key,
    )
    given = {k for k, _ in options}
    for other in ("ring_size", "buffer_size"):
        if "buffer_kib" in given and other in given:
            raise ConfigError(
                origin, key_of(key, "buffer_kib"), f"give buffer_kib or {other}, not both"
            )
    return SourceSpec(
        type=kind,
        interface=interface,
        promisc=as_bool(t, "promisc", True, origin, key),
        direction=direction,
        options=options,
    )
