"""Typed reads of TOML/JSON tables for the config parser, each error naming origin and key.

Pure module. Every helper takes the table, the key, a default, where the table came from and the
dotted prefix of its keys, and returns the value with its type checked or raises ConfigError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigError

__all__ = ["as_bool", "as_int", "as_num", "as_str", "key_of", "no_unknown", "table"]


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
                key_of(prefix, str(name)),
                f"unknown key (known: {', '.join(sorted(allowed))})",
            )


def as_str(t: Mapping[str, Any], name: str, default: str, origin: str, prefix: str) -> str:
    """``t[name]`` as a string (``default`` when missing).

    Raises:
        ConfigError: not a string.
    """
    value = t.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(origin, key_of(prefix, name), f"must be a string, got {value!r}")
    return value


def as_bool(t: Mapping[str, Any], name: str, default: bool, origin: str, prefix: str) -> bool:
    """``t[name]`` as a boolean (``default`` when missing).

    Raises:
        ConfigError: not true or false.
    """
    value = t.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(origin, key_of(prefix, name), f"must be true or false, got {value!r}")
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
        raise ConfigError(origin, key_of(prefix, name), f"must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(origin, key_of(prefix, name), f"must be {bound}, got {value}")
    return value


def as_num(t: Mapping[str, Any], name: str, default: float, origin: str, prefix: str) -> float:
    """``t[name]`` as a finite number >= 0 (``default`` when missing).

    Raises:
        ConfigError: not a number, negative, or not finite.
    """
    value = t.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(origin, key_of(prefix, name), f"must be a number, got {value!r}")
    if value < 0 or not math.isfinite(value):
        raise ConfigError(
            origin, key_of(prefix, name), f"must be a finite number >= 0, got {value}"
        )
    return float(value)
