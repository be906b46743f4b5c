"""Packet and batch types, directions, link types, and the Session's counters.

Pure module: no IO. A packet is a small tuple so the hot paths can build one cheaply; a batch is a
plain list of them. Everything that crosses a boundary that costs something crosses as a batch.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Protocol

from ._errors import OptionError

__all__ = [
    "SNAPLEN_DEFAULT",
    "Direction",
    "LinkType",
    "Matcher",
    "Packet",
    "PacketBatch",
    "Stats",
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


_DIRECTION_TAGS = {Direction.UNKNOWN: "---", Direction.INBOUND: "IN", Direction.OUTBOUND: "OUT"}


class LinkType(enum.IntEnum):
    """pcap LINKTYPE_ values of the link types capsvc reads, writes and filters."""

    NULL = 0
    ETHERNET = 1
    RAW = 101
    LOOP = 108
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276

    @classmethod
    def parse(cls, value: str | int) -> LinkType:
        """Return the link type named by ``value``.

        Accepts a member name in any case (``"ethernet"``, ``"RAW"``, ``"linux_sll2"``), the
        libpcap DLT spellings ``EN10MB`` and ``SLL``/``SLL2``, or a number.

        Raises:
            ValueError: the value names no supported link type.
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
            names = ", ".join(m.name.lower() for m in cls)
            raise OptionError(f"unknown link type {value!r} (one of: {names})") from None


_LINKTYPE_ALIASES = {
    "EN10MB": "ETHERNET",
    "ETHER": "ETHERNET",
    "SLL": "LINUX_SLL",
    "SLL2": "LINUX_SLL2",
    "LINUX_SLL_V2": "LINUX_SLL2",
    "IP": "RAW",
}


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


#: A batch: packets in arrival order. Hot paths index fields by position (0..4).
PacketBatch = list[Packet]


class Matcher(Protocol):
    """Anything with ``match(data) -> bool`` for one frame of a given link type."""

    def match(self, data: bytes) -> bool:
        """Return True when the frame passes."""
        ...


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
