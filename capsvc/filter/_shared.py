"""Parse and lower once for both back-ends: a small cache of large expressions' IR.

An application or the service usually compiles one expression twice, the Python matcher for
the Session and the BPF program for the socket. For a large expression (thousands of terms)
parsing and lowering are a third of each compile, so the last few large expressions are kept,
keyed by their text and what changes their lowering. The IR is never changed once made, so
sharing it is safe; small expressions are not kept (compiling them takes microseconds).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .._packet import LinkType
from ._ast import And, IfIndex, Node, Not, Or, Vlan, Way
from ._gc import gc_paused
from ._ir import Formula
from ._lower import lower
from ._parser import parse

__all__ = ["lowered"]

#: Expressions of at least this many characters are kept.
KEEP_FROM = 2000
#: How many are kept (the least recently used goes first).
KEEP = 4

_Key = tuple[str, LinkType, bool, bool, int | None]
_kept: OrderedDict[_Key, tuple[Node, Formula]] = OrderedDict()
_lock = threading.Lock()


def _uses(node: Node) -> tuple[bool, bool]:
    """Whether ``node`` has a ``vlan`` and whether it reads packet metadata (without
    recursion): only then do ``kernel_vlan`` and ``metadata`` change its lowering."""
    vlan = meta = False
    stack: list[Node] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (And, Or)):
            stack += (item.left, item.right)
        elif isinstance(item, Not):
            stack.append(item.operand)
        elif isinstance(item, Vlan):
            vlan = True
        elif isinstance(item, (Way, IfIndex)):
            meta = True
    return vlan, meta


def lowered(
    expr: str,
    linktype: LinkType,
    *,
    kernel_vlan: bool = False,
    metadata: bool = True,
    max_length: int | None = None,
) -> tuple[Node | None, Formula | None]:
    """``parse(expr)`` and its ``lower(...)`` for ``linktype``; (None, None) when empty.

    Raises:
        FilterSyntaxError, FilterCompileError: as ``parse`` and ``lower``.
    """
    big = len(expr) >= KEEP_FROM
    if big:
        key: _Key = (expr, linktype, kernel_vlan, metadata, max_length)
        with _lock:
            found = _kept.get(key)
            if found is not None:
                _kept.move_to_end(key)
                return found
    with gc_paused():
        node = parse(expr, max_length=max_length)
        if node is None:
            return None, None
        formula = lower(node, linktype, expr, kernel_vlan=kernel_vlan, metadata=metadata)
    if big:
        vlan, meta = _uses(node)
        with _lock:
            # Stored under every key it is right for: a matcher and a kernel program of one
            # expression without vlan/inbound/outbound/ifindex share one lowering.
            for kv in (kernel_vlan, not kernel_vlan) if not vlan else (kernel_vlan,):
                for md in (metadata, not metadata) if not meta else (metadata,):
                    _kept[(expr, linktype, kv, md, max_length)] = (node, formula)
            while len(_kept) > KEEP * 4:
                _kept.popitem(last=False)
    return node, formula
