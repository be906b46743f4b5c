"""The capture-file decoder at its edges: limits, counters, small reads, exact errors.

Each test names the mutations (scripts/mutation.sh, group ``capfile``) it kills: boundaries of
the snapshot length and of block lengths, what the decoder asks to read next, batches and
counters across small reads, ``limit`` (``tcpdump -c``), the obsolete Packet Block, interface
options, per-interface filters of a pcapng file of several link types, and the exact text and
offset of every error.
"""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

import pytest
from _helpers import ether, ipv4, tcp, udp
from test_pcapfile import block, epb, idb, option, pcap_file, shb, spb

from capsvc import CaptureFileError, Direction, LinkType, Packet
from capsvc._records import available as records_available
from capsvc.filter import parse_filter
from capsvc.sources.capfile._decode import MAX_SNAPLEN, CaptureDecoder, Interface
from capsvc.sources.capfile._source import PcapFileSource, read_capture

FRAME = ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80)))  # 54 bytes
RAW = b"\x45" + b"\0" * 19
NEEDS_C = pytest.mark.skipif(not records_available(), reason="capsvc._speedups is not built")


def write(tmp_path: Path, data: bytes, name: str = "f.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def batches(path: Path | io.BytesIO, **kw: int) -> list[list[Packet]]:
    with read_capture(path, **kw) as cap:
        return list(cap)


def error_of(path: Path, **kw: int) -> str:
    with pytest.raises(CaptureFileError) as info:
        batches(path, **kw)
    return str(info.value)


async def source_packets(source: PcapFileSource, *, records: bool = False) -> list[Packet]:
    """Every packet of the source, read as a Session reads it (``records``) or by ``async for``."""
    got: list[Packet] = []
    if records:
        async for item in source.record_batches():
            if isinstance(item, list):
                got.extend(item)
            else:
                got.extend(item.packets())
    else:
        async for batch in source:
            got.extend(batch)
    await source.aclose()
    return got


# --- the pcap header -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snaplen", "expected"),
    [(0, 262144), (1, 1), (MAX_SNAPLEN, MAX_SNAPLEN), (MAX_SNAPLEN + 1, 262144)],
)
def test_pcap_snaplen_bounds_and_the_implicit_interface(
    tmp_path: Path, snaplen: int, expected: int
) -> None:
    """Kills ``0 < snaplen <= MAX_SNAPLEN`` as ``1 <``, ``0 <=``, ``< MAX_SNAPLEN`` or always
    true, and any change of the one interface of a pcap file (ifindex 0, no name)."""
    path = write(tmp_path, pcap_file([(1, 0, FRAME, len(FRAME))], snaplen=snaplen))
    with read_capture(path) as cap:
        assert cap.snaplen == expected
        assert cap.interfaces == [Interface(0, "", LinkType.ETHERNET, expected)]
        assert cap.linktypes == {}


def test_fcs_bits_of_the_link_type_field_are_dropped(tmp_path: Path) -> None:
    """The upper 6 bits of a pcap link type carry FCS information (LT_LINKTYPE)."""
    path = write(tmp_path, pcap_file([(1, 0, FRAME, len(FRAME))], linktype=1 | 0x14000000))
    with read_capture(path) as cap:
        assert cap.linktype == LinkType.ETHERNET


def test_empty_file_properties(tmp_path: Path) -> None:
    """Kills initial ``nanosecond``/``interfaces``/``packets``/``ready`` changed in
    CaptureDecoder.__init__ and ``ready`` not set for an empty file."""
    with read_capture(write(tmp_path, b"")) as cap:
        assert list(cap) == []
        assert cap.nanosecond is False and cap.interfaces == [] and cap.linktypes == {}
        assert (cap.packets, cap.records) == (0, 0)
        assert cap.decoder.ready is True and cap.decoder.finished is True
        assert cap.decoder.start() is True


def test_decoder_asks_for_what_the_next_record_needs() -> None:
    """Kills the pcap parser's ``wanted`` as 17, ``16 - incl`` or ``17 + incl`` (both
    branches), its initial value, and ``start`` returning False once ready."""
    header = pcap_file([], snaplen=64)
    dec = CaptureDecoder("w.pcap")
    dec.feed(header)
    assert dec.start() is True and dec.start() is True and dec.ready is True
    assert dec.wanted == 0
    assert dec.next_batch(fill=False) is None
    assert dec.wanted == 16  # a record header
    record = struct.pack("<IIII", 1, 0, 40, 40)
    dec.feed(record)
    assert dec.next_batch(fill=False) is None
    assert dec.wanted == 40  # its data
    dec.feed(bytes(40) + struct.pack("<IIII", 2, 0, 100, 100))  # more than the snaplen 64
    (p,) = dec.next_batch(fill=False) or []
    assert p.ts_ns == 1_000_000_000
    assert dec.next_batch(fill=False) is None
    assert dec.wanted == 100
    dec.feed(bytes(100))
    (q,) = dec.next_batch(fill=False) or []
    assert (len(q.data), q.wire_len) == (64, 100)
    assert dec.offset == 24 + 16 + 40 + 16 + 100


def test_pcapng_decoder_asks_for_block_headers_and_section_headers() -> None:
    """Kills pcapng ``wanted`` = 12 / 28 changed (13, 29, None) and the SHB check
    ``pos + 28 > end`` as ``pos - 28 > end`` (a cut SHB then fails with a struct error)."""
    dec = CaptureDecoder("w.pcapng")
    dec.feed(shb() + idb("<", 1) + epb("<", 0, 1, FRAME))
    assert dec.start() is True
    assert [p.data for p in dec.next_batch(fill=False) or []] == [FRAME]
    assert dec.next_batch(fill=False) is None
    assert dec.wanted == 12
    dec.feed(shb()[:20])  # a second section whose header is cut
    assert dec.next_batch(fill=False) is None
    assert dec.wanted == 28 - 20
    dec.feed(shb()[20:] + idb("<", 101) + epb("<", 0, 5, RAW))
    (p,) = dec.next_batch(fill=False) or []
    assert p.ifindex == 2


def test_pcapng_header_known_when_the_first_idb_is_the_last_block_fed() -> None:
    """A pcapng stream (``dumpcap -w -`` before any traffic) has sent its section header and
    its first IDB: the link type is known then, not at the next block.

    Bug guarded: start() returned False until one more block came after the first IDB."""
    dec = CaptureDecoder("pipe.pcapng")
    dec.feed(shb() + idb("<", 1))
    assert dec.start() is True
    assert dec.linktype == LinkType.ETHERNET
    assert dec.next_batch(fill=False) is None  # no packet yet, and no error
    dec.feed(epb("<", 0, 1, FRAME))
    assert [p.data for p in dec.next_batch(fill=False) or []] == [FRAME]
    split = CaptureDecoder("pipe.pcapng")  # the same, the IDB in a later read
    split.feed(shb())
    assert split.start() is False
    split.feed(idb("<", 101))
    assert split.start() is True
    assert split.linktype == LinkType.RAW


# --- records at the edges ----------------------------------------------------------------------


def test_a_zero_length_record_at_the_very_end_is_read(tmp_path: Path) -> None:
    """Kills ``start > end`` as ``start >= end``: a record of no bytes ending the file."""
    path = write(tmp_path, pcap_file([(1, 0, FRAME, len(FRAME)), (2, 0, b"", 0)]))
    got = [p for b in batches(path) for p in b]
    assert [(p.ts_ns, p.data) for p in got] == [(1_000_000_000, FRAME), (2_000_000_000, b"")]


def test_a_record_of_exactly_the_largest_captured_length_is_cut(tmp_path: Path) -> None:
    """Kills ``incl > maxcap`` as ``>=``: 262144 bytes (the largest a 100-byte snaplen file
    may hold) is a record, cut to the snaplen, not corruption."""
    data = bytes(range(256)) * 1024
    path = write(tmp_path, pcap_file([(1, 0, data, len(data))], snaplen=100))
    (p,) = [p for b in batches(path) for p in b]
    assert (p.data, p.wire_len) == (data[:100], 262144)


def test_records_beyond_the_snaplen_across_small_reads(tmp_path: Path) -> None:
    """Kills ``break`` as ``return`` where a record longer than the snaplen is not all there
    yet (then the parse returns nothing to unpack)."""
    recs = [(i, 0, bytes([i]) * 300, 300) for i in range(6)]
    path = write(tmp_path, pcap_file(recs, snaplen=100))
    got = [p for b in batches(path, chunk_size=7) for p in b]
    assert [(p.data, p.wire_len) for p in got] == [(bytes([i]) * 100, 300) for i in range(6)]


def test_batches_are_full_across_small_reads(tmp_path: Path) -> None:
    """Kills ``fill or not pending`` as ``and``, ``room > 0`` as ``room > 1``, the default
    ``fill=True`` of next_batch and ``room`` as ``batch_size + len(pending)``: a batch waits
    for ``batch_size`` packets while the file has more, whatever the read size."""
    recs = [(1, i, RAW, 20) for i in range(250)]
    path = write(tmp_path, pcap_file(recs, linktype=101))
    assert [len(b) for b in batches(path, chunk_size=7, batch_size=100)] == [100, 100, 50]
    ng = shb() + idb("<", 101) + b"".join(epb("<", 0, i, RAW) for i in range(10))
    path = write(tmp_path, ng, "f.pcapng")
    assert [len(b) for b in batches(path, batch_size=3)] == [3, 3, 3, 1]
    assert [len(b) for b in batches(path, chunk_size=5, batch_size=3)] == [3, 3, 3, 1]


def test_next_records_waits_to_fill_a_batch_by_default() -> None:
    """``next_records()`` of a pcapng input (read as ``next_batch``) waits, as ``next_batch()``
    does, until ``batch_size`` packets are there while more may come; ``fill=False`` takes
    what is there. Fed the end, both hand the rest over.

    Mutation guarded: ``next_records``'s default ``fill=False`` (1)."""
    ng = shb() + idb("<", 101) + b"".join(epb("<", 0, i, RAW) for i in range(5))
    dec = CaptureDecoder("w.pcapng", batch_size=4)
    dec.feed(ng[: len(ng) - 4])  # the last block is not whole yet
    first = dec.next_records()
    assert first is not None and len(first) == 4
    assert dec.next_records() is None  # 0 of 4 there, more may come
    dec.feed(ng[len(ng) - 4 :])
    assert dec.next_records() is None  # 1 of 4
    rest = dec.next_records(fill=False)
    assert rest is not None and len(rest) == 1
    dec.feed(b"")
    assert dec.next_records() is None and dec.finished


def test_the_default_batch_size_and_a_batch_of_one(tmp_path: Path) -> None:
    """Kills CaptureDecoder's default batch size 1024 changed and ``max(1, ...)`` as
    ``max(2, ...)`` in CaptureFile."""
    recs = [(1, i, RAW, 20) for i in range(1500)]
    data = pcap_file(recs, linktype=101)
    dec = CaptureDecoder("d.pcap")
    dec.feed(data)
    dec.feed(b"")
    assert [len(b) for b in iter(dec.next_batch, None)] == [1024, 476]
    assert [len(b) for b in batches(io.BytesIO(data[: 24 + 36 * 3]), batch_size=1)] == [1, 1, 1]


def test_packet_and_record_counters(tmp_path: Path) -> None:
    """Kills ``packets +=`` as ``=`` or ``-=`` (pcap and pcapng, the first batch of pcapng),
    ``records`` likewise, and an initial count of 1."""
    recs = [(1, i, RAW, 20) for i in range(2500)]
    with read_capture(write(tmp_path, pcap_file(recs, linktype=101))) as cap:
        assert sum(len(b) for b in cap) == 2500
        assert (cap.packets, cap.records) == (2500, 2500)
    ng = shb() + idb("<", 101) + b"".join(epb("<", 0, i, RAW) for i in range(2100))
    with read_capture(write(tmp_path, ng, "f.pcapng")) as cap:
        assert sum(len(b) for b in cap) == 2100
        assert (cap.packets, cap.records) == (2100, 2100)


def test_wire_lengths_reach_the_filter(tmp_path: Path) -> None:
    """Kills the wire length given to the Python matcher (pcap: ``orig if orig > incl else
    incl`` dropped or always one side; pcapng ``_select``: ``p[2]`` replaced): a record cut by
    the snaplen is as long as on the wire; one claiming less than it holds is as long as it
    holds."""
    records = [(1, 0, FRAME, 1000), (2, 0, FRAME, 10), (3, 0, FRAME, 54)]
    m = parse_filter("greater 500", LinkType.ETHERNET)
    assert m is not None
    path = write(tmp_path, pcap_file(records))
    with read_capture(path) as cap:
        cap.decoder.match = m.match
        assert [p.ts_ns for b in cap for p in b] == [1_000_000_000]
    m = parse_filter("len == 54", LinkType.ETHERNET)
    assert m is not None
    ng = shb() + idb("<", 1, tsresol=0) + b"".join(epb("<", 0, s, d, o) for s, _, d, o in records)
    for data in (pcap_file(records), ng):
        with read_capture(io.BytesIO(data)) as cap:
            cap.decoder.match = m.match
            assert [p.ts_ns for b in cap for p in b] == [2_000_000_000, 3_000_000_000]


# --- limit (tcpdump -c) ----------------------------------------------------------------------


@pytest.mark.parametrize("records", [False, True])
async def test_limit_on_pcap_ends_at_the_last_packet(tmp_path: Path, records: bool) -> None:
    """Kills ``packets >= limit`` as ``>``, ``finished`` not set at the limit, the parse's
    ``break`` as ``return`` at ``keep`` and ``keep`` computed wrong (None, ``limit +
    packets``, always or never the limit)."""
    frames = [
        ether(ipv4("10.0.0.1", "10.0.0.2", udp(1000 + i, 53 if i % 3 else 80))) for i in range(300)
    ]
    path = write(tmp_path, pcap_file([(i, 0, f, len(f)) for i, f in enumerate(frames)]))
    source = PcapFileSource(path, limit=5)
    got = await source_packets(source, records=records)
    assert [p.ts_ns // 10**9 for p in got] == [0, 1, 2, 3, 4]
    assert source.stats().received == 5
    source = PcapFileSource(path, limit=4, filter="udp port 80")
    got = await source_packets(source, records=records)
    assert [p.ts_ns // 10**9 for p in got] == [0, 3, 6, 9]
    assert source.stats().received == 10


async def test_limit_on_pcapng_counts_the_records_up_to_it(tmp_path: Path) -> None:
    """Kills, in ``_select`` and ``next_batch``: ``len(kept) == keep`` as ``!=``, ``i + 1``
    as ``i - 1`` / ``i + 2``, ``keep`` wrong, ``>= limit`` as ``>`` after the header's batch
    (1100 packets: more than the first batch of 1024)."""
    frames = [
        ether(ipv4("10.0.0.1", "10.0.0.2", udp(1000 + i, 53 if i % 3 else 80))) for i in range(1100)
    ]
    data = shb() + idb("<", 1) + b"".join(epb("<", 0, i, f) for i, f in enumerate(frames))
    path = write(tmp_path, data, "f.pcapng")
    source = PcapFileSource(path, limit=3)
    assert [p.ts_ns for p in await source_packets(source)] == [0, 1000, 2000]
    assert source.stats().received == 3
    source = PcapFileSource(path, limit=3, filter="udp port 80")
    assert [p.ts_ns for p in await source_packets(source)] == [0, 3000, 6000]
    assert source.stats().received == 7
    source = PcapFileSource(path, limit=1050)
    assert len(await source_packets(source)) == 1050
    assert source.stats().received == 1050


def test_a_limit_met_inside_a_batch_ends_the_decoding_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The limit's last packet is in the middle of what was fed: the batch ending with it comes
    at once (not held for more input, though ``fill`` is asked for), the decoder is finished
    with it, nothing past it is counted or consumed, and the records left in the input are no
    truncated record to warn about.

    Mutation guarded: ``packets >= limit`` as ``>`` inside the parse loop (``next_batch`` 30:
    the batch would wait for input it does not need, and at the end of the input the records
    past the limit would be warned about as a cut record), ``finished`` set to None or False
    there (31, 32: the decoder would say it wants more input after its last packet)."""
    data = pcap_file([(i, 0, RAW, 20) for i in range(20)], linktype=101)
    dec = CaptureDecoder("limit.pcap")
    dec.limit = 5
    dec.feed(data)
    assert [p.ts_ns // 10**9 for p in dec.next_batch() or []] == [0, 1, 2, 3, 4]
    assert dec.finished is True
    assert (dec.packets, dec.records, dec.offset) == (5, 5, 24 + 5 * 36)
    assert dec.next_batch() is None
    with caplog.at_level(logging.WARNING, logger="capsvc"):
        dec = CaptureDecoder("limit.pcap")
        dec.limit = 5
        dec.feed(data)
        dec.feed(b"")
        assert [len(b) for b in iter(dec.next_batch, None)] == [5]
        assert dec.finished is True
    assert caplog.records == []


def test_a_limit_across_batches_of_a_pcap_file() -> None:
    """A limit larger than the batch size: the batch that reaches it holds only the packets
    left to the limit (2 of a batch of 3), and the decoding ends there.

    Mutation guarded: the packets left to the limit computed as ``limit + packets`` (``_parse``
    7: the second batch would be a full one of 3, one packet past the limit)."""
    data = pcap_file([(i, 0, RAW, 20) for i in range(20)], linktype=101)
    dec = CaptureDecoder("limit.pcap", batch_size=3)
    dec.limit = 5
    dec.feed(data)
    dec.feed(b"")
    got = [[p.ts_ns // 10**9 for p in b] for b in iter(dec.next_batch, None)]
    assert got == [[0, 1, 2], [3, 4]]
    assert (dec.packets, dec.records, dec.finished) == (5, 5, True)


# --- pcapng blocks and options ---------------------------------------------------------------


def pb(order: str, if_id: int, ts: int, data: bytes, orig: int, drops: int = 0) -> bytes:
    body = struct.pack(order + "HHIIII", if_id, drops, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
    return block(order, 2, body + data + b"\0" * (-len(data) % 4))


@pytest.mark.parametrize("order", ["<", ">"])
def test_obsolete_packet_blocks_are_read(tmp_path: Path, order: str) -> None:
    """Kills every mutant of ``_packet`` (the Packet Block, type 2: interface, drops count,
    timestamp, lengths) and its ``append`` in ``_parse``."""
    data = (
        shb(order)
        + idb(order, 101, name="a")
        + idb(order, 1, tsresol=9)
        + pb(order, 1, (5 << 32) + 7, FRAME, 1500, drops=3)
        + pb(order, 0, 2_000_001, RAW, 20)
    )
    got = [p for b in batches(write(tmp_path, data, "pb.pcapng")) for p in b]
    assert got == [
        Packet((5 << 32) + 7, FRAME, 1500, Direction.UNKNOWN, 2),
        Packet(2_000_001_000, RAW, 20, Direction.UNKNOWN, 1),
    ]


def test_simple_packet_blocks_take_what_the_block_holds(tmp_path: Path) -> None:
    """Kills ``min(orig, bend - 4 - (pos + 12))`` with any operand changed: an SPB's data is
    its original length or what the block holds, whichever is less (the padding is not
    data)."""
    data = shb() + idb("<", 101) + spb("<", RAW + b"\1\2", orig=22) + spb("<", RAW, orig=500)
    got = [p for b in batches(write(tmp_path, data, "spb.pcapng")) for p in b]
    assert [(p.data, p.wire_len) for p in got] == [(RAW + b"\1\2", 22), (RAW, 500)]


def test_interface_options_at_the_block_end_and_malformed(tmp_path: Path) -> None:
    """Kills ``_options``' ``value_end > end`` as ``>=`` and the IDB's options end ``bend -
    4`` as ``bend - 5`` (an option ending the block without opt_endofopt), the if_name
    decoding (``rstrip`` side, errors ``replace``), the snaplen of ``interfaces`` and
    ``if_tsoffset`` taken at a length other than 8."""
    name = option("<", 2, b"caf\xc3\xa9\xff\0\0")
    body = struct.pack("<HHI", 1, 0, 96) + name
    bad_offset = option("<", 14, struct.pack("<i", 100))  # 4 bytes: not an if_tsoffset
    data = (
        shb()
        + block("<", 1, body)
        + block("<", 1, struct.pack("<HHI", 101, 0, 0) + option("<", 2, b"\0\0x") + bad_offset)
        + epb("<", 1, 7, RAW)
    )
    with read_capture(write(tmp_path, data, "o.pcapng")) as cap:
        assert cap.interfaces == [
            Interface(1, "caf\u00e9\ufffd", 1, 96),
            Interface(2, "\0\0x", 101, 0),
        ]
        (p,) = [p for b in cap for p in b]
    assert p.ts_ns == 7000


def test_epb_flags_at_the_block_end_and_of_the_wrong_length(tmp_path: Path) -> None:
    """Kills the end ``bend - 4`` of an EPB's options as ``bend - 5`` (epb_flags ending the
    block without opt_endofopt) and ``len(value) == 4`` dropped from the flags test."""
    flags_last = struct.pack("<IIIII", 0, 0, 1, len(RAW), 20) + RAW
    flags_last += option("<", 2, struct.pack("<I", 2))
    short_flags = struct.pack("<IIIII", 0, 0, 2, len(RAW), 20) + RAW + option("<", 2, b"\1\0")
    data = shb() + idb("<", 101) + block("<", 6, flags_last) + block("<", 6, short_flags)
    got = [p for b in batches(write(tmp_path, data, "f.pcapng")) for p in b]
    assert [p.direction for p in got] == [Direction.OUTBOUND, Direction.UNKNOWN]


def test_epb_original_length_below_the_captured_one(tmp_path: Path) -> None:
    """Kills ``orig if orig > caplen else caplen`` as always ``orig`` in ``_make``."""
    data = shb() + idb("<", 101) + epb("<", 0, 1, RAW, orig=4)
    (p,) = [p for b in batches(write(tmp_path, data, "f.pcapng")) for p in b]
    assert p.wire_len == 20


def test_block_length_bounds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Kills ``blen < 12`` as ``<= 12`` / ``< 13``, ``blen > MAX_BLOCK`` as ``>=`` and
    ``pos + 12 > end`` as ``>=`` / ``pos + 13``: an empty 12-byte block (also as the last
    bytes of the file) and a block of exactly 16 MiB are blocks, not corruption or a cut."""
    empty = struct.pack("<II", 0xBAD, 12) + struct.pack("<I", 12)
    big_body = bytes(16 * 1024 * 1024 - 12)
    big = (
        struct.pack("<II", 0xBAD, 16 * 1024 * 1024) + big_body + struct.pack("<I", 16 * 1024 * 1024)
    )
    data = shb() + idb("<", 101) + empty + epb("<", 0, 1, RAW) + big + epb("<", 0, 2, RAW) + empty
    with caplog.at_level(logging.WARNING, logger="capsvc"):
        got = [p for b in batches(io.BytesIO(data)) for p in b]
    assert [p.ts_ns for p in got] == [1000, 2000]
    assert caplog.records == []


@pytest.mark.parametrize(
    ("tsresol", "ts", "expected_ns"),
    [(10, 12_345_678_901, 1_234_567_890), (0x80 | 0, 3, 3_000_000_000)],
)
def test_if_tsresol_past_nanoseconds(
    tmp_path: Path, tsresol: int, ts: int, expected_ns: int
) -> None:
    """Kills ``exp <= 9`` as ``exp <= 10`` in ``set_tsresol`` (10**-1 as a multiplier)."""
    data = shb() + idb("<", 101, tsresol=tsresol) + epb("<", 0, ts, RAW)
    (p,) = [p for b in batches(write(tmp_path, data, "r.pcapng")) for p in b]
    assert p.ts_ns == expected_ns and isinstance(p.ts_ns, int)


def test_pcapng_link_type_when_the_header_comes_in_small_reads(tmp_path: Path) -> None:
    """Kills ``start`` returning True before the first IDB is there (the link type would be
    RAW) and ``ready`` left false."""
    data = shb() + idb("<", 1, 1500) + epb("<", 0, 1, FRAME)
    with read_capture(write(tmp_path, data, "s.pcapng"), chunk_size=5) as cap:
        assert (cap.linktype, cap.snaplen, cap.decoder.ready) == (LinkType.ETHERNET, 1500, True)
        assert [p.data for b in cap for p in b] == [FRAME]


def test_the_smallest_packet_block_and_simple_packet_block(tmp_path: Path) -> None:
    """A Packet Block of 32 bytes and a Simple Packet Block of 16 (no data, no options: the
    least each can be) are packets of no bytes, not blocks too short.

    Mutation guarded: ``bend - pos < 32`` as ``<= 32`` or ``< 33`` (``_packet`` 2, 3) and
    ``< 16`` as ``<= 16`` or ``< 17`` (``_simple`` 2, 3)."""
    smallest_pb = pb("<", 0, 5, b"", 0)
    smallest_spb = spb("<", b"", orig=60)
    assert (len(smallest_pb), len(smallest_spb)) == (32, 16)
    data = shb() + idb("<", 101) + smallest_pb + smallest_spb
    got = [p for b in batches(write(tmp_path, data, "small.pcapng")) for p in b]
    assert got == [
        Packet(5000, b"", 0, Direction.UNKNOWN, 1),
        Packet(0, b"", 60, Direction.UNKNOWN, 1),
    ]


def test_a_simple_packet_block_before_its_sections_first_idb(tmp_path: Path) -> None:
    """Each section starts its interface list over: an SPB in a second section before any IDB
    of it is on interface 0, which that section has not described. The error names the SPB's
    offset, after the packet of the first section was delivered.

    Mutation guarded: the error's position dropped for an SPB (``_simple`` 11: the offset
    cannot be computed, a TypeError instead of the CaptureFileError)."""
    data = shb() + idb("<", 101) + epb("<", 0, 1, RAW) + shb() + spb("<", RAW)
    path = write(tmp_path, data, "spb.pcapng")
    got: list[Packet] = []
    with pytest.raises(CaptureFileError) as info, read_capture(path) as cap:
        for batch in cap:
            got.extend(batch)
    assert [p.data for p in got] == [RAW]
    assert str(info.value) == (
        f"{path}: packet on interface 0, which has no interface description at offset 128"
    )


def test_an_option_running_past_its_block_ends_the_options(tmp_path: Path) -> None:
    """An option whose length runs past the end of its block is a malformed tail: it is
    ignored, and the options before it are kept (an IDB's if_name, an EPB's epb_flags).

    Mutation guarded: ``break`` as ``return`` in ``_options`` (18: no list of options at all,
    a TypeError on the first malformed tail)."""
    overflow = struct.pack("<HH", 9, 100) + bytes(4)  # if_tsresol claiming 100 bytes
    idb_body = struct.pack("<HHI", 101, 0, 0) + option("<", 2, b"eth0") + overflow
    epb_body = struct.pack("<IIIII", 0, 0, 3, len(RAW), 20) + RAW
    epb_body += option("<", 2, struct.pack("<I", 1)) + struct.pack("<HH", 1, 64)
    data = shb() + block("<", 1, idb_body) + block("<", 6, epb_body)
    with read_capture(write(tmp_path, data, "tail.pcapng")) as cap:
        assert cap.interfaces == [Interface(1, "eth0", 101, 0)]
        got = [p for b in cap for p in b]
    assert got == [Packet(3000, RAW, 20, Direction.INBOUND, 1)]  # microseconds: no if_tsresol


def test_interface_names_absent_or_ending_in_x(tmp_path: Path) -> None:
    """An IDB without if_name has the name ""; only NUL padding is stripped from a name, so
    one ending in "X" keeps it.

    Mutation guarded: the default name None or "XXXX" (``_interface`` 25, 26), the padding
    stripped as ``rstrip(b"XX\\0XX")`` (45: "wlanX" would be "wlan")."""
    third = struct.pack("<HHI", 1, 0, 0) + option("<", 2, b"ethXX\0\0\0")
    data = shb() + idb("<", 1) + idb("<", 101, name="wlanX") + block("<", 1, third)
    with read_capture(write(tmp_path, data, "names.pcapng")) as cap:
        assert cap.interfaces == [
            Interface(1, "", 1, 0),
            Interface(2, "wlanX", 101, 0),
            Interface(3, "ethXX", 1, 0),
        ]


# --- several link types in one pcapng file -----------------------------------------------------


def two_linktypes() -> bytes:
    """Interface 1 Ethernet, 2 raw IP; TCP port 80 and UDP, three packets each."""
    eth = [
        ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 80))),
        ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 80))),
    ]
    raw = [ipv4("10.0.0.1", "10.0.0.2", tcp(1, 80)), ipv4("10.0.0.1", "10.0.0.2", udp(1, 80))]
    out = shb() + idb("<", 1) + idb("<", 101)
    for i in range(3):
        for j in range(2):
            out += epb("<", 0, i * 10 + j, eth[j]) + epb("<", 1, i * 10 + 5 + j, raw[j])
    return out


@pytest.mark.parametrize("records", [False, True])
async def test_each_interface_is_filtered_by_its_own_link_type(
    tmp_path: Path, records: bool
) -> None:
    """Kills ``_test_of`` (no tests reached it before): the filter compiled for the wrong link
    type, its cache holding None, ``match_for`` not consulted or asserted wrong; and in
    ``_select``: ``match_for is not None and any(...)`` as ``or`` / ``is None`` / ``==``, the
    test taken for another field than the ifindex, the frame or wire length not given."""
    path = write(tmp_path, two_linktypes(), "two.pcapng")
    source = PcapFileSource(path, filter="tcp port 80")
    got = await source_packets(source, records=records)
    assert [(p.ts_ns // 1000, p.ifindex) for p in got] == [
        (0, 1),
        (5, 2),
        (10, 1),
        (15, 2),
        (20, 1),
        (25, 2),
    ]
    assert source.stats().received == 12
    source = PcapFileSource(path, filter="tcp port 80", limit=3)
    got = await source_packets(source)
    assert [p.ts_ns // 1000 for p in got] == [0, 5, 10]
    assert source.stats().received == 5


async def test_a_matcher_object_sees_every_frame_as_the_first_link_type(tmp_path: Path) -> None:
    """Kills ``match_for`` initially "" instead of None (then the per-interface path calls it)
    and ``program`` initially "" (the C reader would be handed an empty program)."""
    m = parse_filter("ip[9] == 6 or ether[23] == 6", LinkType.ETHERNET)
    assert m is not None
    source = PcapFileSource(write(tmp_path, two_linktypes(), "two.pcapng"), filter=m)
    got = await source_packets(source, records=True)
    assert [p.ifindex for p in got] == [1, 1, 1]  # raw frames read as Ethernet: no match
    frames = [ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 80)))] * 3
    pcap = write(tmp_path, pcap_file([(i, 0, f, len(f)) for i, f in enumerate(frames)]))
    assert len(await source_packets(PcapFileSource(pcap, filter=m), records=True)) == 3


@pytest.mark.parametrize("records", [False, True])
async def test_each_interfaces_filter_is_given_the_wire_length(
    tmp_path: Path, records: bool
) -> None:
    """In a pcapng file of two link types, each interface's filter sees a packet cut by the
    snaplen as long as it was on the wire (``greater 500``: 500 bytes and more).

    Mutation guarded: the wire length given to the per-interface filter as None, left out,
    or the direction in its place (``_select`` 26, 28, 30)."""
    eth = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 53)))
    raw = eth[14:]
    data = shb() + idb("<", 1, 64) + idb("<", 101, 64)
    data += epb("<", 0, 1000, eth, 1000) + epb("<", 1, 2000, raw, 800)
    data += epb("<", 0, 3000, eth) + epb("<", 1, 4000, raw) + epb("<", 1, 5000, raw, 500)
    data += epb("<", 0, 6000, eth, 499)
    source = PcapFileSource(write(tmp_path, data, "two.pcapng"), filter="greater 500")
    got = await source_packets(source, records=records)
    assert [(p.ts_ns // 1000, p.ifindex, p.wire_len) for p in got] == [
        (1000, 1, 1000),
        (2000, 2, 800),
        (5000, 2, 500),
    ]


# --- the C record reader -----------------------------------------------------------------------


@NEEDS_C
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
async def test_record_blocks_equal_packets(tmp_path: Path, order: str, nano: bool) -> None:
    """Kills the arguments of ``_C.pcap_records`` (byte order, resolution, snaplen, maximum,
    program) and the RecordBlock built from its result: the C reader gives the packets the
    Python parser gives, for both byte orders and resolutions, records cut by the snaplen
    included, unfiltered and filtered."""
    frames = [
        ether(
            ipv4(
                "10.0.0.1",
                "10.0.0.2",
                udp(1000 + i, 53 if i % 2 else 80),
            )
        )
        + bytes(i)
        for i in range(50)
    ]
    recs = [(i, 7 * i, f, len(f) + (i % 3)) for i, f in enumerate(frames)]
    path = write(tmp_path, pcap_file(recs, order=order, nano=nano, snaplen=60))
    for expr in (None, "udp port 80", "greater 70"):
        fast = PcapFileSource(path, filter=expr)
        slow = PcapFileSource(path, filter=expr)
        got = await source_packets(fast, records=True)
        assert got == await source_packets(slow)
        wanted = {None: 50, "udp port 80": 25, "greater 70": sum(w >= 70 for *_, w in recs)}
        assert len(got) == wanted[expr]
        assert fast.stats().received == 50
        assert fast.progress() == (path.stat().st_size, path.stat().st_size)


@NEEDS_C
def test_c_reader_errors_name_the_offset_also_at_a_read_boundary() -> None:
    """Kills ``error_pos >= 0`` as ``> 0`` / ``>= 1`` (a corrupt record first in what was
    fed), the captured length read from the wrong field, ``_base + pos`` as ``-``, and the
    counters of ``next_records``."""
    good = pcap_file([(1, 0, RAW, 20)] * 3, linktype=101)
    dec = CaptureDecoder("c.pcap")
    dec.feed(good)
    block = dec.next_records()
    assert block is not None and not isinstance(block, list)
    assert (block.count, dec.packets, dec.records) == (3, 3, 3)
    assert dec.next_records() is None
    dec.feed(struct.pack("<IIII", 1, 0, 300_000, 40))
    with pytest.raises(CaptureFileError) as info:
        dec.next_records()
    assert str(info.value) == "c.pcap: record captured length 300000 exceeds 262144 at offset 132"
    assert dec.finished is True


# --- exact errors and warnings -----------------------------------------------------------------


def _pcapng_with(blk: bytes) -> bytes:
    return shb() + idb("<", 101) + blk


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xd4\xc3\xb2\xa1", "truncated pcap file header (4 of 24 bytes)"),
        (b"\xd4\xc3\xb2", "too short to be a capture file (3 bytes)"),
        (
            b"\x1f\x8b\x08\x00" + bytes(40),
            "a gzip file, not a capture file: decompress it first (gunzip)",
        ),
        (
            b"GET / HTTP/1.1\r\n",
            "not a pcap or pcapng file: unknown magic number 0x47455420 (expected a1b2c3d4, "
            "a1b23c4d or their byte-swapped forms for pcap, 0a0d0d0a for pcapng)",
        ),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 1, 5, 0, 0, 0, 1),
            "pcap version 1.5 is too old (2.x is required)",
        ),
        (shb(), "pcapng file without an interface description block"),
        (
            shb()[:8] + b"\xff\xff\xff\xff" + shb()[12:],
            "pcapng section header has a bad byte-order magic 0xffffffff at offset 0",
        ),
        (
            shb() + block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 2, 1, -1)),
            "pcapng version 2.1 is not supported (1.x is) at offset 28",
        ),
        (
            shb() + block("<", 1, b"\0" * 4),
            "pcapng interface description block is too short at offset 28",
        ),
        (
            _pcapng_with(block("<", 6, bytes(16))),
            "pcapng enhanced packet block is too short at offset 48",
        ),
        (_pcapng_with(block("<", 2, bytes(16))), "pcapng packet block is too short at offset 48"),
        (_pcapng_with(block("<", 3, b"")), "pcapng simple packet block is too short at offset 48"),
        (
            _pcapng_with(block("<", 6, struct.pack("<IIIII", 0, 0, 0, 9, 9) + bytes(4))),
            "packet captured length 9 overflows its block at offset 48",
        ),
        (
            _pcapng_with(block("<", 6, struct.pack("<IIIII", 3, 0, 0, 0, 0))),
            "packet on interface 3, which has no interface description at offset 48",
        ),
        (
            _pcapng_with(block("<", 4, bytes(8))[:-4] + b"\x99\0\0\0"),
            "pcapng block lengths in header and trailer differ at offset 48",
        ),
        (
            _pcapng_with(struct.pack("<II", 4, 14) + bytes(8)),
            "pcapng block of type 0x4 has a bad length 14 at offset 48",
        ),
    ],
)
def test_error_texts(tmp_path: Path, content: bytes, reason: str) -> None:
    """Kills every change of an error's text (the XX-wrapped and upper-cased strings), of
    the position an error is raised at (None, or dropped), of the slice the unknown magic
    is shown from, of the signed byte-order magic, and ``avail < 4`` as ``<= 4`` / ``< 5``;
    after the error the decoder is finished."""
    path = write(tmp_path, content, "e.cap")
    with pytest.raises(CaptureFileError) as info, read_capture(path) as cap:
        list(cap)
    assert str(info.value) == f"{path}: {reason}"
    with pytest.raises(CaptureFileError):
        dec = CaptureDecoder("again")
        dec.feed(content)
        dec.feed(b"")
        while dec.next_batch() is not None:
            pass
    assert dec.finished is True


def test_error_offsets_across_small_reads(tmp_path: Path) -> None:
    """Kills ``_base += _pos`` as ``=`` or ``-=`` in ``feed``: the offset of a corrupt record
    read after many small reads."""
    good = pcap_file([(1, 0, RAW, 20)] * 3, linktype=101)
    path = write(tmp_path, good + struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 20) + bytes(40))
    assert error_of(path, chunk_size=7) == (
        f"{path}: record captured length 2147483647 exceeds 262144 at offset 132"
    )
    ng = shb() + idb("<", 101) + epb("<", 0, 1, RAW) + block("<", 6, bytes(16))
    path = write(tmp_path, ng, "e.pcapng")
    assert error_of(path, chunk_size=5).endswith(" is too short at offset 100")


def test_the_truncation_warning_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Kills the warning's text changed, its offset as ``_base - _pos`` and ``left`` as
    ``len + pos`` (a whole file then warns too)."""
    recs = [(1, 0, RAW, 20)] * 3
    whole = write(tmp_path, pcap_file(recs, linktype=101), "whole.pcap")
    cut = write(tmp_path, pcap_file(recs, linktype=101)[:-5], "cut.pcap")
    with caplog.at_level(logging.WARNING, logger="capsvc"):
        assert sum(len(b) for b in batches(whole, chunk_size=9)) == 3
        assert caplog.records == []
        assert sum(len(b) for b in batches(cut, chunk_size=9)) == 2
    (record,) = caplog.records
    assert record.getMessage() == (
        f"{cut}: truncated last record at offset 96 (31 bytes); read 2 complete packets"
    )


def test_the_truncation_warning_offset_past_records_of_the_same_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file cut inside its last record, read in one chunk or in chunks that do not end at
    its records: the warning names the offset of the cut record, past the whole records read
    with it.

    Mutation guarded: the offset as ``_base - _pos`` (``_finish`` 17: -96 where the cut record
    is 96 bytes into the only read; small reads sized to each record leave ``_pos`` 0)."""
    cut = write(tmp_path, pcap_file([(1, 0, RAW, 20)] * 3, linktype=101)[:-5], "cut.pcap")
    for chunk_size in (1 << 18, 50):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="capsvc"):
            assert sum(len(b) for b in batches(cut, chunk_size=chunk_size)) == 2
        assert [r.getMessage() for r in caplog.records] == [
            f"{cut}: truncated last record at offset 96 (31 bytes); read 2 complete packets"
        ]


# --- the file and the source -------------------------------------------------------------------


def test_names_ownership_and_closing(tmp_path: Path) -> None:
    """Kills, in CaptureFile: a path's stream not owned (left open), a given stream's
    ``owned`` dropped, its ``name`` attribute not used (or looked up under another name), a
    ``name=`` not applied."""
    path = write(tmp_path, pcap_file([(1, 0, RAW, 20)], linktype=101))
    with read_capture(path) as cap:
        stream = cap._stream
        assert cap.name == str(path)
    assert stream.closed
    with path.open("rb") as f:
        with read_capture(f) as cap:
            assert cap.name == str(path)
        assert not f.closed
        f.seek(0)
        source = PcapFileSource(f, owned=True, name="given")
        assert source.name == "given"
        source._file.close()
        assert f.closed


async def test_progress_of_a_regular_file(tmp_path: Path) -> None:
    """Kills ``regular`` not computed in CaptureFile (the size is then 0)."""
    path = write(tmp_path, pcap_file([(1, 0, RAW, 20)] * 10, linktype=101))
    source = PcapFileSource(path)
    assert source.progress() == (24, 24 + 36 * 10)
    assert len(await source_packets(source)) == 10
    assert source.progress() == (24 + 36 * 10, 24 + 36 * 10)
