"""Packet and batch types, directions, link types, and the Session's counters.

Pure module: no IO. A packet is a small tuple so the hot paths can build one cheaply; a batch is a
plain list of them. Everything that crosses a boundary that costs something crosses as a batch.
"""

from __future__ import annotations

import enum
import ipaddress
import sys
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from ._errors import OptionError
from ._linktypes import LINKTYPE_NAMES

__all__ = [
    "SNAPLEN_DEFAULT",
    "Direction",
    "LinkType",
    "MatchFunction",
    "Matcher",
    "Packet",
    "PacketBatch",
    "Stats",
    "match_function",
    "sum_stats",
]

#: The snapshot length used when 0 is given (tcpdump's default).
SNAPLEN_DEFAULT = 262144


class Direction(enum.IntEnum):
    """Direction of a packet, coded as pcapng's epb_flags bits 0-1.

    ``str()`` gives the tag used in the text log: ``---``, ``IN`` or ``OUT``.
    """

    UNKNOWN = 0
    INBOUND = 1
    OUTBOUND = 2

    def __str__(self) -> str:
        return _DIRECTION_TAGS[self]

    @classmethod
    def parse(cls, value: Direction | str) -> Direction:
        """The direction a capture keeps, from a Direction or tcpdump's ``-Q`` word.

        ``"in"`` is INBOUND, ``"out"`` OUTBOUND, ``"inout"`` UNKNOWN: as a capture direction,
        UNKNOWN means both (libpcap's PCAP_D_INOUT). Member names are accepted in any case.

        Raises:
            capsvc.OptionError: any other value.
        """
        if isinstance(value, Direction):
            return value
        text = str(value).strip().lower()
        found = _DIRECTION_WORDS.get(text)
        if found is None:
            raise OptionError(f"direction must be 'in', 'out' or 'inout': {value!r}")
        return found


_DIRECTION_TAGS = {Direction.UNKNOWN: "---", Direction.INBOUND: "IN", Direction.OUTBOUND: "OUT"}
_DIRECTION_WORDS = {
    "in": Direction.INBOUND,
    "out": Direction.OUTBOUND,
    "inout": Direction.UNKNOWN,
    "inbound": Direction.INBOUND,
    "outbound": Direction.OUTBOUND,
    "unknown": Direction.UNKNOWN,
}


class LinkType(enum.IntEnum):
    """pcap LINKTYPE_ values.

    Every value a capture file can hold is a LinkType: the members below are the link types
    capsvc decodes (text, stats) or filters; any other number is a member made on first use and
    named after libpcap's table (``LinkType(147).name == "LINKTYPE_147"`` for a number libpcap
    does not name, ``LinkType(245).name == "NFC_LLCP"``). Capture files, rotation, streams and
    counts pass every link type through unchanged.
    """

    NULL = 0
    ETHERNET = 1
    SLIP = 8
    PPP = 9
    PPP_HDLC = 50
    RAW = 101
    C_HDLC = 104
    IEEE802_11 = 105
    FRELAY = 107
    LOOP = 108
    LINUX_SLL = 113
    SUNATM = 123
    IEEE802_11_RADIO = 127
    IPV4 = 228
    IPV6 = 229
    NFLOG = 239
    IPOIB = 242
    PKTAP = 258
    LINUX_SLL2 = 276
    DSA_TAG_BRCM = 281
    DSA_TAG_BRCM_PREPEND = 282
    DSA_TAG_DSA = 284
    DSA_TAG_EDSA = 285

    @classmethod
    def _missing_(cls, value: object) -> LinkType | None:
        if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
            return None
        member = int.__new__(cls, value)
        member._name_ = _LINKTYPE_NAME.get(value, f"LINKTYPE_{value}")
        member._value_ = value
        return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]

    @property
    def description(self) -> str:
        """libpcap's description (``"802.11 plus radiotap header"``), or the name when it has
        none."""
        return _LINKTYPE_DESCRIPTION.get(int(self), self.name)

    @classmethod
    def parse(cls, value: str | int) -> LinkType:
        """Return the link type named by ``value``.

        Accepts a member name in any case (``"ethernet"``, ``"RAW"``, ``"linux_sll2"``), a name
        of libpcap's table (``EN10MB``, ``SLL``, ``IEEE802_11_RADIO``, ``PPP_SERIAL``), or a
        number (0..4294967295).

        Raises:
            capsvc.OptionError: the value names no link type.
        """
        if isinstance(value, int):
            return cls(value)
        text = value.strip().upper()
        if text.isdigit():
            return cls(int(text))
        text = _LINKTYPE_ALIASES.get(text, text)
        try:
            return cls[text]
        except KeyError:
            pass
        number = _LINKTYPE_VALUE.get(text)
        if number is None:
            raise OptionError(
                f"unknown link type {value!r} (a number, or a name such as ethernet, raw, "
                "linux_sll2, ieee802_11_radio)"
            )
        return cls(number)


_LINKTYPE_ALIASES = {
    "EN10MB": "ETHERNET",
    "ETHER": "ETHERNET",
    "SLL": "LINUX_SLL",
    "SLL2": "LINUX_SLL2",
    "LINUX_SLL_V2": "LINUX_SLL2",
    "IP": "RAW",
    "PPP_SERIAL": "PPP_HDLC",
}
_LINKTYPE_NAME = {value: name for value, (name, _) in LINKTYPE_NAMES.items()}
_LINKTYPE_VALUE = {name: value for value, (name, _) in LINKTYPE_NAMES.items()}
_LINKTYPE_DESCRIPTION = {value: text for value, (_, text) in LINKTYPE_NAMES.items()}


class Endpoints(NamedTuple):
    """Who sent a frame to whom (``capsvc.decode.addresses``, ``Packet.addresses``).

    Attributes:
        src: the source IP address, 4 bytes (IPv4) or 16 (IPv6); ``src_ip`` as an object.
        dst: the destination IP address, likewise.
        protocol: the IP protocol number of the transport (6 TCP, 17 UDP, 1 ICMP, ...; after
            IPv6 extension headers).
        sport: the source port, or ``capsvc.decode.NO_PORT`` (-1) without a whole TCP or UDP
            header (another protocol, a later fragment, a header cut short).
        dport: the destination port, likewise.
    """

    src: bytes
    dst: bytes
    protocol: int
    sport: int
    dport: int

    @property
    def src_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """``src`` as an ``ipaddress`` object."""
        return ipaddress.ip_address(self.src)

    @property
    def dst_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """``dst`` as an ``ipaddress`` object."""
        return ipaddress.ip_address(self.dst)


class Packet(NamedTuple):
    """One captured frame.

    Attributes:
        ts_ns: capture time in integer nanoseconds since the epoch.
        data: the captured bytes (at most the snapshot length).
        wire_len: the length on the wire; never less than ``len(data)``, kept when truncated.
        direction: inbound, outbound or unknown.
        ifindex: the interface index, 0 when unknown.
    """

    ts_ns: int
    data: bytes
    wire_len: int
    direction: Direction
    ifindex: int

    def decode(self, linktype: LinkType | int) -> Any:
        """dpkt's objects for this frame's layers (``capsvc.decode.layers``).

        A packet does not carry its link type: pass the session's (``session.linktype``,
        ``source.linktype``). ``packet.decode(LinkType.ETHERNET).data.src`` is the IPv4
        source address of an Ethernet frame, as bytes.

        Raises:
            capsvc.DecodeError: the frame is too short or malformed for its outermost layer,
                or dpkt has no decoder for ``linktype``.
        """
        from .decode._dpkt import layers

        return layers(self[1], linktype)

    def addresses(self, linktype: LinkType | int) -> Endpoints | None:
        """This frame's IP addresses, protocol and ports, read in place without building dpkt
        objects (``capsvc.decode.addresses``); None when it carries no IP header."""
        from .decode._addresses import addresses

        return addresses(self[1], linktype)


#: A batch: packets in arrival order. Hot paths index fields by position (0..4).
PacketBatch = list[Packet]


class Matcher(Protocol):
    """Anything with ``match(data) -> bool`` for one frame of a given link type.

    capsvc's own compiled filters (``capsvc.filter.CompiledFilter``, from ``parse_filter``)
    also take the frame's wire length, ``match(data, wire_len)``, which ``len``, ``less`` and
    ``greater`` compare (as libpcap does); ``match_function`` gives every matcher that
    two-argument form.
    """

    def match(self, data: bytes) -> bool:
        """Return True when the frame passes."""
        ...


#: A frame test taking the captured bytes (any buffer it can index: bytes, bytearray,
#: memoryview) and the wire length.
MatchFunction = Callable[[Any, int], bool]


def match_function(spec: Matcher | str | None, linktype: LinkType) -> MatchFunction | None:
    """``match(data, wire_len)`` for a matcher object, a filter expression or None.

    An expression is compiled for ``linktype``; a matcher of capsvc's filter package is used as
    it is (it reads the wire length); any other object's one-argument ``match`` is wrapped.

    Returns:
        The function, or None when everything passes (None, or a blank expression).

    Raises:
        capsvc.FilterError: a malformed expression, or one the link type cannot express.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        from .filter import parse_filter

        parsed = parse_filter(spec, linktype)
        return None if parsed is None else parsed.match
    filters = sys.modules.get("capsvc.filter")
    if filters is not None and isinstance(spec, filters.CompiledFilter | filters.Filter):
        return spec.match  # type: ignore[no-any-return]
    one = spec.match
    return lambda data, wire_len: one(data)


class Stats(NamedTuple):
    """A session's counters (frozen snapshot).

    For every session, offered = packets + dropped + filtered, exactly (offers after ``stop()``
    are ignored and counted nowhere).

    Attributes:
        packets: packets accepted into the queue.
        bytes: wire bytes of the accepted packets.
        dropped: packets refused because the queue was full.
        filtered: packets the matcher rejected.
        kernel_dropped: packets the source's kernel or library dropped (0 without a source).
        sink_errors: sink failures (each failed sink is disabled after its first).
        written: accepted packets handed to at least one sink that took them.
        queued: packets waiting in the queue now.
        received: packets the source reported as received by its kernel or library.
    """

    packets: int = 0
    bytes: int = 0
    dropped: int = 0
    filtered: int = 0
    kernel_dropped: int = 0
    sink_errors: int = 0
    written: int = 0
    queued: int = 0
    received: int = 0


def sum_stats(parts: Iterable[Stats]) -> Stats:
    """Add stats field by field (the stats of several workers of one capture as one)."""
    total = [0] * len(Stats._fields)
    for s in parts:
        for i, v in enumerate(s):
            total[i] += v
    return Stats(*total)
