"""Typed reads of TOML/JSON tables for the config parser, each error naming origin and key.

Pure module. Every helper takes the table, the key, a default, where the table came from and the
dotted prefix of its keys, and returns the value with its type checked or raises ConfigError.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigError, FilterError, PathOutsideError

__all__ = [
    "as_bool",
    "as_int",
    "as_num",
    "as_str",
    "check_filter_size",
    "check_filter_syntax",
    "check_options",
    "key_of",
    "no_unknown",
    "relative_path",
    "table",
]


def _short(value: Any) -> str:
    """A value for an error message: its repr, cut to 60 characters (a request may send a huge
    one, and its repr must not cost more than the message is worth)."""
    if isinstance(value, list | dict):
        return f"a{'n' if isinstance(value, list) else ''} {type(value).__name__}"
    text = repr(value) if not isinstance(value, str) or len(value) < 200 else repr(value[:60])
    return text if len(text) <= 60 else text[:57] + "..."


def key_of(prefix: str, key: str) -> str:
    """``prefix.key``, or ``key`` alone without a prefix."""
    return f"{prefix}.{key}" if prefix else key


def table(value: Any, origin: str, key: str) -> Mapping[str, Any]:
    """The value as a table.

    Raises:
        ConfigError: it is not one.
    """
    if not isinstance(value, Mapping):
        raise ConfigError(origin, key, f"must be a table, got {type(value).__name__}")
    return value


def no_unknown(t: Mapping[str, Any], allowed: set[str], origin: str, prefix: str) -> None:
    """Refuse keys outside ``allowed``.

    Raises:
        ConfigError: naming the first unknown key and the known ones.
    """
    for name in t:
        if name not in allowed:
            raise ConfigError(
                origin,
                key_of(prefix, _short(name) if not isinstance(name, str) else name[:64]),
                f"unknown key (known: {', '.join(sorted(allowed))})",
            )


def as_str(t: Mapping[str, Any], name: str, default: str, origin: str, prefix: str) -> str:
    """``t[name]`` as a string (``default`` when missing).

    Raises:
        ConfigError: not a string.
    """
    value = t.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(origin, key_of(prefix, name), f"must be a string, got {_short(value)}")
    return value


def as_bool(t: Mapping[str, Any], name: str, default: bool, origin: str, prefix: str) -> bool:
    """``t[name]`` as a boolean (``default`` when missing).

    Raises:
        ConfigError: not true or false.
    """
    value = t.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(
            origin, key_of(prefix, name), f"must be true or false, got {_short(value)}"
        )
    return value


def as_int(
    t: Mapping[str, Any],
    name: str,
    default: int,
    origin: str,
    prefix: str,
    *,
    low: int = 0,
    high: int | None = None,
) -> int:
    """``t[name]`` as an integer in [low, high] (``default`` when missing; no upper bound when
    ``high`` is None).

    Raises:
        ConfigError: not an integer (booleans are not), or out of bounds.
    """
    value = t.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(origin, key_of(prefix, name), f"must be an integer, got {_short(value)}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(origin, key_of(prefix, name), f"must be {bound}, got {value}")
    return value


def as_num(
    t: Mapping[str, Any],
    name: str,
    default: float,
    origin: str,
    prefix: str,
    *,
    high: float = 1e9,
) -> float:
    """``t[name]`` as a finite number in [0, high] (``default`` when missing; ``high`` 1e9 unless
    given: about 30 years of seconds, so no deadline computed from it can overflow).

    Raises:
        ConfigError: not a number, negative, not finite, or above ``high``.
    """
    value = t.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(origin, key_of(prefix, name), f"must be a number, got {_short(value)}")
    try:
        number = float(value)  # an integer beyond a float's range raises OverflowError
    except OverflowError:
        number = math.inf
    if not 0 <= number <= high:
        raise ConfigError(
            origin, key_of(prefix, name), f"must be a number between 0 and {high:g}, got {value}"
        )
    return number


def check_options(
    t: Mapping[str, Any], known: Mapping[str, type], origin: str, prefix: str
) -> tuple[tuple[str, Any], ...]:
    """The backend options of a table, each of a known name and of its type.

    Args:
        t: the options (the keys not handled elsewhere).
        known: option name -> ``bool``, ``int`` (an integer >= 0) or ``str``.

    Returns:
        ``(name, value)`` pairs, sorted by name.

    Raises:
        ConfigError: an option capsvc does not know for the backend, or a value of another type.
    """
    out = []
    for name in sorted(t):
        kind = known.get(name)
        if kind is None:
            raise ConfigError(
                origin, key_of(prefix, name[:64]), f"unknown option (known: {', '.join(known)})"
            )
        if kind is bool:
            value: Any = as_bool(t, name, False, origin, prefix)
        elif kind is int:
            value = as_int(t, name, 0, origin, prefix, low=0, high=1 << 40)
        else:
            value = as_str(t, name, "", origin, prefix)
        out.append((name, value))
    return tuple(out)


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


def check_filter_syntax(expr: str, origin: str, key: str) -> None:
    """Parse a filter expression for its syntax only (the link type is known once the source
    is open, and it is checked again then).

    Raises:
        ConfigError: malformed (the message holds the caret), or nested too deeply.
    """
    from .._packet import LinkType
    from ..filter import parse_filter

    try:
        parse_filter(expr, LinkType.ETHERNET)
    except FilterError as exc:
        raise ConfigError(origin, key, f"bad filter:\n{exc}") from exc
    except RecursionError:  # a parser without a depth limit of its own
        raise ConfigError(origin, key, "bad filter: nested too deeply") from None
