"""CompiledFilter (an expression compiled for one link type), parse_filter, and the flat Filter
criteria.

Compiling happens once, here; matching is the generated function, bound as the instance's
``match`` attribute so a call costs no method lookup.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from .._errors import FilterCompileError, FilterSyntaxError
from .._packet import LinkType
from ._ast import And, Host, IpProto, Node, Port
from ._codegen import build
from ._gc import gc_paused
from ._ir import Formula
from ._lower import lower
from ._shared import lowered

__all__ = ["CompiledFilter", "Filter", "parse_filter"]


class CompiledFilter:
    """A filter compiled for frames of one link type: a ``capsvc.Matcher`` whose ``match`` also
    takes the wire length.

    Attributes:
        node: the parsed expression.
        linktype: the link type of the frames ``match`` expects.
        source: the generated Python source (for inspection).
        match: ``match(frame, wire_len=None) -> bool``: ``frame`` the captured bytes,
            ``wire_len`` the packet's length on the wire (the pcap record's orig_len); None
            means ``len(frame)``, right for a frame that was not cut by a snapshot length.
            Only ``len``, ``less`` and ``greater`` read it (``wire_length`` says whether this
            expression does); a caller whose frames may be truncated passes it always, at no
            cost to expressions that do not. Never raises, whatever the bytes.
        wire_length: whether ``match`` reads ``wire_len``.
    """

    __slots__ = ("linktype", "match", "node", "source", "wire_length")

    match: Callable[..., bool]

    def __init__(
        self,
        node: Node,
        linktype: LinkType = LinkType.RAW,
        expr: str = "",
        formula: Formula | None = None,
    ) -> None:
        """Compile ``node`` for ``linktype``.

        ``formula``, when given, is ``node`` already lowered for ``linktype`` without packet
        metadata (what ``parse_filter`` shares with ``compile_bpf``).

        Raises:
            FilterCompileError: the link type cannot express a primitive.
        """
        self.node = node
        self.linktype = LinkType(linktype)
        text = expr or str(node)
        radiotap = self.linktype == LinkType.IEEE802_11_RADIO
        try:
            with gc_paused():
                if formula is None:
                    formula = lower(node, self.linktype, text, metadata=False)
                self.source, self.match = build(formula, "<filter>", radiotap=radiotap)
        except RecursionError as exc:
            raise FilterSyntaxError("expression nested too deeply to compile", text, 0) from exc
        except (SyntaxError, MemoryError) as exc:
            raise FilterSyntaxError("expression too complex to compile", text, 0) from exc
        self.wire_length = "if n is None else n" in self.source

    def __repr__(self) -> str:
        return f"CompiledFilter({str(self.node)!r}, {self.linktype.name})"


def parse_filter(
    expr: str, linktype: LinkType | int = LinkType.RAW, *, max_length: int | None = None
) -> CompiledFilter | None:
    """Parse and compile a filter expression for frames of ``linktype``.

    Args:
        expr: a tcpdump-style expression, for example ``"tcp port 443"``.
        linktype: the link type of the frames to match (default raw IP).
        max_length: the longest expression accepted, in characters (default
            ``capsvc.filter.MAX_LENGTH``, 64 KiB; 0 means no limit).

    Returns:
        A CompiledFilter, or None for an empty or blank expression (match everything).

    Raises:
        FilterSyntaxError: the expression is malformed, too long or nested too deeply.
        FilterCompileError: it asks for something the link type cannot express (also
            ``inbound``/``outbound``/``ifindex`` where only a live socket's kernel filter
            knows them). Both are FilterErrors; nothing else is raised.
    """
    try:
        kind = LinkType(linktype)
    except ValueError:
        raise FilterCompileError(f"unsupported link type {linktype!r}", expr, 0) from None
    node, formula = lowered(expr, kind, metadata=False, max_length=max_length)
    return None if node is None else CompiledFilter(node, kind, expr, formula)


_Addr = str | ipaddress.IPv4Address | ipaddress.IPv6Address | None


class Filter:
    """Flat criteria, all of which must hold (an empty Filter matches everything).

    Args:
        src_ip, dst_ip, host: addresses (text or ``ipaddress`` objects); ``host`` matches
            either end. None means any.
        src_port, dst_port, port: TCP/UDP/SCTP ports; 0 means any.
        proto: an IP protocol number (6 TCP, 17 UDP, ...); 0 means any.
        linktype: the link type of the frames given to ``match`` (default raw IP).

    Raises:
        FilterSyntaxError: an address or number is invalid.
    """

    def __init__(
        self,
        src_ip: _Addr = None,
        dst_ip: _Addr = None,
        host: _Addr = None,
        src_port: int = 0,
        dst_port: int = 0,
        port: int = 0,
        proto: int = 0,
        *,
        linktype: LinkType = LinkType.RAW,
    ) -> None:
        parts: list[Node] = []
        for value, direction in ((src_ip, "src"), (dst_ip, "dst"), (host, "")):
            if value is not None:
                try:
                    parts.append(Host(ipaddress.ip_address(value), direction))
                except ValueError:
                    raise FilterSyntaxError(f"invalid address {value!r}", str(value), 0) from None
        for number, direction in ((src_port, "src"), (dst_port, "dst"), (port, "")):
            if number:
                if not 1 <= number <= 65535:
                    raise FilterSyntaxError(f"port {number} outside 1-65535", str(number), 0)
                parts.append(Port(number, direction))
        if proto:
            if not 0 < proto <= 255:
                raise FilterSyntaxError(f"protocol {proto} outside 0-255", str(proto), 0)
            parts.append(IpProto(proto))
        node: Node | None = None
        for part in parts:
            node = part if node is None else And(node, part)
        self.node = node
        self._matcher = None if node is None else CompiledFilter(node, linktype)

    def is_empty(self) -> bool:
        """True when no criterion is set (the filter matches everything)."""
        return self.node is None

    def match(self, data: bytes, wire_len: int | None = None) -> bool:
        """Whether the frame meets every criterion (``wire_len`` as for
        ``CompiledFilter.match``)."""
        return True if self._matcher is None else self._matcher.match(data, wire_len)

    def __str__(self) -> str:
        return "" if self.node is None else str(self.node)

    def __repr__(self) -> str:
        return f"Filter({str(self)!r})"
