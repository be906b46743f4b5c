"""PcapNgWriter: golden SHB/IDB/EPB bytes, lazy header, interfaces, and real tshark reading it."""

from __future__ import annotations

import io
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest
from _helpers import CountingStream, ether, icmp, ipv4, ipv6, tcp, udp

from capsvc import Direction, LinkType, Packet
from capsvc.sinks._pcapng import (
    PcapNgWriter,
    encode_epbs,
    interface_description_block,
    section_header_block,
)

TS = 1_700_000_000_123_456_789  # 0x17979cfe3d85cd15

SHB_HEX = "0a0d0d0a" + "1c000000" + "4d3c2b1a" + "0100" + "0000" + "ff" * 8 + "1c000000"
TSRESOL_9 = "0900" + "0100" + "09000000"


def blocks(data: bytes) -> list[tuple[int, bytes]]:
    """Split a little-endian pcapng byte string into (block type, whole block)."""
    out = []
    pos = 0
    while pos < len(data):
        btype = int.from_bytes(data[pos : pos + 4], "little")
        blen = int.from_bytes(data[pos + 4 : pos + 8], "little")
        assert blen % 4 == 0 and data[pos + blen - 4 : pos + blen] == data[pos + 4 : pos + 8]
        out.append((btype, data[pos : pos + blen]))
        pos += blen
    assert pos == len(data)
    return out


def test_section_header_golden() -> None:
    assert section_header_block().hex() == SHB_HEX


def test_interface_description_golden_with_name() -> None:
    idb = interface_description_block(LinkType.ETHERNET, 0, "eth0")
    assert (
        idb.hex()
        == (
            "01000000" + "28000000" + "0100" + "0000" + "00000400"  # snaplen 0 -> 262144
            "0200" + "0400" + "65746830" + TSRESOL_9 + "00000000" + "28000000"
        )
    )


def test_interface_description_golden_without_name() -> None:
    idb = interface_description_block(LinkType.RAW, 100)
    assert idb.hex() == (
        "01000000" + "20000000" + "6500" + "0000" + "64000000" + TSRESOL_9 + "00000000" + "20000000"
    )


def test_enhanced_packet_golden() -> None:
    body = encode_epbs(
        [
            Packet(TS, b"\x01\x02\x03", 60, Direction.INBOUND, 0),
            Packet(TS, b"\x01\x02\x03\x04\x05", 5, Direction.UNKNOWN, 7),
            Packet(TS, b"\x0a\x0b", 2, Direction.OUTBOUND, 0),
        ],
        4,
        {0: 0, 7: 1},
    )
    ts = "fe9c9717" + "15cd853d"
    assert (
        body.hex()
        == (
            # inbound: data padded to 4, epb_flags 1, opt_endofopt
            "06000000" + "30000000" + "00000000" + ts + "03000000" + "3c000000" + "01020300"
            "0200"
            + "0400"
            + "01000000"
            + "00000000"
            + "30000000"
            # unknown direction: no options; cut to snaplen 4, original length kept
            + "06000000"
            + "24000000"
            + "01000000"
            + ts
            + "04000000"
            + "05000000"
            + "01020304"
            "24000000"
            # outbound: epb_flags 2
             + "06000000" + "30000000" + "00000000" + ts + "02000000" + "02000000" + "0a0b0000"
            "0200" + "0400" + "02000000" + "00000000" + "30000000"
        )
    )


def test_first_packet_brings_shb_and_idb() -> None:
    out = io.BytesIO()
    w = PcapNgWriter(out, 0, LinkType.RAW, interface_name="tun0")
    w.write_packet(TS, b"\x45" + b"\0" * 19, 1400, Direction.OUTBOUND)
    data = out.getvalue()
    assert data.startswith(bytes.fromhex(SHB_HEX) + interface_description_block(101, 0, "tun0"))
    kinds = [btype for btype, _ in blocks(data)]
    assert kinds == [0x0A0D0D0A, 1, 6]


def test_empty_capture_is_a_valid_file_and_stream_stays_open(tmp_path: Path) -> None:
    """No packet still gives a readable pcapng file: the section header and one interface."""
    out = CountingStream()
    w = PcapNgWriter(out, 0, LinkType.ETHERNET)
    w.write_batch([])
    w.close()
    assert out.writes == 1
    assert not out.closed
    path = tmp_path / "empty.pcapng"
    path.write_bytes(out.getvalue())
    done = subprocess.run(["tshark", "-r", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    info = subprocess.run(["capinfos", "-E", str(path)], capture_output=True, text=True)
    assert "Ethernet" in info.stdout, info.stdout


def test_header_and_idb_retried_after_failed_write() -> None:
    out = CountingStream(fail=1, error=BrokenPipeError(32, "Broken pipe"))
    w = PcapNgWriter(out, 0, LinkType.RAW)
    with pytest.raises(OSError):
        w.write_packet(TS, b"\x45" + b"\0" * 19)
    w.write_packet(TS + 1, b"\x45" + b"\1" * 19)
    kinds = [btype for btype, _ in blocks(out.getvalue())]
    assert kinds == [0x0A0D0D0A, 1, 6]


def test_one_write_per_batch_and_one_idb_per_interface() -> None:
    lo = socket.if_nametoindex("lo")
    out = CountingStream()
    w = PcapNgWriter(out, 0, LinkType.RAW, interface_name="tun0")
    pkt = b"\x45" + b"\0" * 39
    w.write_batch([Packet(TS + i, pkt, 40, Direction.UNKNOWN, i % 2 * lo) for i in range(100)])
    assert out.writes == 1
    w.write_batch([Packet(TS + i, pkt, 40, Direction.UNKNOWN, 0) for i in range(10)])
    assert out.writes == 2
    idbs = [b for t, b in blocks(out.getvalue()) if t == 1]
    assert idbs == [
        interface_description_block(LinkType.RAW, 0, "tun0"),
        interface_description_block(LinkType.RAW, 0, "lo"),
    ]


def test_unknown_ifindex_falls_back_to_interface_name() -> None:
    out = io.BytesIO()
    w = PcapNgWriter(out, 0, LinkType.RAW, interface_name="tun9")
    w.write_batch([Packet(TS, b"\x45" + b"\0" * 19, 20, Direction.UNKNOWN, 987654)])
    idbs = [b for t, b in blocks(out.getvalue()) if t == 1]
    assert idbs == [interface_description_block(LinkType.RAW, 0, "tun9")]


def test_failed_batch_does_not_register_its_interfaces() -> None:
    lo = socket.if_nametoindex("lo")
    out = CountingStream()
    w = PcapNgWriter(out, 0, LinkType.RAW)
    w.write_packet(TS, b"\x45" + b"\0" * 19)
    out.fail = 1
    with pytest.raises(OSError):
        w.write_batch([Packet(TS, b"\x45" + b"\0" * 19, 20, Direction.UNKNOWN, lo)])
    w.write_batch([Packet(TS, b"\x45" + b"\0" * 19, 20, Direction.UNKNOWN, lo)])
    kinds = [btype for btype, _ in blocks(out.getvalue())]
    assert kinds == [0x0A0D0D0A, 1, 6, 1, 6]


def test_short_writes_of_a_raw_stream_are_completed() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            part = bytes(b[:100])
            self.data += part
            return len(part)

    out = Trickle()
    w = PcapNgWriter(out, 0, LinkType.RAW)  # type: ignore[arg-type]
    w.write_batch([Packet(TS + i, bytes(300), 300, Direction.INBOUND, 0) for i in range(3)])
    kinds = [btype for btype, _ in blocks(bytes(out.data))]
    assert kinds == [0x0A0D0D0A, 1, 6, 6, 6]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_count_lengths_nanoseconds_and_direction(tmp_path: Path) -> None:
    lo = socket.if_nametoindex("lo")
    datas = [
        ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, b"GET / HTTP/1.1\r\n\r\n", flags="PA"))),
        ether(ipv4("10.0.0.2", "10.0.0.1", udp(53, 41234, b"\0" * 31))),
        ether(ipv4("10.0.0.1", "10.0.0.2", icmp(payload=b"x" * 56))),
        ether(ipv6("fd00::1", "fd00::2", tcp(1234, 443, b"y" * 1200, flags="A"))),
    ]
    dirs = [Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN]
    packets = [
        Packet(TS + i * 1_000_000_007, d, len(d) + (i % 3) * 100, dirs[i % 3], (i % 2) * lo)
        for i, d in enumerate(datas * 4)
    ]
    path = tmp_path / "out.pcapng"
    with path.open("wb") as f:
        w = PcapNgWriter(f, 300, LinkType.ETHERNET, interface_name="veth0")
        w.write_batch(packets[:7])
        w.write_batch(packets[7:])
        w.close()
    cmd = ["tshark", "-r", str(path), "-T", "fields"]
    for field in (
        "frame.time_epoch",
        "frame.len",
        "frame.cap_len",
        "frame.packet_flags_direction",
        "frame.interface_name",
    ):
        cmd += ["-e", field]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in run.stdout.splitlines()]
    assert len(rows) == len(packets)
    for (stamp, wire, cap, flags, name), p in zip(rows, packets, strict=True):
        sec, frac = divmod(p.ts_ns, 1_000_000_000)
        assert stamp == f"{sec}.{frac:09d}"
        assert int(wire) == p.wire_len
        assert int(cap) == min(len(p.data), 300)
        assert int(flags or "0", 16) & 3 == p.direction
        assert name == ("lo" if p.ifindex else "veth0")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_reads_our_pcapng(tmp_path: Path) -> None:
    lo = socket.if_nametoindex("lo")
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(4000, 53, b"\0" * 20)))
    packets = [
        Packet(TS + i * 1_000_000_001, frame, len(frame), Direction.INBOUND, (i % 2) * lo)
        for i in range(6)
    ]
    path = tmp_path / "out.pcapng"
    with path.open("wb") as f:
        PcapNgWriter(f, 0, LinkType.ETHERNET, interface_name="veth0").write_batch(packets)
    run = subprocess.run(
        ["tcpdump", "-nr", str(path), "-tt", "--time-stamp-precision", "nano"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert len(lines) == len(packets)
    for line, p in zip(lines, packets, strict=True):
        sec, frac = divmod(p.ts_ns, 1_000_000_000)
        assert line.startswith(f"{sec}.{frac:09d} IP 10.0.0.1.4000 > 10.0.0.2.53")


def epbs(data: bytes) -> list[tuple[int, int, int, bytes, bytes]]:
    """(interface id, captured length, original length, bytes, options) of every EPB."""
    out = []
    for btype, block in blocks(data):
        if btype == 6:
            iface, _hi, _lo, cap, orig = struct.unpack_from("<IIIII", block, 8)
            padded = cap + (-cap % 4)
            out.append((iface, cap, orig, block[28 : 28 + cap], block[28 + padded : -4]))
    return out


def test_epbs_cut_keep_the_wire_length_and_flag_only_known_directions() -> None:
    """Mutations guarded: the cut, an original length below the captured one, options for a
    packet of unknown direction (it has none)."""
    body = encode_epbs(
        [
            Packet(TS, bytes(range(50)), 1500, Direction.INBOUND, 0),
            Packet(TS, bytes(range(8)), 3, Direction.UNKNOWN, 0),
            Packet(TS, bytes(range(10)), 10, Direction.OUTBOUND, 0),
        ],
        10,
        {0: 0},
    )
    inbound = struct.pack("<HHIHH", 2, 4, 1, 0, 0)
    outbound = struct.pack("<HHIHH", 2, 4, 2, 0, 0)
    assert epbs(body) == [
        (0, 10, 1500, bytes(range(10)), inbound),
        (0, 8, 8, bytes(range(8)), b""),
        (0, 10, 10, bytes(range(10)), outbound),
    ]


def test_idb_with_a_name_keeps_both_options() -> None:
    """Mutation guarded: the name option replaced by the next one instead of followed by it."""
    block = interface_description_block(LinkType.ETHERNET, 0, "eth0")
    linktype, _res, snaplen = struct.unpack_from("<HHI", block, 8)
    assert (linktype, snaplen) == (1, 262144)
    options = block[16:-4]
    assert options == (
        struct.pack("<HH", 2, 4) + b"eth0" + struct.pack("<HHB3x", 9, 1, 9) + b"\0\0\0\0"
    )
    unnamed = interface_description_block(LinkType.RAW, 64)
    assert unnamed[16:-4] == struct.pack("<HHB3x", 9, 1, 9) + b"\0\0\0\0"
    assert struct.unpack_from("<HHI", unnamed, 8)[::2] == (101, 64)


def test_an_empty_capture_then_packets_has_one_interface() -> None:
    """A flush before any packet writes the SHB and the default IDB; packets of the default
    interface then reuse it. Mutations guarded: the flush's interface table left empty or
    wrong (a second IDB, or EPBs naming interface 1), its IDB's snaplen or name dropped."""
    out = io.BytesIO()
    w = PcapNgWriter(out, linktype=LinkType.ETHERNET, interface_name="cap0")
    w.flush()
    w.flush()
    w.write_batch([Packet(TS, b"abcd", 4, Direction.INBOUND, 0)])
    w.write_packet(TS, b"efgh", 9, Direction.OUTBOUND)
    kinds = [btype for btype, _ in blocks(out.getvalue())]
    assert kinds == [0x0A0D0D0A, 1, 6, 6]
    idb = blocks(out.getvalue())[1][1]
    assert struct.unpack_from("<HHI", idb, 8)[::2] == (1, 262144)
    assert b"cap0" in idb
    assert [(e[0], e[1], e[2], e[3]) for e in epbs(out.getvalue())] == [
        (0, 4, 4, b"abcd"),
        (0, 4, 9, b"efgh"),
    ]
    assert epbs(out.getvalue())[1][4] == struct.pack("<HHIHH", 2, 4, 2, 0, 0)


def test_interface_zero_is_the_default_name_not_a_system_one() -> None:
    out = io.BytesIO()
    w = PcapNgWriter(out, 0, LinkType.ETHERNET, interface_name="default0")
    w.write_batch(
        [Packet(TS, b"a", 1, Direction.INBOUND, 0), Packet(TS, b"b", 1, Direction.INBOUND, 1)]
    )
    idbs = [block for btype, block in blocks(out.getvalue()) if btype == 1]
    assert len(idbs) == 2
    assert b"default0" in idbs[0] and socket.if_indextoname(1).encode() in idbs[1]
    assert [e[0] for e in epbs(out.getvalue())] == [0, 1]


def idb_snaplens(data: bytes) -> list[int]:
    return [struct.unpack_from("<I", block, 12)[0] for btype, block in blocks(data) if btype == 1]


def test_idbs_carry_the_writers_snaplen() -> None:
    """Mutations guarded: an IDB written with a default snaplen instead of the writer's, from
    a batch or from a flush with no packet; the function's own default (0: 262144)."""
    out = io.BytesIO()
    PcapNgWriter(out, 80, LinkType.ETHERNET).write_batch(
        [Packet(TS, b"a", 1, Direction.INBOUND, 0)]
    )
    assert idb_snaplens(out.getvalue()) == [80]
    out = io.BytesIO()
    PcapNgWriter(out, 80, LinkType.ETHERNET).flush()
    assert idb_snaplens(out.getvalue()) == [80]
    assert idb_snaplens(interface_description_block(LinkType.RAW)) == [262144]


def test_interfaces_of_their_own_link_type_get_idbs_of_it() -> None:
    """``linktypes`` (a pcapng source's interfaces): an ifindex in it gets an IDB of its own
    link type, named ``interface_name`` (a capture file's ifindex, not this system's), and
    any other ifindex the writer's link type. Mutations guarded: ``linktypes`` dropped
    (`__init__` 8), the lookup inverted (`write_batch` 21) or its link type and name lost
    (22)."""
    out = io.BytesIO()
    w = PcapNgWriter(
        out, 0, LinkType.ETHERNET, interface_name="file0", linktypes={1: int(LinkType.RAW)}
    )
    w.write_batch(
        [
            Packet(TS, b"\x00" * 14, 14, Direction.INBOUND, 0),
            Packet(TS, b"\x45" + b"\x00" * 19, 20, Direction.INBOUND, 1),
        ]
    )
    idbs = [block for btype, block in blocks(out.getvalue()) if btype == 1]
    assert [struct.unpack_from("<H", idb, 8)[0] for idb in idbs] == [1, 101]
    assert b"file0" in idbs[0] and b"file0" in idbs[1]
    assert socket.if_indextoname(1).encode() not in idbs[1]
    assert [e[0] for e in epbs(out.getvalue())] == [0, 1]
