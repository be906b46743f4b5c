"""The ``[[session.sinks]]`` tables: where a session's packets go.

Pure module. A sink table becomes a ``SinkSpec`` (``capsvc.sinks._build`` makes the sink);
every key is checked against the sink type's own (a rotation key on a text sink is refused),
and paths stay inside the output directory (checked lexically here, opened below the
directory's descriptor by the service).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import ConfigError
from ..sinks._build import SINK_TYPES, SinkSpec
from ..sinks._rotate import MAX_ROTATE_BYTES, MAX_ROTATE_SECONDS
from ._settings import positive
from ._validate import (
    as_bool,
    as_int,
    as_num,
    as_str,
    check_filter_size,
    check_filter_syntax,
    key_of,
    no_unknown,
    relative_path,
    table,
)

__all__ = ["RECORDER_BYTES", "RECORDER_SECONDS", "parse_sink"]

#: Bounds of a recorder sink: bytes held (1 MiB to 1 TiB) and seconds (a day).
RECORDER_BYTES = (1 << 20, 1 << 40)
RECORDER_SECONDS = 86400.0


def parse_sink(
    raw: Any,
    origin: str,
    key: str,
    *,
    session: str,
    max_filter_bytes: int,
    check_filter: bool,
) -> SinkSpec:
    """Validate one sink table (``session`` names the default recorder dump name).

    Raises:
        ConfigError: an invalid key; PathOutsideError for a path leaving the output directory.
    """
    t = table(raw, origin, key)
    kind = as_str(t, "type", "", origin, key)
    if kind not in SINK_TYPES:
        raise ConfigError(
            origin,
            key_of(key, "type"),
            f"unknown sink type {kind!r} (one of: {', '.join(SINK_TYPES)})",
        )
    if kind == "recorder":
        return _parse_recorder(t, origin, key, session, max_filter_bytes, check_filter)
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


def _parse_recorder(
    t: Mapping[str, Any],
    origin: str,
    key: str,
    session: str,
    max_filter_bytes: int,
    check_filter: bool,
) -> SinkSpec:
    """A ``recorder`` sink: a flight recorder whose dumps are named by ``path`` (strftime(3)
    fields, default ``SESSION-%Y%m%d-%H%M%S.pcap``) below the output directory."""
    allowed = {"type", "path", "seconds", "max_bytes", "trigger", "after", "holdoff"}
    no_unknown(t, allowed | {"dump_on_stop"}, origin, key)
    path = as_str(t, "path", "", origin, key) or f"{session}-%Y%m%d-%H%M%S.pcap"
    path = relative_path(path, origin, key_of(key, "path"))
    seconds = positive(
        as_num(t, "seconds", 60.0, origin, key, high=RECORDER_SECONDS),
        origin,
        key_of(key, "seconds"),
    )
    low, high = RECORDER_BYTES
    trigger = as_str(t, "trigger", "", origin, key).strip()
    check_filter_size(trigger, max_filter_bytes, origin, key_of(key, "trigger"))
    if trigger and check_filter:
        check_filter_syntax(trigger, origin, key_of(key, "trigger"))
    holdoff = None
    if "holdoff" in t:
        holdoff = as_num(t, "holdoff", 0.0, origin, key, high=RECORDER_SECONDS)
    return SinkSpec(
        type="recorder",
        path=path,
        seconds=seconds,
        max_bytes=as_int(t, "max_bytes", 64 * 2**20, origin, key, low=low, high=high),
        trigger=trigger,
        after=as_num(t, "after", 5.0, origin, key, high=RECORDER_SECONDS),
        holdoff=holdoff,
        dump_on_stop=as_bool(t, "dump_on_stop", False, origin, key),
    )
