"""pcapng block parsing: sections, interfaces, packet blocks, from bytes.

Pure module, used by ``_capfile.CaptureDecoder``. The rule it keeps: a block's length is checked
(multiple of 4, at least 12, at most MAX_BLOCK, equal in header and trailer) before anything looks
inside it, a packet block must name an interface described earlier in its section, and malformed
options are ignored the way readers ignore them. Also here: what the pcap parser shares with it
(``Interface``, ``CorruptInput``).

Per section the byte order comes from the Section Header Block and the interface list starts over;
packets carry, as ``ifindex``, the 1-based position of their IDB in the whole file.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..._packet import SNAPLEN_DEFAULT, Direction, LinkType, Packet, PacketBatch

__all__ = [
    "MAX_BLOCK",
    "PCAPNG_BLOCK",
    "PCAPNG_EPB",
    "PCAPNG_IDB",
    "PCAPNG_OPTION",
    "PCAPNG_PB",
    "PCAPNG_SHB",
    "PCAPNG_SHB_TYPE",
    "CorruptInput",
    "Interface",
    "PcapNgParser",
]


def _both(fmt: str) -> dict[str, struct.Struct]:
    """The layout in both byte orders, keyed by struct's prefix ("<" or ">")."""
    return {"<": struct.Struct("<" + fmt), ">": struct.Struct(">" + fmt)}


#: Every block starts with: block type, block total length (the length also ends the block).
PCAPNG_BLOCK = _both("II")
#: Section Header Block: type, length, byte-order magic, major, minor, section length.
PCAPNG_SHB = _both("IIIHHq")
#: Interface Description Block body: link type, reserved, snaplen.
PCAPNG_IDB = _both("HHI")
#: Enhanced Packet Block body: interface id, ts high, ts low, captured length, original length.
PCAPNG_EPB = _both("IIIII")
#: Obsolete Packet Block body: interface id, drops count, ts high, ts low, captured, original.
PCAPNG_PB = _both("HHIIII")
#: Option header: code, length (the value, padded to 32 bits, follows).
PCAPNG_OPTION = _both("HH")
_U32 = _both("I")
_I64 = _both("q")

PCAPNG_SHB_TYPE = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB_TYPE = 1
PCAPNG_PB_TYPE = 2
PCAPNG_SPB_TYPE = 3
PCAPNG_EPB_TYPE = 6
OPT_ENDOFOPT = 0
OPT_IF_NAME = 2
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14
OPT_EPB_FLAGS = 2

#: Largest block accepted (libpcap's limit is of the same order); a larger one is corruption.
MAX_BLOCK = 16 * 1024 * 1024

_NS = 1_000_000_000
_DIRECTIONS = (Direction.UNKNOWN, Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN)
_new = tuple.__new__


class Interface(NamedTuple):
    """One pcapng Interface Description Block (pcap files have one implicit interface).

    Attributes:
        ifindex: the value packets from it carry (1-based position in the file; 0 for pcap).
        name: the if_name option, or "" when absent.
        linktype: the link type number (may be one capsvc does not decode).
        snaplen: the IDB's snaplen; 0 means no limit.
    """

    ifindex: int
    name: str
    linktype: int
    snaplen: int


class CorruptInput(Exception):
    """Raised inside the parsers: (position in the buffer, reason); the decoder turns it into
    a CaptureFileError with the file name and offset. Never leaves the reader."""

    def __init__(self, pos: int, reason: str) -> None:
        super().__init__(reason)
        self.pos = pos
        self.reason = reason


class _Iface:
    """Per-IDB state the packet blocks need."""

    __slots__ = ("div", "ifindex", "mul", "offset_ns", "snaplen")

    def __init__(self, ifindex: int, snaplen: int) -> None:
        self.ifindex = ifindex
        self.snaplen = snaplen
        self.mul = 1000  # default if_tsresol is 6: microseconds
        self.div = 1
        self.offset_ns = 0

    def set_tsresol(self, value: int) -> None:
        exp = value & 0x7F
        if value & 0x80:  # negative power of 2: ns = ts * 10**9 / 2**exp
            self.mul, self.div = _NS, 1 << exp
        elif exp <= 9:
            self.mul, self.div = 10 ** (9 - exp), 1
        else:
            self.mul, self.div = 1, 10 ** (exp - 9)


class PcapNgParser:
    """Blocks of a pcapng file, from its first Section Header Block on."""

    def __init__(self) -> None:
        self.nanosecond = True
        self.linktype: LinkType | None = None
        self.interfaces: list[Interface] = []
        #: ifindex -> link type of every interface described so far (grows as IDBs come).
        self.linktypes: dict[int, int] = {}
        self.wanted = 0
        self.error: CorruptInput | None = None
        self._section: list[_Iface] = []
        self._set_order("<")

    def _set_order(self, order: str) -> None:
        self._order = order
        self._block = PCAPNG_BLOCK[order]
        self._u32 = _U32[order]
        self._epb = PCAPNG_EPB[order]
        self._pb = PCAPNG_PB[order]
        self._opt = PCAPNG_OPTION[order]

    @property
    def snaplen(self) -> int:
        return max((i.snaplen or SNAPLEN_DEFAULT for i in self.interfaces), default=SNAPLEN_DEFAULT)

    def parse(self, buf: bytes, pos: int, limit: int) -> tuple[PacketBatch, int]:
        """Up to ``limit`` packets from the complete blocks in ``buf[pos:]``.

        Returns the packets and the position after the last block consumed. A malformed block
        (length, byte order, version, interface id) ends the parse and is left in ``error``.
        """
        out: PacketBatch = []
        try:
            self._parse(buf, pos, limit, out)
        except CorruptInput as exc:
            self.error = exc
        return out, self._pos

    def _parse(self, buf: bytes, pos: int, limit: int, out: PacketBatch) -> None:
        append = out.append
        end = len(buf)
        block = self._block.unpack_from
        u32 = self._u32.unpack_from
        self._pos = pos
        while len(out) < limit:
            if pos + 12 > end:
                self.wanted = 12
                return
            btype, blen = block(buf, pos)
            if btype == PCAPNG_SHB_TYPE:
                if pos + 28 > end:
                    self.wanted = 28  # byte order, version and length come together
                    return
                blen = self._section_header(buf, pos)
                block = self._block.unpack_from
                u32 = self._u32.unpack_from
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                raise CorruptInput(pos, f"pcapng block of type {btype:#x} has a bad length {blen}")
            bend = pos + blen
            if bend > end:
                self.wanted = blen
                return
            if u32(buf, bend - 4)[0] != blen:
                raise CorruptInput(pos, "pcapng block lengths in header and trailer differ")
            if btype == PCAPNG_EPB_TYPE:
                append(self._enhanced(buf, pos, bend))
            elif btype == PCAPNG_SPB_TYPE:
                append(self._simple(buf, pos, bend))
            elif btype == PCAPNG_IDB_TYPE:
                self._interface(buf, pos, bend)
            elif btype == PCAPNG_PB_TYPE:
                append(self._packet(buf, pos, bend))
            elif btype == PCAPNG_SHB_TYPE:
                self._section = []
            # Other blocks (ISB, NRB, DSB, custom, unknown) carry nothing a packet needs.
            pos = self._pos = bend

    def _section_header(self, buf: bytes, pos: int) -> int:
        magic = struct.unpack_from("<I", buf, pos + 8)[0]
        if magic == PCAPNG_BYTE_ORDER_MAGIC:
            self._set_order("<")
        elif magic == 0x4D3C2B1A:
            self._set_order(">")
        else:
            raise CorruptInput(
                pos, f"pcapng section header has a bad byte-order magic {magic:#010x}"
            )
        _type, blen, _m, major, minor, _len = PCAPNG_SHB[self._order].unpack_from(buf, pos)
        if major != 1:
            raise CorruptInput(pos, f"pcapng version {major}.{minor} is not supported (1.x is)")
        return int(blen)

    def _options(self, buf: bytes, pos: int, end: int) -> list[tuple[int, bytes]]:
        """The options in ``buf[pos:end]``; a malformed tail is ignored (as readers do)."""
        found = []
        unpack = self._opt.unpack_from
        while pos + 4 <= end:
            code, length = unpack(buf, pos)
            if code == OPT_ENDOFOPT:
                break
            value_end = pos + 4 + length
            if value_end > end:
                break
            found.append((code, buf[pos + 4 : value_end]))
            pos = value_end + (-length % 4)
        return found

    def _interface(self, buf: bytes, pos: int, bend: int) -> None:
        if bend - pos < 20:
            raise CorruptInput(pos, "pcapng interface description block is too short")
        linktype, _res, snaplen = PCAPNG_IDB[self._order].unpack_from(buf, pos + 8)
        ifindex = len(self.interfaces) + 1
        iface = _Iface(ifindex, snaplen)
        name = ""
        for code, value in self._options(buf, pos + 16, bend - 4):
            if code == OPT_IF_NAME:
                name = value.rstrip(b"\0").decode("utf-8", "replace")
            elif code == OPT_IF_TSRESOL and value:
                iface.set_tsresol(value[0])
            elif code == OPT_IF_TSOFFSET and len(value) == 8:
                iface.offset_ns = _I64[self._order].unpack(value)[0] * _NS
        if self.linktype is None:
            self.linktype = LinkType(linktype)  # every 16-bit value is one
        self._section.append(iface)
        self.interfaces.append(Interface(ifindex, name, linktype, snaplen))
        self.linktypes[ifindex] = linktype

    def _iface(self, pos: int, if_id: int) -> _Iface:
        if if_id >= len(self._section):
            raise CorruptInput(
                pos, f"packet on interface {if_id}, which has no interface description"
            )
        return self._section[if_id]

    def _flags(self, buf: bytes, pos: int, end: int) -> Direction:
        for code, value in self._options(buf, pos, end):
            if code == OPT_EPB_FLAGS and len(value) == 4:
                return _DIRECTIONS[self._u32.unpack(value)[0] & 3]
        return Direction.UNKNOWN

    def _enhanced(self, buf: bytes, pos: int, bend: int) -> Packet:
        if bend - pos < 32:
            raise CorruptInput(pos, "pcapng enhanced packet block is too short")
        if_id, hi, lo, caplen, orig = self._epb.unpack_from(buf, pos + 8)
        return self._make(buf, pos, bend, if_id, hi << 32 | lo, caplen, orig)

    def _packet(self, buf: bytes, pos: int, bend: int) -> Packet:
        if bend - pos < 32:
            raise CorruptInput(pos, "pcapng packet block is too short")
        if_id, _drops, hi, lo, caplen, orig = self._pb.unpack_from(buf, pos + 8)
        return self._make(buf, pos, bend, if_id, hi << 32 | lo, caplen, orig)

    def _make(
        self, buf: bytes, pos: int, bend: int, if_id: int, ts: int, caplen: int, orig: int
    ) -> Packet:
        """The packet of an EPB or PB (same layout from offset 28: data, then options)."""
        iface = self._iface(pos, if_id)
        start = pos + 28
        stop = start + caplen
        if stop > bend - 4:
            raise CorruptInput(pos, f"packet captured length {caplen} overflows its block")
        opts = stop + (-caplen % 4)
        direction = Direction.UNKNOWN
        if opts < bend - 4:  # pragma: no mutate (without options _flags finds none either)
            direction = self._flags(buf, opts, bend - 4)
        ts_ns = ts * iface.mul // iface.div + iface.offset_ns
        wire = orig if orig > caplen else caplen  # pragma: no mutate (orig >= caplen: the same)
        return _new(Packet, (ts_ns, buf[start:stop], wire, direction, iface.ifindex))

    def _simple(self, buf: bytes, pos: int, bend: int) -> Packet:
        if bend - pos < 16:
            raise CorruptInput(pos, "pcapng simple packet block is too short")
        iface = self._iface(pos, 0)
        orig = self._u32.unpack_from(buf, pos + 8)[0]
        caplen = min(orig, bend - 4 - (pos + 12))
        if iface.snaplen:
            caplen = min(caplen, iface.snaplen)
        data = buf[pos + 12 : pos + 12 + caplen]
        return _new(Packet, (0, data, max(orig, caplen), Direction.UNKNOWN, iface.ifindex))
