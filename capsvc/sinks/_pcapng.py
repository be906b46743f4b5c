"""pcapng writer.

Pure encoding functions first (``section_header_block``, ``interface_description_block``,
``encode_epbs``), the thin writer after. Little-endian, one section, one Interface Description
Block per interface seen (if_name, if_tsresol 9 so timestamps keep their nanoseconds), one
Enhanced Packet Block per packet with epb_flags carrying the direction. Like the pcap writer: the
header (SHB and the first IDB) goes out with the first packet, a batch is one ``write()``, and an
interface counts as described only once the write that carried its IDB succeeded.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping
from typing import IO

from .._packet import SNAPLEN_DEFAULT, Direction, LinkType, Packet, PacketBatch
from ._io import write_all

__all__ = [
    "PCAPNG_BLOCK_TRAILER",
    "PCAPNG_EPB",
    "PCAPNG_IDB",
    "PCAPNG_OPTION",
    "PCAPNG_SHB",
    "PcapNgWriter",
    "encode_epbs",
    "interface_description_block",
    "section_header_block",
]

#: Section Header Block: type, total length, byte-order magic, major, minor, section length.
PCAPNG_SHB = struct.Struct("<IIIHHq")
#: Interface Description Block head: type, total length, link type, reserved, snaplen.
PCAPNG_IDB = struct.Struct("<IIHHI")
#: Enhanced Packet Block head: type, total length, interface id, ts high, ts low, captured,
#: original length.
PCAPNG_EPB = struct.Struct("<IIIIIII")
#: Option header: code, value length (the value is padded to 32 bits).
PCAPNG_OPTION = struct.Struct("<HH")
#: The block total length repeated at the end of every block.
PCAPNG_BLOCK_TRAILER = struct.Struct("<I")

SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 1
EPB_TYPE = 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_ENDOFOPT = 0
OPT_IF_NAME = 2
OPT_IF_TSRESOL = 9
OPT_EPB_FLAGS = 2
#: if_tsresol value 9: timestamps count nanoseconds (10**-9 s).
TSRESOL_NANO = 9

_pack_epb = PCAPNG_EPB.pack
_pack_len = PCAPNG_BLOCK_TRAILER.pack
_PADS = (b"", b"\0\0\0", b"\0\0", b"\0")
#: epb_flags option + opt_endofopt per direction (none for unknown: the option is optional).
_FLAG_OPTIONS = {
    int(Direction.UNKNOWN): b"",
    int(Direction.INBOUND): struct.pack("<HHIHH", OPT_EPB_FLAGS, 4, 1, OPT_ENDOFOPT, 0),
    int(Direction.OUTBOUND): struct.pack("<HHIHH", OPT_EPB_FLAGS, 4, 2, OPT_ENDOFOPT, 0),
}


def _option(code: int, value: bytes) -> bytes:
    return PCAPNG_OPTION.pack(code, len(value)) + value + _PADS[len(value) % 4]


def section_header_block() -> bytes:
    """Return a 28-byte little-endian SHB: version 1.0, section length unknown (-1), no options."""
    return PCAPNG_SHB.pack(SHB_TYPE, 28, BYTE_ORDER_MAGIC, 1, 0, -1) + _pack_len(28)


def interface_description_block(linktype: int, snaplen: int = 0, name: str | None = None) -> bytes:
    """Return an IDB with options if_name (when ``name`` is given) and if_tsresol 9.

    Args:
        linktype: the link type of the interface's frames.
        snaplen: the snapshot length; 0 means 262144.
        name: the interface name, or None for no if_name option.
    """
    options = b""
    if name:
        options += _option(OPT_IF_NAME, name.encode())
    options += _option(OPT_IF_TSRESOL, bytes([TSRESOL_NANO]))
    options += PCAPNG_OPTION.pack(OPT_ENDOFOPT, 0)
    total = PCAPNG_IDB.size + len(options) + 4
    head = PCAPNG_IDB.pack(IDB_TYPE, total, int(linktype), 0, snaplen or SNAPLEN_DEFAULT)
    return head + options + _pack_len(total)


def encode_epbs(batch: PacketBatch, snaplen: int, interface_ids: dict[int, int]) -> bytes:
    """Encode a batch as Enhanced Packet Blocks (timestamps in nanoseconds, if_tsresol 9).

    Args:
        batch: the packets; each one's ``ifindex`` must be a key of ``interface_ids``.
        snaplen: captured bytes kept per packet (the rest is cut; the original length stays).
        interface_ids: ifindex -> pcapng interface id (the position of its IDB).

    Returns:
        The blocks, concatenated.

    Raises:
        KeyError: a packet's ifindex has no interface id.
    """
    parts: list[bytes] = []
    append = parts.append
    flag_options = _FLAG_OPTIONS
    for ts, data, wire, direction, ifindex in batch:
        n = len(data)
        if n > snaplen:
            data = data[:snaplen]
            n = snaplen
        options = flag_options.get(direction, b"")
        pad = _PADS[n & 3]
        total = 32 + n + len(pad) + len(options)
        append(
            _pack_epb(
                EPB_TYPE,
                total,
                interface_ids[ifindex],
                (ts >> 32) & 0xFFFFFFFF,
                ts & 0xFFFFFFFF,
                n,
                wire if wire > n else n,
            )
        )
        append(data)
        append(pad + options + _pack_len(total))
    return b"".join(parts)


def _interface_name(ifindex: int, default: str | None) -> str | None:
    """The system's name of ``ifindex`` where it has one, else ``default`` (0: ``default``)."""
    if ifindex > 0:
        try:
            return socket.if_indextoname(ifindex)
        except OSError:
            pass
    return default


class PcapNgWriter:
    """Writes packets as a pcapng file to a binary stream.

    The first packet brings the Section Header Block; the first packet from each interface
    (by ``Packet.ifindex``) brings its Interface Description Block. ifindex 0 is the default
    interface, named ``interface_name``; another ifindex is named by the system
    (``socket.if_indextoname``) where it can be, else ``interface_name``. A capture with no
    packet is still a valid file: the first flush writes the Section Header Block and the
    default interface's description.

    Args:
        stream: where to write; never closed by the writer.
        snaplen: the IDBs' snaplen and the cap on captured bytes per packet; 0 means 262144.
        linktype: the link type of every interface not in ``linktypes``.
        interface_name: the name of the default interface (None: no if_name option).
        linktypes: ifindex -> link type of the frames' interfaces, where they have their own
            (a pcapng source's ``linktypes``, read when an interface is first met): each gets
            an IDB of its link type. Such an ifindex is a capture file's, not this system's,
            so it is not named after the system's interface of that index.
    """

    def __init__(
        self,
        stream: IO[bytes],
        snaplen: int = 0,
        linktype: LinkType | int = LinkType.RAW,
        *,
        interface_name: str | None = None,
        linktypes: Mapping[int, int] | None = None,
    ) -> None:
        self.stream = stream
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        self.linktype = LinkType(linktype)
        self.interface_name = interface_name
        self._linktypes = linktypes
        self._header_written = False
        self._interface_ids: dict[int, int] = {}

    def write_packet(
        self,
        ts_ns: int,
        data: bytes,
        wire_len: int | None = None,
        direction: Direction = Direction.UNKNOWN,
    ) -> None:
        """Write one packet on the default interface.

        Args:
            ts_ns: the timestamp in nanoseconds since the epoch.
            data: the captured bytes (cut to ``snaplen``).
            wire_len: the length on the wire; None means ``len(data)``.
            direction: inbound, outbound or unknown (written as epb_flags bits 0-1).
        """
        wire = len(data) if wire_len is None else wire_len
        self.write_batch([Packet(ts_ns, bytes(data), wire, Direction(direction), 0)])

    def write_batch(self, batch: PacketBatch) -> None:
        """Write a batch with one ``write()``: any new IDBs first, then the EPBs.

        Raises:
            OSError: the stream failed; nothing of the batch counts as written, so the header
                and IDBs it carried are sent again with the next batch.
        """
        if not batch:
            return
        ids = self._interface_ids
        head: list[bytes] = []
        if not self._header_written:
            head.append(section_header_block())
        new_ids: dict[int, int] | None = None
        for packet in batch:
            ifindex = packet[4]
            if ifindex not in ids and (new_ids is None or ifindex not in new_ids):
                if new_ids is None:
                    new_ids = dict(ids)
                new_ids[ifindex] = len(new_ids)
                linktype: int = self.linktype
                if self._linktypes is not None and ifindex in self._linktypes:
                    linktype, name = self._linktypes[ifindex], self.interface_name
                else:
                    name = _interface_name(ifindex, self.interface_name)
                head.append(interface_description_block(linktype, self.snaplen, name))
        body = encode_epbs(batch, self.snaplen, ids if new_ids is None else new_ids)
        write_all(self.stream, b"".join(head) + body if head else body)
        self._header_written = True
        if new_ids is not None:
            self._interface_ids = new_ids

    def flush(self) -> None:
        """Write the headers if nothing was written yet, then flush the stream."""
        if not self._header_written:
            name = _interface_name(0, self.interface_name)
            write_all(
                self.stream,
                section_header_block()
                + interface_description_block(self.linktype, self.snaplen, name),
            )
            self._header_written = True
            self._interface_ids = {0: 0}
        self.stream.flush()

    def close(self) -> None:
        """Flush; the stream stays open (its owner closes it)."""
        self.flush()
