"""Prometheus naming conventions, checked on an exposition read by prometheus-client's parser.

The rules of ``promtool check metrics`` (Prometheus's promlint) where they apply to a text
exposition, and the project's own: a ``capsvc_`` family names its unit (or the things it
counts) last.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

_SNAKE = re.compile(r"^[a-z_][a-z0-9_]*$")
#: promlint's abbreviated units (use the full base unit instead).
ABBREVIATIONS = frozenset(
    [
        "s",
        "ms",
        "us",
        "ns",
        "sec",
        "secs",
        "msec",
        "usec",
        "nsec",
        "b",
        "kb",
        "kib",
        "mb",
        "mib",
        "gb",
        "gib",
        "tb",
        "pb",
        "m",
        "h",
        "d",
    ]
)
#: Units that are not base units, and the base unit to use.
NON_BASE = {
    "milliseconds": "seconds",
    "microseconds": "seconds",
    "nanoseconds": "seconds",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "kilobytes": "bytes",
    "megabytes": "bytes",
    "gigabytes": "bytes",
    "terabytes": "bytes",
    "kibibytes": "bytes",
    "mebibytes": "bytes",
    "bits": "bytes",
    "percent": "ratio",
}
#: What the last word of a capsvc family may be: a base unit or the things it counts.
UNITS = frozenset(
    {
        "bytes",
        "seconds",
        "packets",
        "errors",
        "sessions",
        "subscribers",
        "processes",
        "dumps",
        "triggers",
    }
)
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def lint(text: str) -> list[str]:
    """Every convention the exposition ``text`` breaks, one line each ([] when none)."""
    problems = _raw_counters(text)
    seen: set[str] = set()
    for family in text_string_to_metric_families(text):
        name, kind = family.name, family.type
        problems += _lint_family(name, kind, family.documentation, seen)
        for sample in family.samples:
            problems += _lint_sample(name, kind, sample.name, sample.labels)
    return problems


def _raw_counters(text: str) -> list[str]:
    """Counter samples as written (the parser adds a missing ``_total`` to what it returns)."""
    counters = {
        line.split()[2]
        for line in text.splitlines()
        if line.startswith("# TYPE ") and line.split()[3:4] == ["counter"]
    }
    out: list[str] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        sample = re.split(r"[{\s]", line, maxsplit=1)[0]
        base = sample.removesuffix("_total").removesuffix("_created")
        if (sample in counters or base in counters) and not (
            sample.endswith("_total") or sample.endswith("_created")
        ):
            out.append(f"{sample}: counter metrics should have '_total' suffix")
    return out


def _lint_family(name: str, kind: str, doc: str, seen: set[str]) -> list[str]:
    out: list[str] = []
    if name in seen:
        out.append(f"{name}: metric family listed twice")
    seen.add(name)
    if not doc.strip():
        out.append(f"{name}: no help text")
    if ":" in name:
        out.append(f"{name}: metric names should not contain ':' (reserved for recording rules)")
    if not _SNAKE.match(name):
        out.append(f"{name}: metric names should be written in 'snake_case' not 'camelCase'")
    words = name.split("_")
    for word in words:
        if word in ABBREVIATIONS:
            out.append(f"{name}: metric names should not contain abbreviated units ({word!r})")
        if word in NON_BASE:
            out.append(f"{name}: use base unit {NON_BASE[word]!r} instead of {word!r}")
    for t in _TYPES:
        if t in words:
            out.append(f"{name}: metric name should not include type {t!r}")
    info = kind == "info" or (kind == "gauge" and words[-1] == "info")
    if name.startswith("capsvc_") and not info and words[-1] not in UNITS:
        out.append(f"{name}: the last word should be its unit or what it counts, not {words[-1]!r}")
    return out


def _lint_sample(family: str, kind: str, sample: str, labels: dict[str, str]) -> list[str]:
    out: list[str] = []
    if kind != "counter" and sample.endswith("_total"):
        out.append(f"{sample}: non-counter metrics should not have '_total' suffix")
    if kind not in ("histogram", "gaugehistogram") and sample.endswith("_bucket"):
        out.append(f"{sample}: non-histogram metrics should not have '_bucket' suffix")
    if kind not in ("histogram", "summary", "gaugehistogram"):
        for suffix in ("_count", "_sum"):
            if sample.endswith(suffix):
                out.append(
                    f"{sample}: non-histogram and non-summary metrics should not "
                    f"have {suffix!r} suffix"
                )
        if "le" in labels:
            out.append(f"{sample}: non-histogram metrics should not have 'le' label")
    if kind != "summary" and "quantile" in labels:
        out.append(f"{sample}: non-summary metrics should not have 'quantile' label")
    if sample.endswith("_info") and kind not in ("info", "gauge"):
        out.append(f"{sample}: metrics ending with _info should be gauges")
    for label in labels:
        if not _SNAKE.match(label):
            out.append(f"{sample}: label names should be written in 'snake_case' not 'camelCase'")
    return out
