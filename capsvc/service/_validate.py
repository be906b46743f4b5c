"""Typed reads of TOML/JSON tables for the config parser, each error naming origin and key.

Pure module. Every helper takes the table, the key, a default, where the table came from and the
dotted prefix of its keys, and returns the value with its type checked or raises ConfigError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigError

__all__ = [
    "as_bool",
    "as_int",
    "as_num",
    "as_str",
    "check_options",
    "key_of",
    "no_unknown",
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
