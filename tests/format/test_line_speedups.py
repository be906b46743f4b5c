"""The default line written in C (capsvc/_textline.h) against the Python formatter, byte for byte.

``capsvc.format._linefast`` writes a batch's lines in C and hands every frame it does not read
itself to ``TextFormatter.format``. Every difference is a wrong line in every text log, so the
two are compared on every packet of both corpora (through ``write_records`` and
``write_batch``), on every truncation of frames of each link type C reads, on generated
frames and batches, in several time zones (one across its DST changes), with odd Packet fields
and with formatters C must leave alone. ``handed`` (the frames C gave to Python) is checked
too, so a C path that hands everything over cannot pass for a fast one.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from _corpora import CORPORA, corpus_files, packets_of
from _helpers import ether, icmp, icmp6, ipv4, ipv6, null, sll, sll2, tcp, udp
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc import Direction, LinkType, Packet
from capsvc._accel import speedups
from capsvc._records import RecordBlock
from capsvc.format import _linefast
from capsvc.format._line import TextFormatter
from capsvc.sinks._text import TextWriter

ROOT = Path(__file__).resolve().parents[2]
IN, OUT, UNK = Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN
#: 2026-03-08 07:00:00 UTC: 2 AM EST becomes 3 AM EDT in New York.
DST_START = 1772953200
#: 2026-11-01 06:00:00 UTC: 2 AM EDT becomes 1 AM EST.
DST_END = 1793512800
T0 = (DST_START - 3600) * 10**9 + 123_456_789
#: The link types C reads, and how a frame of each wraps an IP packet.
WRAP: dict[LinkType, Callable[[bytes], bytes]] = {
    LinkType.ETHERNET: lambda ip: ether(ip),
    LinkType.LINUX_SLL: lambda ip: sll(ip, pkttype=4),
    LinkType.LINUX_SLL2: lambda ip: sll2(ip),
    LinkType.RAW: lambda ip: ip,
    LinkType.IPV4: lambda ip: ip,
    LinkType.IPV6: lambda ip: ip,
    LinkType.NULL: lambda ip: null(ip),
    LinkType.LOOP: lambda ip: null(ip, big_endian=True),
}
#: The outgoing byte of a record (capsvc/_speedups.c) for each direction.
OUTGOING: dict[int, int] = {IN: 0, OUT: 1, UNK: 2}
RECORD = struct.Struct("=qIIiB3x")


@pytest.fixture(scope="module", autouse=True)
def fast() -> ModuleType:
    module = speedups()
    if module is None:
        if (
            not os.environ.get("CAPSVC_NO_SPEEDUPS")
            and subprocess.run(
                ["sh", "-c", "command -v cc"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            pytest.fail("a C compiler is here, yet capsvc._speedups was not built")
        pytest.skip("capsvc._speedups is not built (no C compiler)")
    return module


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The time zone the test sets stays in this test."""
    yield
    monkeypatch.undo()
    time.tzset()


def reference(linktype: int, packets: list[Packet]) -> str:
    """What the Python formatter writes: each packet's line and a newline."""
    fmt = TextFormatter(linktype)
    return "".join(fmt.format(p[0], p[1], p[2], p[3]) + "\n" for p in packets)


def block_of(frames: list[tuple[int, bytes, int, int]], parts: int = 1) -> RecordBlock:
    """A RecordBlock of (ts, data, wire, outgoing) records, spread over ``parts`` parts."""
    records = [RECORD.pack(ts, len(data), wire, 7, way) + data for ts, data, wire, way in frames]
    size = max(1, -(-len(records) // parts))
    chunks = [b"".join(records[i : i + size]) for i in range(0, len(records), size)]
    return RecordBlock(chunks, len(frames), sum(f[2] for f in frames))


def records_from(packets: list[Packet]) -> RecordBlock:
    """The packets as records; a direction that is no Direction is an unknown outgoing byte."""
    return block_of([(p[0], p[1], p[2], OUTGOING.get(p[3], 5)) for p in packets], parts=2)


def check(linktype: int, packets: list[Packet]) -> int:
    """C and Python agree on ``packets`` as a list and as records, directly and through the
    writer's two methods; returns how many frames C wrote itself."""
    expected = reference(linktype, packets)
    done = _linefast.lines_of_packets(TextFormatter(linktype), packets)
    if linktype not in WRAP:  # a link type C does not read: all Python's
        assert done is None
        done = (expected, len(packets))
    assert done is not None
    assert done[0] == expected
    out = io.StringIO()
    TextWriter(out, linktype=linktype).write_batch(packets)
    assert out.getvalue() == expected
    if all(0 <= p[0] < 2**63 and 0 <= p[2] < 2**32 for p in packets):
        block = records_from(packets)
        by_records = reference(linktype, block.packets())
        records = _linefast.lines_of_records(TextFormatter(linktype), block)
        assert (records is None) == (linktype not in WRAP)
        assert records is None or records[0] == by_records
        out = io.StringIO()
        TextWriter(out, linktype=linktype).write_records(block)
        assert out.getvalue() == by_records
    return len(packets) - done[1]


# -- the corpora ------------------------------------------------------------------------------


def test_every_corpus_packet_of_every_link_type() -> None:
    """Mutation guarded: any field of any line C writes differently (the corpus holds real
    traffic of Ethernet, cooked, raw IP and loopback captures among 20 other link types)."""
    written = total = 0
    linktypes: set[int] = set()
    for folder in CORPORA:
        for path in corpus_files(folder):
            groups: dict[int, list[Packet]] = {}
            for linktype, packet in packets_of(path):
                groups.setdefault(linktype, []).append(packet)
            for linktype, packets in groups.items():
                written += check(linktype, packets)
                total += len(packets)
                linktypes.add(linktype)
    assert total > 4000 and len(linktypes) > 15
    assert written > 700  # C wrote the plain lines itself


def test_a_capture_file_read_by_the_cli_is_the_same_text(tmp_path: Path) -> None:
    """``capsvc read`` (records read and written in C) against the same command without the
    speed-ups, on the benchmark's two traffic profiles and a corpus file, in two time zones."""
    sys.path.insert(0, str(ROOT / "bench"))
    from gen_pcap import generate

    corpus = ROOT.parent / "shared" / "pcaps"
    files = [corpus / name for name in ("resp_1_benchmark.pcap", "ssh.pcap", "eapon1.pcap")]
    files = [f for f in files if f.exists()]
    for profile in ("mixed", "heavy"):
        files.append(tmp_path / f"{profile}.pcap")
        generate(files[-1], count=6000, seed=3, profile=profile)
    for path in files:
        for zone in ("UTC", "Asia/Kolkata"):
            texts = []
            for off in ("", "1"):
                env = {**os.environ, "TZ": zone, "CAPSVC_NO_SPEEDUPS": off}
                done = subprocess.run(
                    [sys.executable, "-m", "capsvc.cli", "read", "-r", str(path)],
                    capture_output=True,
                    env=env,
                    cwd=ROOT,
                    check=True,
                )
                texts.append(done.stdout)
            assert texts[0] == texts[1], (path.name, zone)
            assert texts[0].count(b"\n") >= 50


# -- frames of each link type, whole and cut -------------------------------------------------

HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def plain_frames(linktype: LinkType) -> list[bytes]:
    """Frames whose whole line C writes, of ``linktype``."""
    wrap = WRAP[linktype]
    v4 = [
        ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443, b"\x17\x03\x03" + bytes(40), flags="PA")),
        ipv4("10.0.0.1", "10.0.0.2", tcp(1, 65535, flags="SAFRPUEC")),
        ipv4("192.168.100.200", "1.2.3.4", udp(5000, 4096, b"capsvc" * 3)),
        ipv4("10.0.0.1", "10.0.0.2", udp(40000, 443, b"\x40short-header")),
        ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000, b"\xc0\x00\x00\x00\x07" + bytes(80))),
        ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000, b"\xc0\x00\x00\x00\x01\x15" + bytes(80))),
        ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000, b"\x80\x00\x00\x00\x01\x00\x00" + bytes(60))),
        ipv4("10.0.0.1", "10.0.0.2", icmp(8, 0, 7, 9, b"ping")),
        ipv4("10.0.0.1", "10.0.0.2", icmp(14, 3, 65535, 0)),
        ipv4("10.0.0.1", "10.0.0.2", tcp(22, 5000, b"x"), options=b"\x94\x04\0\0"),
        ipv4("10.0.0.1", "10.0.0.2", tcp(5000, 6000, b"\0" * 30), total_length=0),
    ]
    v6 = [
        ipv6("fd00::1", "fd00:1::2", tcp(40000, 80, b"\x00data", flags="A")),
        ipv6("2001:db8::1", "ff02::1:ff00:1", udp(40000, 9999, b"x" * 9)),
        ipv6("::1", "::ffff:10.0.0.1", icmp6(129, 0, 3, 4, b"pong")),
        ipv6("fe80::1", "fe80::2", udp(9, 9)),
    ]
    if linktype == LinkType.IPV4:
        return [wrap(p) for p in v4]
    if linktype == LinkType.IPV6:
        return [wrap(p) for p in v6]
    frames = [wrap(p) for p in v4 + v6]
    if linktype == LinkType.ETHERNET:
        frames.append(ether(v4[0], vlans=(5,)))
        frames.append(ether(v6[0], vlans=(5, 7)))
    return frames


def handed_frames(linktype: LinkType) -> list[bytes]:
    """Frames whose line Python writes (annotated payloads, fragments, other protocols)."""
    wrap = WRAP[linktype]
    frames = [
        ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, HTTP, flags="PA")),
        ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 5000, b"SSH-2.0-x\r\n", flags="PA")),
        ipv4("10.0.0.1", "10.0.0.2", tcp(179, 5000, b"\xff" * 19, flags="PA")),
        ipv4("10.0.0.1", "10.0.0.2", udp(40000, 53, bytes(12))),
        ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000, b"\xc0\x00\x00\x00\x01" + bytes(30))),
        ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000, b"\xc0\x00\x00\x00\x00" + bytes(30))),
        ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000)),
        ipv4("10.0.0.1", "10.0.0.2", udp(40000, 123, bytes(48))),
        ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"frag"), flags_frag=0x2001),
        ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"frag"), flags_frag=0x1000),
        ipv4("10.0.0.1", "10.0.0.2", icmp(3, 1, 0, 0, bytes(28))),
        ipv4("10.0.0.1", "10.0.0.2", b"\0" * 8, proto=47),
        ipv6("fd00::1", "fd00::2", udp(1, 2), ext=((0, b"\0" * 6),)),
        ipv6("fd00::1", "fd00::2", icmp6(135, 0, 0, 0, bytes(16))),
    ]
    if linktype == LinkType.IPV4:
        frames = [f for f in frames if f[0] >> 4 == 4]
    if linktype == LinkType.IPV6:
        frames = [f for f in frames if f[0] >> 4 == 6]
    return [wrap(f) for f in frames]


@pytest.mark.parametrize("linktype", list(WRAP), ids=lambda lt: lt.name)
def test_plain_frames_are_written_in_c(linktype: LinkType) -> None:
    """Mutation guarded: a C check that hands a plain frame to Python (``handed``), and every
    field C writes (tags of each direction, brackets, flags, lengths, ICMP ids)."""
    frames = plain_frames(linktype)
    packets = [
        Packet(T0 + i * 333_333_333, f, len(f), (IN, OUT, UNK)[i % 3], 0)
        for i, f in enumerate(frames)
    ]
    assert check(linktype, packets) == len(packets)
    odd = [p._replace(direction=7) for p in packets]  # type: ignore[arg-type]
    assert check(linktype, odd) == len(packets)


@pytest.mark.parametrize("linktype", list(WRAP), ids=lambda lt: lt.name)
def test_annotated_and_unusual_frames_are_the_formatters(linktype: LinkType) -> None:
    """Mutation guarded: an annotation's port or first byte missing from the C tables writes a
    plain line where Python writes the annotation."""
    frames = handed_frames(linktype)
    packets = [Packet(T0, f, len(f), IN, 0) for f in frames]
    assert check(linktype, packets) == 0


def test_quic_long_headers_the_formatter_cannot_read_are_plain() -> None:
    """Long headers ``quic_header`` refuses get the plain line from C, at each limit it checks:
    a connection ID longer than 20, one running to the end, and a payload the capture cut
    after 64 bytes (the formatter marks only a shorter cut). Mutation guarded: each limit off
    in C, which hands these to Python (the same text, but not written in C)."""
    v1 = b"\xc0\x00\x00\x00\x01"
    payloads = [
        v1 + b"\x04" + bytes(4) + b"\x15" + bytes(40),  # source connection ID of 21
        v1 + b"\x15" + bytes(40),  # destination connection ID of 21
        v1 + b"\x03" + bytes(3),  # the destination connection ID ends the payload
        b"\xc0\x00\x00\x00\x07" + bytes(95),  # unknown version, cut at 70 of 100 below
    ]
    packets = []
    for payload in payloads:
        frame = ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000, payload))
        packets.append(Packet(T0, frame[:98], len(frame), IN, 0))
    assert check(LinkType.RAW, packets) == len(packets)
    assert packets[-1][1] != ipv4("10.0.0.1", "10.0.0.2", udp(443, 40000, payloads[-1]))


@pytest.mark.parametrize("linktype", list(WRAP), ids=lambda lt: lt.name)
def test_every_truncation(linktype: LinkType) -> None:
    """Mutation guarded: a bounds check off by one in C writes a line where Python marks the
    frame as cut (``[|tcp]``, ``???``), or reads past the captured bytes."""
    for frame in plain_frames(linktype) + handed_frames(linktype)[:4]:
        packets = [Packet(T0, frame[:cut], len(frame), IN, 0) for cut in range(len(frame) + 1)]
        check(linktype, packets)
        check(linktype, [p._replace(wire_len=0) for p in packets])


ASAN_RUN = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("capsvc._speedups", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["capsvc._speedups"] = module
sys.path[:0] = [sys.argv[2], sys.argv[2] + "/format"]
from capsvc import Direction, Packet
from capsvc.format import _linefast
from capsvc.format._line import TextFormatter
from test_line_speedups import WRAP, block_of, handed_frames, plain_frames
assert _linefast._C is module
lines = 0
for linktype in WRAP:
    for frame in plain_frames(linktype) + handed_frames(linktype):
        cuts = [frame[:cut] for cut in range(len(frame) + 1)]
        packets = [Packet(1, cut, len(frame), Direction.INBOUND, 0) for cut in cuts]
        lines += _linefast.lines_of_packets(TextFormatter(linktype), packets)[0].count("\\n")
        block = block_of([(1, cut, len(frame), 0) for cut in cuts], parts=3)
        lines += _linefast.lines_of_records(TextFormatter(linktype), block)[0].count("\\n")
print(lines)
"""


def test_no_read_past_a_frame_under_address_sanitizer(tmp_path: Path) -> None:
    """Every truncation of every frame above, through C built with AddressSanitizer, each
    frame its own heap block (PYTHONMALLOC=malloc). Mutation guarded: a header field read
    before the check that it was captured (the ports once were)."""
    libasan = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not libasan.startswith("/"):
        pytest.skip("no gcc with AddressSanitizer here")
    module = tmp_path / "_speedups_asan.so"
    include = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    source = str(ROOT / "capsvc" / "_speedups.c")
    flags = ["-O1", "-g", "-fsanitize=address", "-shared", "-fPIC", f"-I{include}"]
    subprocess.run(["gcc", *flags, source, "-o", str(module)], check=True)
    env = {
        **os.environ,
        "LD_PRELOAD": libasan,
        "ASAN_OPTIONS": "detect_leaks=0",
        "PYTHONMALLOC": "malloc",
        "CAPSVC_NO_SPEEDUPS": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", ASAN_RUN, str(module), str(ROOT / "tests")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) > 5000


def test_ipv4_and_ipv6_header_fields_around_their_limits() -> None:
    """IP total lengths of 0 (offload), below and above the header, IHL 0-15, and TCP data
    offsets 0-15 and UDP lengths around the payload's."""
    base4 = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, b"abcdef", flags="PA"))
    base6 = ipv6("fd00::1", "fd00::2", udp(1, 2, b"abcdef"))
    packets = []
    for total in (0, 1, 19, 20, 21, 39, 40, 46, 47, 1500, 65535):
        frame = base4[:2] + total.to_bytes(2, "big") + base4[4:]
        packets += [Packet(T0, frame, wire, IN, 0) for wire in (0, len(frame), 9000)]
    for ihl in range(16):
        packets.append(Packet(T0, bytes([0x40 | ihl]) + base4[1:], 60, IN, 0))
    for offset in range(16):
        frame = base4[:32] + bytes([offset << 4]) + base4[33:]
        packets.append(Packet(T0, frame, len(frame), IN, 0))
    for plen in (0, 7, 8, 14, 15, 100):
        frame = base6[:4] + plen.to_bytes(2, "big") + base6[6:]
        packets += [Packet(T0, frame, wire, IN, 0) for wire in (0, 9000)]
    for ulen in (0, 7, 8, 13, 14, 15, 65535):
        frame = base6[:44] + ulen.to_bytes(2, "big") + base6[46:]
        packets.append(Packet(T0, frame, len(frame), IN, 0))
    check(LinkType.RAW, packets)


# -- generated frames -------------------------------------------------------------------------

PORTS = st.sampled_from([53, 80, 123, 179, 443, 4789, 6081, 67, 546, 5000, 0, 65535]) | st.integers(
    0, 65535
)
FIRST = st.sampled_from([0x16, 0x15, 0x17, ord("G"), ord("S"), ord("P"), 0x40, 0x80, 0xC0, 0])


@st.composite
def quic_heads(draw: st.DrawFn) -> bytes:
    """The start of a QUIC long header (or what looks like one): first byte, version, the
    connection ID lengths around their limit of 20."""
    first = draw(st.sampled_from([0x80, 0xC0, 0xC3, 0xD0, 0xE0, 0xF0, 0x40]))
    version = draw(st.sampled_from([0, 1, 0x6B3343CF, 2, 0xFF00001D]))
    dlen, slen = draw(st.sampled_from([0, 8, 20, 21])), draw(st.sampled_from([0, 4, 20, 21]))
    return (
        struct.pack("!BIB", first, version, dlen)
        + bytes(range(dlen))
        + bytes([slen])
        + bytes(slen)
        + draw(st.binary(max_size=4))
    )


@st.composite
def transports(draw: st.DrawFn, proto: int) -> bytes:
    payload = draw(st.binary(max_size=48))
    if payload and draw(st.booleans()):
        payload = bytes([draw(FIRST)]) + payload[1:]
    sport, dport = draw(PORTS), draw(PORTS)
    if proto == 6:
        offset = draw(st.sampled_from([5, 5, 5, 6, 8, 0, 4, 15]))
        head = struct.pack(
            "!HHIIBBHHH", sport, dport, 1, 2, offset << 4, draw(st.integers(0, 255)), 0, 0, 0
        )
        return head + bytes(max(0, offset * 4 - 20)) + payload
    if proto == 17:
        if draw(st.integers(0, 3)) == 0:
            payload = draw(quic_heads()) + payload
        length = draw(st.sampled_from([8 + len(payload), 0, 8, 7, 65535]) | st.integers(0, 65535))
        return struct.pack("!HHHH", sport, dport, length, 0) + payload
    if proto in (1, 58):
        kind = draw(st.sampled_from([0, 8, 13, 3, 5, 11, 128, 129, 135, 2]) | st.integers(0, 255))
        code = draw(st.sampled_from([0, 0, 1, 4]))
        return struct.pack("!BBHHH", kind, code, 0, draw(PORTS), draw(PORTS)) + payload
    return payload


@st.composite
def ip_packets(draw: st.DrawFn) -> bytes:
    proto = draw(st.sampled_from([6, 6, 17, 17, 1, 58, 47, 0, 44, 60]))
    body = draw(transports(proto))
    addr4 = st.binary(min_size=4, max_size=4)
    if draw(st.booleans()):
        ihl = draw(st.sampled_from([5, 5, 5, 6, 15, 4, 0]))
        total = draw(st.sampled_from([ihl * 4 + len(body), 0, 20, 65535]) | st.integers(0, 65535))
        frag = draw(st.sampled_from([0, 0x4000, 0x2000, 0x0001, 0x1000, 0x1FFF]))
        head = struct.pack("!BBHHHBB2s", 0x40 | ihl, 0, total, 7, frag, 64, proto, b"\0\0")
        return head + draw(addr4) + draw(addr4) + bytes(max(0, ihl * 4 - 20)) + body
    addr6 = st.sampled_from(
        [bytes(16), bytes(15) + b"\1", b"\xfe\x80" + bytes(13) + b"\1"]
    ) | st.binary(min_size=16, max_size=16)
    plen = draw(st.sampled_from([len(body), 0, 8, 65535]) | st.integers(0, 65535))
    head = struct.pack("!IHBB", 0x60000000, plen, proto, 64)
    return head + draw(addr6) + draw(addr6) + body


@st.composite
def linked(draw: st.DrawFn, linktype: LinkType) -> bytes:
    ip = draw(ip_packets())
    version = ip[0] >> 4
    if draw(st.integers(0, 15)) == 0:
        ip = bytes([draw(st.integers(0, 255))]) + ip[1:]
    if linktype == LinkType.ETHERNET:
        tags = b"".join(
            struct.pack("!HH", draw(st.sampled_from([0x8100, 0x88A8, 0x9100])), 5)
            for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2])))
        )
        ethertype = draw(
            st.sampled_from([0x0800 if version == 4 else 0x86DD, 0x0800, 0x86DD, 0x0806, 0x0100])
        )
        return bytes(12) + tags + ethertype.to_bytes(2, "big") + ip
    if linktype in (LinkType.LINUX_SLL, LinkType.LINUX_SLL2):
        protocol = draw(st.sampled_from([0x0800 if version == 4 else 0x86DD, 0x86DD, 0x0004]))
        pkttype = draw(st.sampled_from([0, 4, 1, 3]))
        if linktype == LinkType.LINUX_SLL:
            return struct.pack("!HHH8sH", pkttype, 1, 6, bytes(8), protocol) + ip
        return struct.pack("!HHIHBB8s", protocol, 0, 3, 1, pkttype, 6, bytes(8)) + ip
    if linktype in (LinkType.NULL, LinkType.LOOP):
        family = draw(st.sampled_from([2, 10, 24, 28, 30, 7]))
        order = "<I" if linktype == LinkType.NULL and draw(st.booleans()) else ">I"
        return struct.pack(order, family) + ip
    return ip


@st.composite
def batches(draw: st.DrawFn) -> tuple[LinkType, list[Packet]]:
    linktype = draw(st.sampled_from(list(WRAP)))
    packets = []
    ts = draw(
        st.sampled_from([T0, DST_START * 10**9, DST_END * 10**9 - 1]) | st.integers(0, 2**63 - 1)
    )
    for _ in range(draw(st.integers(1, 6))):
        frame = draw(linked(linktype))
        if draw(st.booleans()):
            frame = frame[: draw(st.integers(0, len(frame)))]
        wire = draw(st.sampled_from([len(frame), 0, 9000]) | st.integers(0, 2**32 - 1))
        direction = draw(st.sampled_from([IN, OUT, UNK]))
        ts += draw(st.sampled_from([0, 1, 999, 10**9, 3600 * 10**9]))
        packets.append(Packet(min(ts, 2**63 - 1), frame, wire, direction, 0))
    return linktype, packets


@settings(max_examples=1500, deadline=None)
@given(batches())
def test_generated_frames(batch: tuple[LinkType, list[Packet]]) -> None:
    """Mutation guarded: any decision of C (which frames are plain, every length rule) that
    differs from the Python formatter's on some frame."""
    check(*batch)


# -- the clock --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe", "Etc/GMT+5"]
)
def test_local_time_in_several_zones(zone: str, tz: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation guarded: the clock not brought to a frame's second, UTC instead of local time,
    the microseconds rounded instead of cut. New York's DST changes are inside the range."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"x")))
    stamps = []
    for change in (DST_START, DST_END):
        for step in range(-16, 17):
            stamps.append((change + step * 450) * 10**9 + step * 999_999 % 10**9)
    stamps += [0, 999, 10**9 - 1, 2**31 * 10**9, 2**63 - 1, DST_END * 10**9 - 1]
    packets = [Packet(ts, frame, len(frame), IN, 0) for ts in stamps]
    assert check(LinkType.ETHERNET, packets) == len(packets)
    text = TextFormatter(LinkType.ETHERNET).clock(DST_START * 10**9)
    done = _linefast.lines_of_packets(TextFormatter(LinkType.ETHERNET), packets[16:17])
    assert done is not None and done[0][:15] == text


def test_the_clock_is_the_formatters_cache(tz: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """C reads and updates the formatter's own per-second cache, as ``format`` does: a time
    zone changed with a second cached keeps that second's text in both, and the next second
    is read in the new zone. Mutation guarded: a cache of C's own, or none."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    frame = ipv4("10.0.0.1", "10.0.0.2", udp(1, 2))
    packets = [Packet(T0 + i * 400_000_000, frame, len(frame), IN, 0) for i in range(4)]
    python, c = TextFormatter(), TextFormatter()
    python.format(T0, frame, len(frame), IN)
    c.format(T0, frame, len(frame), IN)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    expected = "".join(python.format(*p[:4]) + "\n" for p in packets)
    done = _linefast.lines_of_packets(c, packets)
    assert done is not None and done[0] == expected
    assert expected.splitlines()[0].startswith("06:00:00.123456 ")  # the cached, UTC second
    assert expected.splitlines()[-1].startswith("11:30:01.323456 ")  # the next, in Kolkata
    assert (c._sec, c._clock) == (python._sec, python._clock)


# -- odd inputs, and formatters C leaves alone -----------------------------------------------


def test_odd_packet_fields_are_the_formatters() -> None:
    """Fields C does not read itself (a huge or negative time, a wire length past 64 bits, a
    direction that is no Direction, data that is not bytes) go to Python with the objects as
    they are."""
    frame = ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"abc"))
    cut = frame[:22]
    packets = [
        Packet(-1, frame, len(frame), IN, 0),
        Packet(-(10**9) - 1, frame, len(frame), IN, 0),
        Packet(2**70, frame, len(frame), IN, 0),
        Packet(T0, frame, 2**70, IN, 0),
        Packet(T0, cut, -5, IN, 0),
        Packet(T0, cut, 2**70, IN, 0),
        Packet(True, frame, len(frame), IN, 0),
        Packet(T0, frame, len(frame), 9, 0),  # type: ignore[arg-type]
        Packet(T0, frame, len(frame), -1, 0),  # type: ignore[arg-type]
        Packet(T0, frame, len(frame), 1, 0),  # type: ignore[arg-type]
        Packet(T0, frame, len(frame), True, 0),  # type: ignore[arg-type]
    ]
    written = check(LinkType.RAW, packets)
    assert written == 3  # direction 9, -1 and the plain int 1
    done = _linefast.lines_of_packets(TextFormatter(), [Packet(T0, udp(1, 2), 8, IN, 0)])
    assert done is not None and done[1] == 1  # a bytes subclass (udp's) is Python's


def test_a_batch_of_other_than_packet_tuples_is_formatted_in_python() -> None:
    frame = ipv4("10.0.0.1", "10.0.0.2", udp(1, 2))

    class Odd(tuple[int, ...]):
        def __getitem__(self, i: object) -> object:  # type: ignore[override]
            return [T0, frame, len(frame), IN][i]  # type: ignore[call-overload]

    for batch in ([[T0, frame, len(frame), IN]], [Odd(range(5))], [(T0, frame, len(frame))]):
        assert _linefast.lines_of_packets(TextFormatter(), batch) is None  # type: ignore[arg-type]
    out = io.StringIO()
    TextWriter(out).write_batch([[T0, frame, len(frame), IN]])  # type: ignore[list-item]
    assert out.getvalue() == TextFormatter().format(T0, frame, len(frame), IN) + "\n"


def test_text_the_fallback_gives_is_kept_as_it_is(fast: ModuleType) -> None:
    """Lines of Python's that are not ASCII (or not lines at all) are put in as they are."""
    frames = [
        ipv4("10.0.0.1", "10.0.0.2", udp(1, 2)),
        b"\x45",
        ipv4("10.0.0.1", "10.0.0.3", udp(1, 2)),
    ]
    packets = [Packet(T0, f, len(f), IN, 0) for f in frames]
    fmt = TextFormatter()
    text, handed = fast.text_packets(packets, 4, 0, fmt, lambda *a: "naïve ☃", Direction)
    lines = text.split("\n")
    assert handed == 1 and lines[1] == "naïve ☃" and lines[3] == ""
    assert lines[0] == fmt.format(*packets[0][:4]) and lines[2] == fmt.format(*packets[2][:4])
    block = records_from(packets)
    assert (
        fast.text_records(block.parts, 4, 0, fmt, lambda *a: "x", IN, OUT, UNK)[0].count("\nx\n")
        == 1
    )
    with pytest.raises(TypeError):
        fast.text_packets(packets, 4, 0, fmt, lambda *a: b"bytes", Direction)
    with pytest.raises(ZeroDivisionError):
        fast.text_packets(packets, 4, 0, fmt, lambda *a: 1 / 0, Direction)
    with pytest.raises(ValueError):
        fast.text_packets(packets, 99, 0, fmt, fmt.format, Direction)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TextFormatter(LinkType.ETHERNET, verbose=True),
        lambda: TextFormatter(LinkType.ETHERNET, ascii=True),
        lambda: TextFormatter(LinkType.LINUX_SLL2, interfaces={1: "eth0"}),
        lambda: TextFormatter(LinkType.SLIP),
        lambda: TextFormatter(LinkType.IEEE802_11),
        lambda: type("Mine", (TextFormatter,), {})(LinkType.ETHERNET),
    ],
    ids=["verbose", "ascii", "interfaces", "slip", "wlan", "subclass"],
)
def test_formatters_c_cannot_stand_in_for(make: object) -> None:
    """Mutation guarded: C writing the default line for a verbose, ASCII or interface-naming
    formatter, a subclass, or a link type it does not read."""
    fmt = make()  # type: ignore[operator]
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, b"data", flags="PA")))
    packets = [Packet(T0, frame, len(frame), IN, 0)]
    assert _linefast.lines_of_packets(fmt, packets) is None
    assert _linefast.lines_of_records(fmt, records_from(packets)) is None
    out = io.StringIO()
    writer = TextWriter(out, linktype=fmt.linktype)
    writer.formatter = fmt
    writer.write_records(records_from(packets))
    assert out.getvalue() == make().format(*packets[0][:4]) + "\n"  # type: ignore[operator]


def test_mixed_link_types_of_a_pcapng_source_are_python() -> None:
    """Frames of interfaces with link types of their own are formatted per interface."""
    eth = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2)))
    raw = ipv4("10.0.0.3", "10.0.0.4", udp(3, 4))
    packets = [Packet(T0, eth, len(eth), IN, 0), Packet(T0, raw, len(raw), IN, 1)]
    out = io.StringIO()
    TextWriter(out, linktype=LinkType.ETHERNET, linktypes={0: 1, 1: 101}).write_records(
        block_of([(T0, eth, len(eth), 0), (T0, raw, len(raw), 0)])
    )
    lines = out.getvalue().splitlines()
    assert "10.0.0.1:1 > 10.0.0.2:2" in lines[0]
    assert len(lines) == 2 and len(packets) == 2


# -- without the extension --------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [
        {"CAPSVC_NO_SPEEDUPS": "1"},
        {"PRELUDE": "import sys; sys.modules['capsvc._speedups'] = None"},  # not built
    ],
    ids=["no-speedups-set", "not-built"],
)
def test_without_the_extension_python_writes_every_line(how: dict[str, str]) -> None:
    """Mutation guarded: a C module used though disabled, or an import failing without it."""
    prelude = how.pop("PRELUDE", "")
    code = (
        f"{prelude}\n"
        "import io\n"
        "from capsvc import Packet, Direction\n"
        "from capsvc.format import _linefast\n"
        "from capsvc.format._line import TextFormatter\n"
        "from capsvc.sinks._text import TextWriter\n"
        "frame = bytes.fromhex('450000200001000040110000' '0a0000010a000002'\n"
        "                      '00010002000c0000' '61626364')\n"
        "p = [Packet(0, frame, len(frame), Direction.INBOUND, 0)]\n"
        "out = io.StringIO(); TextWriter(out).write_batch(p)\n"
        "print(_linefast._C is None, _linefast.available(),"
        " _linefast.lines_of_packets(TextFormatter(), p))\n"
        "print(out.getvalue(), end='')\n"
    )
    env = {**os.environ, "TZ": "UTC", "CAPSVC_NO_SPEEDUPS": "", **how}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "True False None",
        "00:00:00.000000 [IN   UDP] 10.0.0.1:1 > 10.0.0.2:2 length 4",
    ]
