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

from .._errors import ConfigError, FilterError, PathOutsideError
from ..sinks._build import SinkSpec
from ..sinks._rotate import MAX_ROTATE_BYTES, MAX_ROTATE_SECONDS
from ._validate import (
    as_bool,
    as_int,
    as_num,
    as_str,
    check_options,
    key_of,
    no_unknown,
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
    "load_config",
    "parse_config",
    "parse_session_spec",
]

#: Where the service listens when the config says nothing: loopback only.
DEFAULT_LISTEN = "127.0.0.1:8321"
LIVE_SOURCES = ("afpacket", "libpcap", "pfring")
SOURCE_TYPES = (*LIVE_SOURCES, "file")
SINK_TYPES = ("pcap", "pcapng", "text", "stats")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_DIRECTIONS = ("in", "out", "inout")
#: The largest configuration file read (bytes).
MAX_CONFIG_BYTES = 1 << 20
#: Default bound on a filter expression's length (bytes of UTF-8).
MAX_FILTER_BYTES = 65536
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
class ServiceSettings:
    """The ``[service]`` table.

    Attributes:
        listen: ``host:port`` (default ``127.0.0.1:8321``; port 0 picks a free port).
        unix_socket: a unix socket path to listen on instead of TCP (created 0600), or None.
        token_file: file holding the bearer token; generated (0600) on first start if missing.
        output_dir: absolute directory every capture file lives in.
        input_dir: absolute directory ``file`` sources read from ("" in code: ``output_dir``).
        max_sessions: most sessions running at once (ad hoc captures included); default 16.
        max_duration: cap in seconds on ad hoc captures and API-started sessions; 0 means none.
        max_subscribers: most live stream subscribers at once, service-wide; default 8.
        max_filter_bytes: longest filter expression accepted (bytes); default 65536.
        max_request_bytes: largest request body (bytes); default 1 MiB.
        max_connections: most HTTP connections open at once; default 64 (more are refused).
        idle_timeout: seconds a connection may take to send a whole request, or sit idle
            between requests; default 15.
    """

    listen: str = DEFAULT_LISTEN
    unix_socket: str | None = None
    token_file: str = "token"
    output_dir: str = "captures"
    input_dir: str = ""
    max_sessions: int = 16
    max_duration: float = 3600.0
    max_subscribers: int = 8
    max_filter_bytes: int = MAX_FILTER_BYTES
    max_request_bytes: int = 1 << 20
    max_connections: int = 64
    idle_timeout: float = 15.0

    @property
    def input_directory(self) -> str:
        """Where file sources are read: ``input_dir``, or ``output_dir`` when not set."""
        return self.input_dir or self.output_dir

    @property
    def host_port(self) -> tuple[str, int]:
        """``listen`` split into host and port (IPv6 brackets removed)."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


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
    service = _parse_service(service_table, origin, cwd or os.getcwd())
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


def _parse_service(t: Mapping[str, Any], origin: str, cwd: str) -> ServiceSettings:
    keys = {
        "listen",
        "token_file",
        "output_dir",
        "input_dir",
        "max_sessions",
        "max_duration",
        "max_subscribers",
        "max_filter_bytes",
        "max_request_bytes",
        "max_connections",
        "idle_timeout",
    }
    no_unknown(t, keys, origin, "service")
    d = ServiceSettings()
    listen = as_str(t, "listen", d.listen, origin, "service")
    unix_socket: str | None = None
    if listen.startswith("unix:"):
        unix_socket = os.path.join(cwd, listen[5:])
        if not listen[5:]:
            raise ConfigError(origin, "service.listen", "unix: needs a socket path")
    else:
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(
                origin, "service.listen", f"expected host:port or unix:PATH, got {listen!r}"
            )
    output_dir = as_str(t, "output_dir", d.output_dir, origin, "service")
    input_dir = as_str(t, "input_dir", output_dir, origin, "service")
    token_file = as_str(t, "token_file", d.token_file, origin, "service")
    if not output_dir:
        raise ConfigError(origin, "service.output_dir", "must not be empty")
    if not input_dir:
        raise ConfigError(origin, "service.input_dir", "must not be empty")
    if not token_file:
        raise ConfigError(origin, "service.token_file", "must not be empty")
    return ServiceSettings(
        listen=listen,
        unix_socket=unix_socket,
        token_file=os.path.normpath(os.path.join(cwd, token_file)),
        output_dir=os.path.normpath(os.path.join(cwd, output_dir)),
        input_dir=os.path.normpath(os.path.join(cwd, input_dir)),
        max_sessions=as_int(t, "max_sessions", d.max_sessions, origin, "service", low=1),
        max_duration=as_num(t, "max_duration", d.max_duration, origin, "service"),
        max_subscribers=as_int(t, "max_subscribers", d.max_subscribers, origin, "service", low=0),
        max_filter_bytes=as_int(
            t, "max_filter_bytes", d.max_filter_bytes, origin, "service", low=1, high=1 << 24
        ),
        max_request_bytes=as_int(
            t, "max_request_bytes", d.max_request_bytes, origin, "service", low=1024, high=1 << 30
        ),
        max_connections=as_int(
            t, "max_connections", d.max_connections, origin, "service", low=1, high=65536
        ),
        idle_timeout=_positive(
            as_num(t, "idle_timeout", d.idle_timeout, origin, "service", high=86400),
            origin,
            "service.idle_timeout",
        ),
    )


def _positive(value: float, origin: str, key: str) -> float:
    if value <= 0:
        raise ConfigError(origin, key, "must be greater than 0")
    return value


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
        _parse_sink(s, origin, f"{key_of(key, 'sinks')}[{i}]") for i, s in enumerate(raw_sinks)
    )
    workers = as_int(t, "workers", 1, origin, key, low=1, high=64)
    if workers > 1 and source.type != "afpacket":
        raise ConfigError(
            origin,
            key_of(key, "workers"),
            "more than one worker needs an afpacket source (a fanout group)",
        )
    filter_expr = as_str(t, "filter", "", origin, key).strip()
    check_filter_size(filter_expr, max_filter_bytes, origin, key_of(key, "filter"))
    if filter_expr and check_filter:
        _check_filter(filter_expr, origin, key_of(key, "filter"))
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


def _parse_sink(raw: Any, origin: str, key: str) -> SinkSpec:
    t = table(raw, origin, key)
    kind = as_str(t, "type", "", origin, key)
    if kind not in SINK_TYPES:
        raise ConfigError(
            origin,
            key_of(key, "type"),
            f"unknown sink type {kind!r} (one of: {', '.join(SINK_TYPES)})",
        )
    allowed = {"type", "path"}
    if kind in ("pcap", "pcapng"):
        allowed |= {"rotate_seconds", "rotate_mb", "max_files"}
    if kind == "pcap":
        allowed |= {"nanosecond"}
    elif kind == "text":
        allowed |= {"verbose", "ascii"}
    else:
        allowed |= {"interval"}
    no_unknown(t, allowed, origin, key)
    path = as_str(t, "path", "", origin, key)
    if path or kind != "stats":
        path = relative_path(path, origin, key_of(key, "path"))
    interval = as_num(t, "interval", 1.0, origin, key, high=86400)
    if interval <= 0:
        raise ConfigError(origin, key_of(key, "interval"), "must be greater than 0")
    return SinkSpec(
        type=kind,
        path=path,
        rotate_seconds=as_num(t, "rotate_seconds", 0.0, origin, key, high=MAX_ROTATE_SECONDS),
        rotate_mb=as_num(t, "rotate_mb", 0.0, origin, key, high=MAX_ROTATE_BYTES / 1e6),
        max_files=as_int(t, "max_files", 0, origin, key, low=0),
        verbose=as_bool(t, "verbose", False, origin, key),
        ascii=as_bool(t, "ascii", False, origin, key),
        interval=interval,
        nanosecond=as_bool(t, "nanosecond", True, origin, key),
    )


def relative_path(path: str, origin: str, key: str) -> str:
    """Check a path meant to stay inside the output directory, lexically.

    Args:
        path: as given; must be relative, without ``..`` components or NUL bytes.
        origin: named in errors.
        key: named in errors.

    Returns:
        The normalized relative path.

    Raises:
        ConfigError: the path is empty; PathOutsideError: it is absolute or climbs out with ``..``.
    """
    if not path:
        raise ConfigError(origin, key, "missing (a file name inside the output directory)")
    if len(path) > 4096:
        raise ConfigError(origin, key, "is longer than 4096 characters")
    if "\0" in path:
        raise ConfigError(origin, key, "must not contain NUL bytes")
    parts = path.replace("\\", "/").split("/")
    if os.path.isabs(path) or ".." in parts:
        raise PathOutsideError(
            origin,
            key,
            f"{path!r} is outside the output directory (give a relative path without '..')",
        )
    normal = os.path.normpath(path)
    if normal in (".", ""):
        raise ConfigError(origin, key, f"{path!r} names the directory, not a file")
    return normal


def check_filter_size(expr: str, limit: int, origin: str, key: str) -> None:
    """Refuse a filter expression longer than ``limit`` bytes before anything parses it.

    Raises:
        ConfigError: it is longer.
    """
    if len(expr) > limit or len(expr.encode("utf-8", "surrogatepass")) > limit:
        raise ConfigError(
            origin, key, f"is longer than {limit} bytes (max_filter_bytes); shorten it"
        )


def _check_filter(expr: str, origin: str, key: str) -> None:
    # Syntax only: the link type is known once the source is open, and checked again then.
    from .._packet import LinkType
    from ..filter import parse_filter

    try:
        parse_filter(expr, LinkType.ETHERNET)
    except FilterError as exc:
        raise ConfigError(origin, key, f"bad filter:\n{exc}") from exc
    except RecursionError:  # a parser without a depth limit of its own
        raise ConfigError(origin, key, "bad filter: nested too deeply") from None
