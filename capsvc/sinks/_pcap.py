"""pcap (libpcap format) writer.

Pure encoding functions first (``pcap_header``, ``encode_records``), the thin writer after. The
global header is written lazily with the first packet, so an unbuffered pipe never waits on a
header nobody needs and an empty capture is 0 bytes. Records are encoded per batch into one buffer
and written with one ``write()`` call.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import IO

from .._accel import speedups
from .._errors import OptionError
from .._packet import SNAPLEN_DEFAULT, LinkType, PacketBatch
from .._records import RecordBlock
from ._io import write_all

__all__ = [
    "PCAP_HEADER",
    "PCAP_MAGIC_MICRO",
    "PCAP_MAGIC_NANO",
    "PCAP_RECORD",
    "PcapWriter",
    "encode_records",
    "pcap_header",
]

#: struct pcap_file_header: magic, version major/minor, thiszone, sigfigs, snaplen, linktype.
PCAP_HEADER = struct.Struct("<IHHiIII")
#: struct pcap_sf_pkthdr: ts_sec, ts_usec (or ts_nsec), incl_len, orig_len.
PCAP_RECORD = struct.Struct("<IIII")
PCAP_MAGIC_MICRO = 0xA1B2C3D4
PCAP_MAGIC_NANO = 0xA1B23C4D
_pack_record = PCAP_RECORD.pack


#: The C record encoder, when built.
_C = speedups()


def pcap_header(
    snaplen: int = 0, linktype: int = LinkType.RAW, *, nanosecond: bool = False
) -> bytes:
    """Return the 24-byte little-endian pcap global header (version 2.4; snaplen 0 means 262144)."""
    magic = PCAP_MAGIC_NANO if nanosecond else PCAP_MAGIC_MICRO
    return PCAP_HEADER.pack(magic, 2, 4, 0, 0, snaplen or SNAPLEN_DEFAULT, int(linktype))


def encode_records(batch: PacketBatch, snaplen: int, *, nanosecond: bool = False) -> bytes:
    """Encode a batch as pcap records.

    incl_len is min(len(data), snaplen); orig_len is the packet's wire length (never less than
    incl_len), so a truncated packet still says how long it was. Values a pcap record cannot
    hold (a time before 1970 or after 2106, a wire length of 4 GiB or more) are clamped.
    Runs the C version (``capsvc._accel``) when it is built.
    """
    if _C is not None and type(batch) is list:
        records: bytes = _C.encode_records(batch, snaplen, nanosecond)
        return records
    return encode_records_py(batch, snaplen, nanosecond=nanosecond)


def encode_records_py(batch: PacketBatch, snaplen: int, *, nanosecond: bool = False) -> bytes:
    """``encode_records`` in pure Python (the reference the C version is tested against)."""
    try:
        return _encode(batch, snaplen, nanosecond)
    except struct.error:
        return _encode(_clamped(batch), snaplen, nanosecond)


def _clamped(batch: PacketBatch) -> PacketBatch:
    """The batch with timestamps and wire lengths moved into what a record can hold."""
    top_ts = (1 << 32) * 1_000_000_000 - 1
    top_len = (1 << 32) - 1
    return [
        p._replace(ts_ns=min(max(p.ts_ns, 0), top_ts), wire_len=min(max(p.wire_len, 0), top_len))
        for p in batch
    ]


def _encode(batch: PacketBatch, snaplen: int, nanosecond: bool) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    if nanosecond:
        for ts, data, wire, _d, _i in batch:
            n = len(data)
            if n > snaplen:
                data = data[:snaplen]
                n = snaplen
            append(
                _pack_record(ts // 1_000_000_000, ts % 1_000_000_000, n, wire if wire > n else n)
            )
            append(data)
    else:
        for ts, data, wire, _d, _i in batch:
            n = len(data)
            if n > snaplen:
                data = data[:snaplen]
                n = snaplen
            append(
                _pack_record(
                    ts // 1_000_000_000, ts % 1_000_000_000 // 1000, n, wire if wire > n else n
                )
            )
            append(data)
    return b"".join(parts)


class PcapWriter:
    """Writes packets as a pcap file to a binary stream.

    Args:
        stream: where to write; never closed by the writer.
        snaplen: snapshot length in the header and the cap on each record; 0 means 262144.
        linktype: link type in the header.
        nanosecond: nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds.
        header_written: the stream already holds this header (appending to a file that has it).
        linktypes: ifindex -> link type of the frames' interfaces, where they have their own
            (a pcapng source's ``linktypes``, which may grow while it is read). A pcap file
            holds one link type: a batch arriving once an interface of another link type is
            known raises OptionError naming both, before anything of it is written.

    The global header is written with the first batch, or at the first flush when no packet
    came: a capture that matched nothing is still a valid 24-byte pcap file (as tcpdump's).

    Attributes:
        publish: when set, called as ``publish(batch, records)`` after each batch is written,
            with the batch's encoded records (no header): live streams of the same session
            send those bytes without encoding the batch again.
    """

    def __init__(
        self,
        stream: IO[bytes],
        snaplen: int = 0,
        linktype: LinkType | int = LinkType.RAW,
        *,
        nanosecond: bool = False,
        header_written: bool = False,
        linktypes: Mapping[int, int] | None = None,
    ) -> None:
        self.stream = stream
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        self.linktype = LinkType(linktype)
        self.nanosecond = nanosecond
        self.publish: Callable[[PacketBatch, bytes], None] | None = None
        self._header_written = header_written
        self._linktypes = linktypes
        self._checked = 0  # interfaces of ``linktypes`` known to have ``linktype``

    def _check_linktypes(self, linktypes: Mapping[int, int]) -> None:
        for ifindex, linktype in linktypes.items():
            if linktype != self.linktype:
                raise OptionError(
                    f"interface {ifindex} of the input has link type {LinkType(linktype).name}, "
                    f"the others {self.linktype.name}: a pcap file holds one link type "
                    "(write pcapng to keep both)"
                )
        self._checked = len(linktypes)

    def write_header(self) -> None:
        """Write the global header if it is not written yet; retried after a failed write."""
        if not self._header_written:
            write_all(
                self.stream, pcap_header(self.snaplen, self.linktype, nanosecond=self.nanosecond)
            )
            self._header_written = True

    def write_packet(self, ts_ns: int, data: bytes, wire_len: int | None = None) -> None:
        """Write one record (the header first if needed). ``wire_len`` None means ``len(data)``."""
        from .._packet import Direction, Packet

        wl = len(data) if wire_len is None else wire_len
        self.write_batch([Packet(ts_ns, bytes(data), wl, Direction.UNKNOWN, 0)])

    def write_batch(self, batch: PacketBatch) -> None:
        """Write a batch of records with one ``write()`` (the header joins the first batch)."""
        if not batch:
            return
        linktypes = self._linktypes
        if linktypes is not None and len(linktypes) != self._checked:
            self._check_linktypes(linktypes)
        body = encode_records(batch, self.snaplen, nanosecond=self.nanosecond)
        self._write_body(body)
        publish = self.publish
        if publish is not None:
            publish(batch, body)

    def write_records(self, block: RecordBlock) -> None:
        """``write_batch`` for a RecordBlock: encoded in one C call, no Packet built (unless
        ``publish`` is set: the streams it feeds look at packets, and share the encoding)."""
        body = block.pcap(self.snaplen, nanosecond=self.nanosecond)
        self._write_body(body)
        publish = self.publish
        if publish is not None:
            publish(block.packets(), body)

    def _write_body(self, body: bytes) -> None:
        if not self._header_written:
            write_all(
                self.stream,
                pcap_header(self.snaplen, self.linktype, nanosecond=self.nanosecond) + body,
            )
            self._header_written = True
        else:
            write_all(self.stream, body)

    def flush(self) -> None:
        """Write the header if nothing was written yet, then flush the stream."""
        if not self._header_written:
            self.write_header()
        self.stream.flush()

    def close(self) -> None:
        """Flush; the stream stays open (its owner closes it)."""
        self.flush()
