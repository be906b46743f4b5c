"""The ``[service]`` table: where the service listens, where its files go, its limits.

Pure module (the group named by ``file_group`` is looked up when the service starts, not here).
Every key has a bound; an error names where it comes from (the file), the key
(``service.file_mode``) and what is wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigError
from .._files import DIR_MODE, FILE_MODE
from ._validate import as_bool, as_int, as_num, as_str, no_unknown

__all__ = [
    "DEFAULT_LISTEN",
    "MAX_FILTER_BYTES",
    "SERVICE_KEYS",
    "ServiceSettings",
    "dir_mode_for",
    "parse_service",
]

#: Where the service listens when the config says nothing: loopback only.
DEFAULT_LISTEN = "127.0.0.1:8321"
#: Default bound on a filter expression's length (bytes of UTF-8).
MAX_FILTER_BYTES = 65536
#: The most conversation entries a session's tables may hold (each of six; ~2.3 KiB a key).
MAX_CONVERSATION_ENTRIES = 1 << 16
#: The most top conversations and endpoints /metrics may show per session.
MAX_METRICS_TOP = 100
#: Keys each conversation table holds by default (``sinks._conversations.DEFAULT_MAX_ENTRIES``).
DEFAULT_CONVERSATION_ENTRIES = 4096
#: Seconds of I/O series kept by default (``sinks._series.DEFAULT_SERIES_SECONDS``).
DEFAULT_SERIES_SECONDS = 600
_OCTAL = re.compile(r"^0?o?[0-7]{3,4}$")


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
        metrics_auth: ``/metrics`` needs the bearer token (default True).
        file_mode: permission bits of the files the service creates (default 0o600); the
            directories it creates get the matching search bits (0o640 -> 0o750).
        file_group: the group (name or number) given to the files and directories the service
            creates; "" (the default) keeps the service's own. With ``serve --user`` the user
            must be a member.
        conversations: count each session's conversations (``ConversationSink``), for
            ``GET /v1/sessions/NAME/conversations`` and the top-K gauges; default False
            (it costs the writer thread about 4 us a packet, which a session taking hundreds
            of thousands of packets a second cannot spare). A session's own
            ``conversations`` key overrides it.
        conversation_entries: keys each conversation table holds (exact up to there, then
            Space-Saving's top K); default 4096.
        series: keep each session's per-second I/O series (``SeriesSink``), for
            ``GET /v1/sessions/NAME/series`` and the page's charts; default True. A session's
            own ``series`` key overrides it.
        series_seconds: seconds of series kept; default 600.
        metrics_top: conversations and endpoints per session shown as gauges on ``/metrics``
            (the top by bytes); 0 shows none; default 10.
        max_recorder_bytes: the memory all running sessions' flight recorders may hold
            together (the sum of their ``max_bytes``); a session that would pass it is
            refused; default 1 GiB.
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
    metrics_auth: bool = True
    file_mode: int = FILE_MODE
    file_group: str = ""
    conversations: bool = False
    conversation_entries: int = DEFAULT_CONVERSATION_ENTRIES
    series: bool = True
    series_seconds: int = DEFAULT_SERIES_SECONDS
    metrics_top: int = 10
    max_recorder_bytes: int = 1 << 30

    @property
    def input_directory(self) -> str:
        """Where file sources are read: ``input_dir``, or ``output_dir`` when not set."""
        return self.input_dir or self.output_dir

    @property
    def host_port(self) -> tuple[str, int]:
        """``listen`` split into host and port (IPv6 brackets removed)."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def dir_mode(self) -> int:
        """The mode of the directories the service creates (``dir_mode_for(file_mode)``)."""
        return dir_mode_for(self.file_mode)


#: The keys of the ``[service]`` table.
SERVICE_KEYS = frozenset(
    {
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
        "metrics_auth",
        "file_mode",
        "file_group",
        "conversations",
        "conversation_entries",
        "series",
        "series_seconds",
        "metrics_top",
        "max_recorder_bytes",
    }
)


def dir_mode_for(file_mode: int) -> int:
    """A directory mode that lets whoever may read the files reach them: 0700, plus read and
    search for the group (others) when the group (others) may read the files."""
    mode = DIR_MODE
    if file_mode & 0o040:
        mode |= 0o050
    if file_mode & 0o004:
        mode |= 0o005
    return mode


def parse_service(t: Mapping[str, Any], origin: str, cwd: str) -> ServiceSettings:
    """Validate the ``[service]`` table; relative paths are taken from ``cwd``.

    Raises:
        ConfigError: an unknown or invalid key.
    """
    no_unknown(t, set(SERVICE_KEYS), origin, "service")
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
        idle_timeout=positive(
            as_num(t, "idle_timeout", d.idle_timeout, origin, "service", high=86400),
            origin,
            "service.idle_timeout",
        ),
        metrics_auth=as_bool(t, "metrics_auth", d.metrics_auth, origin, "service"),
        file_mode=_file_mode(t.get("file_mode", d.file_mode), origin),
        file_group=_file_group(t, origin),
        conversations=as_bool(t, "conversations", d.conversations, origin, "service"),
        conversation_entries=as_int(
            t,
            "conversation_entries",
            d.conversation_entries,
            origin,
            "service",
            low=1,
            high=MAX_CONVERSATION_ENTRIES,
        ),
        series=as_bool(t, "series", d.series, origin, "service"),
        series_seconds=as_int(
            t, "series_seconds", d.series_seconds, origin, "service", low=1, high=86400
        ),
        metrics_top=as_int(
            t, "metrics_top", d.metrics_top, origin, "service", low=0, high=MAX_METRICS_TOP
        ),
        max_recorder_bytes=as_int(
            t, "max_recorder_bytes", d.max_recorder_bytes, origin, "service", low=0, high=1 << 40
        ),
    )


def positive(value: float, origin: str, key: str) -> float:
    """``value`` when it is greater than 0.

    Raises:
        ConfigError: it is 0.
    """
    if value <= 0:
        raise ConfigError(origin, key, "must be greater than 0")
    return value


def _file_mode(value: Any, origin: str) -> int:
    """``file_mode``: octal digits as a string (``"0640"``) or a TOML octal integer
    (``0o640``); the owner must keep read and write, and nothing beyond the permission bits
    (no setuid, setgid or sticky bit, no execute bit)."""
    key = "service.file_mode"
    if isinstance(value, str):
        if not _OCTAL.match(value.strip()):
            raise ConfigError(origin, key, f'expected octal digits such as "0640", got {value!r}')
        mode = int(value.strip().replace("o", ""), 8)
    elif isinstance(value, int) and not isinstance(value, bool):
        mode = value
    else:
        raise ConfigError(origin, key, f'expected a mode such as "0640" or 0o640, got {value!r}')
    if not 0 <= mode <= 0o777:
        raise ConfigError(
            origin, key, f'{value!r} is not a file mode (write it as "0640" or 0o640)'
        )
    if mode & 0o600 != 0o600:
        raise ConfigError(origin, key, f"{mode:04o}: the owner must keep read and write (0600)")
    if mode & 0o111:
        raise ConfigError(origin, key, f"{mode:04o}: capture files are not executable")
    return mode


def _file_group(t: Mapping[str, Any], origin: str) -> str:
    """``file_group``: a group name or number (as a string or an integer)."""
    value = t.get("file_group", "")
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 2**32 - 1:
            raise ConfigError(origin, "service.file_group", f"{value} is no group id")
        return str(value)
    group = as_str(t, "file_group", "", origin, "service").strip()
    if len(group) > 64 or any(c in group for c in ":/\0\n"):
        raise ConfigError(origin, "service.file_group", f"{group[:64]!r} is no group name")
    return group
