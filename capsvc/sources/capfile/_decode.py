"""Capture-file decoding: pcap (both byte orders, micro/nanosecond) and pcapng, from bytes.

Pure module: no files, no event loop. A ``CaptureDecoder`` is pushed bytes (``feed``) and pulled
batches (``next_batch``); whoever owns the file decides how to read it. The rule it keeps: bad input
ends in ``CaptureFileError`` (with the offset and what is wrong) and nothing else, every complete
packet before a problem is delivered first, and a file cut short inside its last record is a
logged warning, not an error. Lengths read from the file are checked against hard limits before
anything waits for or buffers that many bytes. The pcap record loop lives here (it is the hot
path); pcapng blocks are parsed in ``_pcapng_blocks``.

Conventions of the packets it yields: ``ts_ns`` in integer nanoseconds (an SPB, which has no
timestamp, gets 0); ``wire_len`` is at least the captured length; ``direction`` comes from pcapng's
epb_flags (pcap: unknown); ``ifindex`` is 0 for pcap and, for pcapng, the 1-based position of the
packet's Interface Description Block in the whole file (first IDB of the first section is 1).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import NoReturn

from ..._accel import speedups
from ..._errors import CaptureFileError
from ..._packet import SNAPLEN_DEFAULT, Direction, LinkType, MatchFunction, Packet, PacketBatch
from ..._records import RecordBlock
from ._pcapng import PCAPNG_SHB_TYPE, CorruptInput, Interface, PcapNgParser

__all__ = [
    "MAX_SNAPLEN",
    "PCAP_FILE_HEADER",
    "PCAP_RECORD",
    "CaptureDecoder",
    "Interface",
]

logger = logging.getLogger("capsvc")

#: struct pcap_file_header: magic, version major, minor, thiszone, sigfigs, snaplen, linktype.
PCAP_FILE_HEADER = {"<": struct.Struct("<IHHiIII"), ">": struct.Struct(">IHHiIII")}
#: struct pcap_sf_pkthdr: ts_sec, ts_usec|ts_nsec, incl_len, orig_len.
PCAP_RECORD = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}

MAGIC_MICRO = 0xA1B2C3D4
MAGIC_NANO = 0xA1B23C4D
MAGIC_MICRO_SWAPPED = 0xD4C3B2A1
MAGIC_NANO_SWAPPED = 0x4D3CB2A1
#: Largest pcap snaplen taken from a header; a larger or zero one means 262144 (as libpcap).
MAX_SNAPLEN = 16 * 1024 * 1024

_NS = 1_000_000_000
_new = tuple.__new__
_C = speedups()


class _PcapParser:
    """Records of a pcap file whose 24-byte header is already checked."""

    def __init__(self, header: bytes) -> None:
        magic = struct.unpack_from("<I", header)[0]
        swapped = magic in (MAGIC_MICRO_SWAPPED, MAGIC_NANO_SWAPPED)
        order = ">" if swapped else "<"
        _m, major, minor, _zone, _figs, snaplen, linktype = PCAP_FILE_HEADER[order].unpack_from(
            header
        )
        if major < 2:
            raise CorruptInput(4, f"pcap version {major}.{minor} is too old (2.x is required)")
        self.nanosecond = magic in (MAGIC_NANO, MAGIC_NANO_SWAPPED)
        # The upper bits of the link-type field may carry FCS information (LT_LINKTYPE()).
        self.linktype = LinkType(linktype & 0x03FFFFFF)  # every 26-bit value is one
        self.snaplen = snaplen if 0 < snaplen <= MAX_SNAPLEN else SNAPLEN_DEFAULT
        self.interfaces = [Interface(0, "", self.linktype, self.snaplen)]
        self.wanted = 0
        self.error: CorruptInput | None = None
        self._maxcap = max(self.snaplen, SNAPLEN_DEFAULT)
        self._record = PCAP_RECORD[order]
        self._swapped = swapped
        self._mult = 1 if self.nanosecond else 1000
        self.examined = 0

    def parse_records(self, buf: bytes, pos: int, program: bytes | None) -> tuple[RecordBlock, int]:
        """``parse`` of every complete record in ``buf[pos:]``, in C, as one RecordBlock;
        ``program`` (classic BPF, None keeps all) chooses the records as ``match`` would.
        C only (``capsvc._records.available()``)."""
        assert _C is not None
        data, count, wire, examined, pos, wanted, error_pos = _C.pcap_records(
            buf, pos, len(buf), self._swapped, self.nanosecond, self.snaplen, self._maxcap,
            program,
        )  # fmt: skip
        self.examined = examined
        if wanted:
            self.wanted = wanted
        if error_pos >= 0:
            incl = self._record.unpack_from(buf, error_pos)[2]
            self.error = CorruptInput(
                error_pos, f"record captured length {incl} exceeds {self._maxcap}"
            )
        return RecordBlock([data] if count else [], count, wire), pos

    def parse(
        self,
        buf: bytes,
        pos: int,
        limit: int,
        match: MatchFunction | None,
        keep: int,
    ) -> tuple[PacketBatch, int]:
        """Up to ``limit`` complete records from ``buf[pos:]``; returns them and the new position.

        With ``match``, only records it accepts become packets (the others are skipped before a
        Packet is built, which is most of the cost of a record); ``examined`` then says how many
        records were consumed. ``keep`` (0: no bound) ends the parse once that many packets
        were kept, right after the last of them. A record with an impossible captured length
        (checked before waiting for its bytes) ends the parse and is left in ``error``.
        """
        out: PacketBatch = []
        examined = 0
        append = out.append
        unpack = self._record.unpack_from
        mult = self._mult
        snap = self.snaplen
        unknown = Direction.UNKNOWN
        new, packet, ns = _new, Packet, _NS  # locals: this loop runs once per record
        end = len(buf)
        for _ in range(limit):
            start = pos + 16
            if start > end:
                self.wanted = 16
                break
            sec, frac, incl, orig = unpack(buf, pos)
            if incl > snap:
                if incl > self._maxcap:
                    reason = f"record captured length {incl} exceeds {self._maxcap}"
                    self.error = CorruptInput(pos, reason)
                    break
                stop = start + incl
                if stop > end:
                    self.wanted = 16 + incl
                    break
                # As libpcap: keep the header's snaplen worth of a record that claims more.
                data = buf[start : start + snap]
            else:
                stop = start + incl
                if stop > end:
                    self.wanted = 16 + incl
                    break
                data = buf[start:stop]
            examined += 1
            wire = orig if orig > incl else incl  # pragma: no mutate (orig >= incl: the same)
            if match is not None and not match(data, wire):
                pos = stop
                continue
            append(new(packet, (sec * ns + frac * mult, data, wire, unknown, 0)))
            pos = stop
            if len(out) == keep:
                break
        self.examined = examined
        return out, pos


_Parser = _PcapParser | PcapNgParser


class CaptureDecoder:
    """Turns the bytes of a pcap or pcapng file into packet batches.

    Push bytes with ``feed`` (``feed(b"")`` says the input ended), pull with ``next_batch`` until
    it returns None, then feed more unless ``finished``. The file's properties (``linktype``,
    ``snaplen``, ``nanosecond``, ``interfaces``) are valid once ``ready`` is true: after the pcap
    header, or the pcapng blocks up to the first Interface Description Block.

    An empty input is a capture without packets (link type RAW, snaplen 262144): capsvc's
    writers produce 0 bytes for an empty capture. For a pcapng file with IDBs of different
    link types, ``linktype`` is that of the first IDB; packets from the others keep their own
    ``ifindex``, ``interfaces`` says what each one is and ``linktypes`` maps each ifindex to its
    link type (it grows as the file describes more interfaces). ``match`` is for frames of
    ``linktype``; ``match_for``, when set, gives the filter for another link type, so every
    interface's frames are filtered as frames of their own link type.

    Args:
        name: the file name used in errors and warnings.
        batch_size: most packets per batch (default 1024).

    Attributes:
        limit: return at most this many packets in all (0, the default: no limit), as
            ``tcpdump -c``: the decoding ends right after the last of them, so ``records``
            counts the records up to it, not what was read ahead.
    """

    def __init__(self, name: str, batch_size: int = 1024) -> None:
        self.name = name
        self.batch_size = batch_size
        self.limit = 0
        self.linktype = LinkType.RAW
        self.snaplen = SNAPLEN_DEFAULT
        self.nanosecond = False
        self.interfaces: list[Interface] = []
        self.linktypes: dict[int, int] = {}
        #: The filter for frames of another link type than ``linktype`` (None: ``match`` for all).
        self.match_for: Callable[[int], MatchFunction | None] | None = None
        self._by_ifindex: dict[int, MatchFunction | None] = {}
        self.ready = False
        self.finished = False
        self.packets = 0
        self.records = 0
        self._match: MatchFunction | None = None
        #: ``match`` as a classic BPF program (packed struct sock_filter), when it has one:
        #: ``next_records`` then filters in C. Set it together with ``match``.
        self.program: bytes | None = None
        self._parser: _Parser | None = None
        self._buf = b""
        self._pos = 0
        self._base = 0  # file offset of _buf[0]
        self._eof = False
        self._pending: PacketBatch = []  # parsed, not yet returned
        self._unmatched: PacketBatch = []  # parsed with the header (pcapng), not yet matched
        self._error: CaptureFileError | None = None

    @property
    def match(self) -> MatchFunction | None:
        """Only packets this accepts are returned (None, the default: all)."""
        return self._match

    @match.setter
    def match(self, match: MatchFunction | None) -> None:
        self._match = match
        self._by_ifindex = {}

    def _test_of(self, ifindex: int, match: MatchFunction) -> MatchFunction | None:
        """The filter for the frames of interface ``ifindex``, compiled for its link type."""
        try:
            return self._by_ifindex[ifindex]
        except KeyError:
            linktype = self.linktypes[ifindex]
            assert self.match_for is not None
            test = match if linktype == self.linktype else self.match_for(linktype)
            self._by_ifindex[ifindex] = test
            return test

    @property
    def offset(self) -> int:
        """Bytes of the input consumed so far (the file offset after the last whole record)."""
        return self._base + self._pos

    @property
    def wanted(self) -> int:
        """Bytes the decoder needs past what it holds before it can go on (a reading hint)."""
        need = self._parser.wanted if self._parser is not None else 28
        return max(0, need - (len(self._buf) - self._pos))

    def feed(self, data: bytes) -> None:
        """Append input; an empty ``data`` marks the end of the input."""
        if not data:
            self._eof = True
            return
        if self._pos:
            self._base += self._pos
            self._buf = self._buf[self._pos :] + data
            self._pos = 0
        elif self._buf:
            self._buf += data
        else:
            self._buf = data

    def next_batch(self, *, fill: bool = True) -> PacketBatch | None:
        """Return the next batch, or None when more input is needed or the input is finished.

        Args:
            fill: wait (return None) until ``batch_size`` packets are there, unless the input
                ended. False returns whatever complete packets there are, for a pipe, where
                the rest may take a long time to come.

        Returns:
            A non-empty batch, or None.

        Raises:
            CaptureFileError: the input is no capture file or is corrupt (after every complete
                packet before the problem was returned).
        """
        if not self.ready and not self.start():
            return None
        pending = self._pending
        if self._unmatched:
            pending, examined = self._select(self._unmatched)
            self._unmatched = []  # pragma: no mutate (only its truth is read from here on)
            self.records = examined  # the packets parsed with the header: the first counted
            self.packets = len(pending)
        if self.limit and self.packets >= self.limit:
            self.finished = True  # nothing past the last packet wanted is read
        if self._error is None and not self.finished:
            starved = False
            room = self.batch_size - len(pending)
            while room > 0:
                batch, examined = self._parse(room)
                if batch:
                    self.packets += len(batch)
                    if pending:
                        pending.extend(batch)
                    else:
                        pending = batch
                if self.limit and self.packets >= self.limit:
                    self.finished = True  # nothing past the last packet wanted is read
                    break
                if examined < room:  # out of input, or an error
                    starved = True
                    break
                room = self.batch_size - len(pending)
            if starved and self._error is None:
                # The parser stopped for want of input.
                if self._eof:
                    self._finish()
                elif fill or not pending:
                    self._pending = pending
                    return None
        if pending:
            self._pending = []
            return pending
        if self._error is not None:
            self.finished = True
            raise self._error
        return None

    def next_records(self, *, fill: bool = True) -> PacketBatch | RecordBlock | None:
        """``next_batch``, where a pcap file's records can be read in C: then every complete
        record of the input held is read at once into one RecordBlock (``capsvc._records``),
        filtered by ``program``. Otherwise (pcapng, no C speed-ups, a filter without a
        program, a ``limit``) the same as ``next_batch(fill=fill)``.

        Raises:
            CaptureFileError: as ``next_batch``.
        """
        if not self.ready and not self.start():
            return None
        parser = self._parser
        if (
            _C is None
            or not isinstance(parser, _PcapParser)
            or self._pending
            or self._unmatched
            or self.limit  # -c: the decoding ends exactly at the last packet wanted
            or (self._match is not None and self.program is None)
        ):
            return self.next_batch(fill=fill)
        if self._error is None and not self.finished:
            block, self._pos = parser.parse_records(self._buf, self._pos, self.program)
            self.records += parser.examined
            self.packets += block.count
            if parser.error is not None:
                exc, parser.error = parser.error, None
                reason = f"{exc.reason} at offset {self._base + exc.pos}"
                self._error = CaptureFileError(self.name, reason)
            if block:
                return block
            if self._error is None:
                if not self._eof:
                    return None
                self._finish()
        if self._error is not None:
            self.finished = True
            raise self._error
        return None

    def _parse(self, limit: int) -> tuple[PacketBatch, int]:
        """Parse up to ``limit`` records: the packets kept and how many records were consumed
        (with a ``limit`` on packets, none past the last packet it allows)."""
        parser = self._parser
        assert parser is not None
        match = self._match
        keep = self.limit - self.packets if self.limit else 0
        if isinstance(parser, _PcapParser):
            batch, self._pos = parser.parse(self._buf, self._pos, limit, match, keep)
            examined = parser.examined
        else:
            batch, self._pos = parser.parse(self._buf, self._pos, limit)
            batch, examined = self._select(batch)
        self.records += examined
        if parser.error is not None:
            self._take_error(parser)
        return batch, examined

    def _select(self, batch: PacketBatch) -> tuple[PacketBatch, int]:
        """The packets of a parsed batch that ``match`` keeps, up to ``limit``, and how many
        of the batch's packets that took (all of them, unless the limit came first)."""
        match = self._match
        keep = self.limit - self.packets if self.limit else 0
        if match is None:
            if keep and len(batch) > keep:
                return batch[:keep], keep
            return batch, len(batch)
        kept: PacketBatch = []
        if self.match_for is not None and any(
            lt != self.linktype for lt in self.linktypes.values()
        ):  # interfaces of several link types: each one's frames by its own filter
            test_of = self._test_of
            for i, p in enumerate(batch):
                test = test_of(p[4], match)
                if test is None or test(p[1], p[2]):
                    kept.append(p)
                    if len(kept) == keep:
                        return kept, i + 1
            return kept, len(batch)
        for i, p in enumerate(batch):
            if match(p[1], p[2]):
                kept.append(p)
                if len(kept) == keep:
                    return kept, i + 1
        return kept, len(batch)

    def _take_error(self, parser: _Parser) -> None:
        exc, parser.error = parser.error, None
        assert exc is not None
        reason = f"{exc.reason} at offset {self._base + exc.pos}"
        self._error = CaptureFileError(self.name, reason)

    def start(self) -> bool:
        """Decode the file header (pcapng: up to the first IDB) from what was fed.

        Returns:
            True once the file's properties are known (``ready``); False when it needs more input.

        Raises:
            CaptureFileError: the input is no capture file.
        """
        if self.ready:
            return True
        if self._error is not None:
            raise self._error
        avail = len(self._buf) - self._pos
        if self._parser is None:
            if avail < 4:
                if self._eof:
                    self._at_eof_before_header(avail)
                return False
            magic = struct.unpack_from("<I", self._buf, self._pos)[0]
            if magic == PCAPNG_SHB_TYPE:
                self._parser = PcapNgParser()
            elif magic in (MAGIC_MICRO, MAGIC_NANO, MAGIC_MICRO_SWAPPED, MAGIC_NANO_SWAPPED):
                if avail < 24:
                    if self._eof:
                        self._fail(f"truncated pcap file header ({avail} of 24 bytes)")
                    return False
                try:
                    self._parser = _PcapParser(self._buf[self._pos : self._pos + 24])
                except CorruptInput as exc:
                    self._fail(exc.reason)
                self._pos += 24
            else:
                self._fail(_unknown_magic(self._buf[self._pos : self._pos + 4]))
        parser = self._parser
        if isinstance(parser, PcapNgParser):
            while parser.linktype is None:
                batch, self._pos = parser.parse(self._buf, self._pos, self.batch_size)
                if parser.error is not None:
                    self._take_error(parser)
                if batch:
                    # Only after an IDB (_iface() refuses the rest); matched and counted by
                    # next_batch, once ``match`` and ``limit`` are set.
                    self._unmatched.extend(batch)
                    continue
                if parser.linktype is not None:  # the first IDB was the last block fed
                    break
                if self._error is not None:
                    self.finished = True
                    raise self._error
                if not self._eof:
                    return False
                self._fail("pcapng file without an interface description block")
            self.snaplen = parser.snaplen
        else:
            self.snaplen = parser.snaplen
        # NULL (0) is a link type like any other: only a missing one defaults to RAW.
        assert parser.linktype is not None  # pcapng: the loop above waited for it
        self.linktype = parser.linktype
        self.nanosecond = parser.nanosecond
        self.interfaces = parser.interfaces
        if isinstance(parser, PcapNgParser):
            self.linktypes = parser.linktypes
        self.ready = True
        return True

    def _at_eof_before_header(self, avail: int) -> None:
        if avail == 0 and self._base == 0:
            self.ready = True  # an empty file: a capture with no packets
            self.finished = True
            return
        self._fail(f"too short to be a capture file ({avail} bytes)")

    def _fail(self, reason: str) -> NoReturn:
        self.finished = True
        self._error = CaptureFileError(self.name, reason)
        raise self._error

    def _finish(self) -> None:
        self.finished = True
        left = len(self._buf) - self._pos
        if left:
            logger.warning(
                "%s: truncated last record at offset %d (%d bytes); read %d complete packets",
                self.name,
                self._base + self._pos,
                left,
                self.records,
            )


def _unknown_magic(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "a gzip file, not a capture file: decompress it first (gunzip)"
    return (
        f"not a pcap or pcapng file: unknown magic number 0x{head.hex()} (expected a1b2c3d4, "
        "a1b23c4d or their byte-swapped forms for pcap, 0a0d0d0a for pcapng)"
    )
