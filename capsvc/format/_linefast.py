"""The default line of whole batches in C, for the formatters it can stand in for.

The rule it keeps: the text is ``TextFormatter.format``'s, byte for byte, for every frame. The C
code (capsvc/_textline.h, in ``capsvc._speedups``) writes the lines of the common frames itself
(IPv4 and IPv6 carrying TCP, UDP or ICMP echo-like messages, on Ethernet, Linux cooked, raw IP
and loopback link types) and calls the formatter's ``format`` for every other frame: any payload
annotation (DNS, HTTP, TLS, QUIC long headers, NTP, ...), fragments, extension headers, frames
cut short, other link types. What leads to an annotation (ports, first payload bytes), the TCP
flag texts and the tags are handed to C from the Python tables here, once.

Only a plain ``TextFormatter`` (not a subclass) in its default mode is stood in for: not
verbose, no ``ascii``, no interface column. For anything else, or without the C speed-ups (not
built, or ``CAPSVC_NO_SPEEDUPS`` set), ``lines_of_*`` return None and the caller formats the
batch in Python.
"""

from __future__ import annotations

from .._accel import speedups
from .._packet import Direction, LinkType, PacketBatch
from .._records import RecordBlock
from ..decode._annotate import ANNOTATED_FIRST_BYTES
from ..decode._const import PORT_BGP, VLAN_TPIDS
from ..decode._ether import decode_ethernet
from ..decode._link import (
    LinkDecoder,
    decode_ipv4,
    decode_ipv6,
    decode_loop,
    decode_null,
    decode_raw,
    decode_sll,
    decode_sll2,
)
from ..decode._quic import QUIC_VERSIONS
from ._apps import UDP_PORTS, _quic
from ._line import DIRECTION_TAGS, TextFormatter, tag
from ._proto import _ICMP6_ID_SEQ, _ICMP_ID_SEQ, ICMP6_TYPES, ICMP_TYPES, TCP_FLAGS

__all__ = ["available", "lines_of_packets", "lines_of_records"]

_C = speedups()

#: The link decoder a formatter uses -> the C code's number for that link layer.
_LINKS: dict[LinkDecoder, int] = {
    decode_ethernet: 1,
    decode_sll: 2,
    decode_sll2: 3,
    decode_raw: 4,
    decode_ipv4: 5,
    decode_ipv6: 6,
    decode_null: 7,
    decode_loop: 8,
}
#: Link types whose cooked header gives the direction -> the C code's number for it.
_COOKED: dict[int, int] = {LinkType.LINUX_SLL: 2, LinkType.LINUX_SLL2: 3}
#: TCP ports whose payload may be annotated whatever its first byte (DNS over TCP, BGP).
_TCP_NOTE_PORTS = (53, PORT_BGP)
#: Values of the C code's UDP port table: an application formatter, or QUIC's, which gives
#: no text for a short header or a long header it cannot read (C tells these apart).
_UDP_APP, _UDP_QUIC = 1, 2


def _names(types: dict[int, str], id_seq: frozenset[int]) -> tuple[str | None, ...]:
    """Per ICMP type, its name when its line carries an identifier and a sequence number."""
    return tuple(types.get(kind) if kind in id_seq else None for kind in range(256))


def _tables() -> None:
    assert _C is not None
    udp = bytearray(65536)
    for port, app in UDP_PORTS.items():
        udp[port] = _UDP_QUIC if app is _quic else _UDP_APP
    tcp = bytearray(65536)
    for port in _TCP_NOTE_PORTS:
        tcp[port] = 1
    annotated = bytes(1 if b in ANNOTATED_FIRST_BYTES else 0 for b in range(256))
    tags = tuple(
        tag(direction, name)
        for name in ("TCP", "UDP", "ICMP", "ICMP6")
        for direction in range(len(DIRECTION_TAGS))
    )
    _C.text_tables(
        TCP_FLAGS,
        _names(ICMP_TYPES, _ICMP_ID_SEQ),
        _names(ICMP6_TYPES, _ICMP6_ID_SEQ),
        tags,
        annotated,
        bytes(tcp),
        bytes(udp),
        tuple(VLAN_TPIDS),
        tuple(QUIC_VERSIONS),
    )


if _C is not None:
    _tables()


def available() -> bool:
    """True when the C lines are built and enabled."""
    return _C is not None


def _kinds(formatter: object) -> tuple[TextFormatter, int, int] | None:
    """The formatter with the C code's numbers of its link layer and cooked header, or None when
    C cannot stand in for it (another formatter, a mode other than the default, a link type
    the C code does not read)."""
    if type(formatter) is not TextFormatter:
        return None
    if formatter.verbose or formatter.ascii or "format" in vars(formatter):
        return None
    link = _LINKS.get(formatter._decode)
    if link is None:
        return None
    cooked = 0
    if formatter._cooked:
        found = _COOKED.get(formatter.linktype & 0x03FFFFFF)
        if found is None:  # SLIP: its direction byte is Python's to read
            return None
        cooked = found
    return formatter, link, cooked


def lines_of_records(formatter: object, block: RecordBlock) -> tuple[str, int] | None:
    """The text ``formatter`` gives the packets of ``block`` (each line ending in a newline)
    and how many of them the formatter itself wrote, or None when C cannot stand in for the
    formatter."""
    kinds = _kinds(formatter) if _C is not None else None
    if kinds is None:
        return None
    fmt, link, cooked = kinds
    assert _C is not None
    done: tuple[str, int] | None = _C.text_records(
        block.parts,
        link,
        cooked,
        fmt,
        fmt.format,
        Direction.INBOUND,
        Direction.OUTBOUND,
        Direction.UNKNOWN,
    )
    return done


def lines_of_packets(formatter: object, batch: PacketBatch) -> tuple[str, int] | None:
    """``lines_of_records`` for a list of packets; also None when the batch holds other than
    Packet tuples."""
    kinds = _kinds(formatter) if _C is not None else None
    if kinds is None or type(batch) is not list:
        return None
    fmt, link, cooked = kinds
    assert _C is not None
    done: tuple[str, int] | None = _C.text_packets(batch, link, cooked, fmt, fmt.format, Direction)
    return done
