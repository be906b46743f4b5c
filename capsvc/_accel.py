"""Which implementation of the per-packet hot loops runs: C when built, else pure Python.

``capsvc._speedups`` (built from capsvc/_speedups.c by setup.py when a compiler is present) has
C versions of the TPACKET_V3 block parser, the pcap record encoder, the pcap file reader's
filter, the flight recorder's append and the default text line; they give the same results as
the Python code they stand in for. Setting ``CAPSVC_NO_SPEEDUPS=1`` in the environment (read at
import) selects the Python code even where the module is built.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["speedups"]


def speedups() -> ModuleType | None:
    """The C module, or None when it is not built or ``CAPSVC_NO_SPEEDUPS`` is set."""
    if os.environ.get("CAPSVC_NO_SPEEDUPS", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("capsvc._speedups")
    except ImportError:
        return None
