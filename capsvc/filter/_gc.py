"""Compiling without the cyclic garbage collector running.

Lowering, factoring and code generation allocate tens of thousands of short-lived objects and
make no reference cycles worth collecting meanwhile; the collections those allocations trigger
cost as much as the compilation itself on a 50-term expression (measured with
bench/bench_filter.py). The collector is paused for the compilation and resumed after it, unless
it was already off.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause automatic garbage collection inside the block (a no-op when it is already off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
