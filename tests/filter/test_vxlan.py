"""``vxlan [VNI]`` with libpcap 1.11's meaning, held without a libpcap oracle.

libpcap 1.10, the reference the differential test runs, has no ``vxlan``. libpcap 1.11's
gen_vxlan is the specification here: UDP to port 4789 (the destination port only) over IPv4
(not a later fragment) or over IPv6 (UDP as the first next header), the VXLAN flags byte exactly
0x08 (the I flag alone), the 24-bit VNI when given (the reserved byte after it not compared);
the primitives after it in its ``and`` chain read the Ethernet frame it carries. Every verdict
below is derived from those rules, written out by hand, and checked for the Python matcher and
for the BPF program (run by libpcap's interpreter and by the test interpreter); frames cut at
every byte of the outer headers, the VXLAN header and the inner headers show which bytes each
expression needs. tshark reads the same frames as a cross-check; the few places where it reads
them otherwise are listed with the reason.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

import _bpfvm as bpfvm
import pytest
from _helpers import MAC_A, MAC_B, ether, ipv4, ipv6, tcp, udp
from _oracle import run_program
from _packets import vxlan

from capsvc._packet import LinkType
from capsvc.filter import (
    FILTER_LINKTYPES,
    FilterCompileError,
    FilterSyntaxError,
    compile_bpf,
    parse_filter,
)

INNER4 = bytes(ipv4("10.9.0.1", "10.9.0.2", tcp(1000, 80)))
INNER6 = bytes(ipv6("2001:db8::9", "2001:db8::a", udp(53, 53)))
FRAME4 = bytes(ether(INNER4, src=MAC_A, dst=MAC_B))
FRAME6 = bytes(ether(INNER6, src=MAC_A, dst="ff:ff:ff:ff:ff:ff"))


def outer4(
    body: bytes, *, sport: int = 40000, dport: int = 4789, frag: int = 0x4000, options: bytes = b""
) -> bytes:
    """Ethernet, IPv4, UDP from ``sport`` to ``dport``, then ``body``."""
    packet = ipv4("10.0.0.1", "10.0.0.2", udp(sport, dport, body), flags_frag=frag, options=options)
    return bytes(ether(packet))


def outer6(
    body: bytes, *, sport: int = 40000, dport: int = 4789, ext: tuple[tuple[int, bytes], ...] = ()
) -> bytes:
    """Ethernet, IPv6 (with extension headers ``ext``), UDP, then ``body``."""
    packet = ipv6("2001:db8::1", "2001:db8::2", udp(sport, dport, body), nh=17, ext=ext)
    return bytes(ether(packet))


EXPRS = [
    "vxlan",
    "vxlan 12345",
    "vxlan 12346",
    "vxlan 0",
    "vxlan 16777215",
    "vxlan and ip",
    "vxlan and ip6",
    "vxlan and ip and tcp port 80",
    "vxlan and tcp dst port 80",
    "vxlan and udp",
    "vxlan and host 10.9.0.2",
    "vxlan and host 10.0.0.2",
    "vxlan and udp port 4789",
    "vxlan and ether src 02:00:00:00:00:0a",
    "vxlan and wlan src 02:00:00:00:00:0a",
    "vxlan and broadcast",
    "vxlan and ether[12:2] = 0x86dd",
    "vxlan 9 and vxlan 12345 and tcp port 80",
]
#: What the usual VXLAN packet (VNI 12345, an Ethernet frame with IPv4 and TCP to port 80
#: from MAC_A) matches, whatever the outer IP version.
USUAL = {
    "vxlan",
    "vxlan 12345",
    "vxlan and ip",
    "vxlan and ip and tcp port 80",
    "vxlan and tcp dst port 80",
    "vxlan and host 10.9.0.2",
    "vxlan and ether src 02:00:00:00:00:0a",
    "vxlan and wlan src 02:00:00:00:00:0a",  # "wlan" names the link layer: Ethernet here
}
#: ... and the one carrying IPv6 and UDP to a broadcast address, of VNI 0.
USUAL6 = {
    "vxlan",
    "vxlan 0",
    "vxlan and ip6",
    "vxlan and udp",
    "vxlan and ether src 02:00:00:00:00:0a",
    "vxlan and wlan src 02:00:00:00:00:0a",  # "wlan" names the link layer: Ethernet here
    "vxlan and broadcast",
    "vxlan and ether[12:2] = 0x86dd",
}
NESTED = vxlan(9, bytes(ether(ipv4("10.8.0.1", "10.8.0.2", udp(4000, 4789, vxlan(12345, FRAME4))))))

#: name -> (an Ethernet frame, the expressions of EXPRS it matches).
CASES: dict[str, tuple[bytes, set[str]]] = {
    "over IPv4": (outer4(vxlan(12345, FRAME4)), USUAL),
    "over IPv6": (outer6(vxlan(12345, FRAME4)), USUAL),
    "IPv6 inside, over IPv4": (outer4(vxlan(0, FRAME6)), USUAL6),
    "IPv6 inside, over IPv6": (outer6(vxlan(0, FRAME6)), USUAL6),
    "the largest VNI": (
        outer4(vxlan(0xFFFFFF, FRAME4)),
        USUAL - {"vxlan 12345"} | {"vxlan 16777215"},
    ),
    "the outer addresses inside too": (
        outer4(vxlan(12345, bytes(ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1000, 80)))))),
        USUAL - {"vxlan and host 10.9.0.2"} | {"vxlan and host 10.0.0.2"},
    ),
    "another VNI": (outer4(vxlan(12346, FRAME4)), USUAL - {"vxlan 12345"} | {"vxlan 12346"}),
    "the reserved byte after the VNI set": (outer4(vxlan(12345, FRAME4, reserved=0xFF)), USUAL),
    "the reserved byte after the VNI set, over IPv6": (
        outer6(vxlan(12345, FRAME4, reserved=0xFF)),
        USUAL,
    ),
    "the reserved bytes after the flags set": (
        outer4(struct.pack("!B3sI", 0x08, b"\xff\xff\xff", 12345 << 8) + FRAME4),
        USUAL,
    ),
    "flags 0x0c (another flag too)": (outer4(vxlan(12345, FRAME4, flags=0x0C)), set()),
    "flags 0x00 (no I flag)": (outer4(vxlan(12345, FRAME4, flags=0x00)), set()),
    "flags 0x88": (outer4(vxlan(12345, FRAME4, flags=0x88)), set()),
    "from port 4789 only": (outer4(vxlan(12345, FRAME4), sport=4789, dport=40000), set()),
    "from and to port 4789": (outer4(vxlan(12345, FRAME4), sport=4789), USUAL),
    "VXLAN-GPE's port 4790": (outer4(vxlan(12345, FRAME4), dport=4790), set()),
    "Linux's old port 8472": (outer4(vxlan(12345, FRAME4), dport=8472), set()),
    "a first fragment": (outer4(vxlan(12345, FRAME4), frag=0x2000), USUAL),
    "a later fragment": (outer4(vxlan(12345, FRAME4), frag=0x2001), set()),
    "IPv4 options": (outer4(vxlan(12345, FRAME4), options=b"\x94\x04\x00\x00" * 2), USUAL),
    "an IPv6 hop-by-hop header before UDP": (
        outer6(vxlan(12345, FRAME4), ext=((0, b""),)),
        set(),
    ),
    "TCP to port 4789": (
        bytes(ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 4789, vxlan(12345, FRAME4))))),
        set(),
    ),
    "VXLAN in VXLAN": (
        outer4(NESTED),
        {
            "vxlan",
            "vxlan and ip",
            "vxlan and udp",
            "vxlan and udp port 4789",
            "vxlan and ether src 02:00:00:00:00:0a",
            "vxlan and wlan src 02:00:00:00:00:0a",  # "wlan" names the link layer: Ethernet here
            "vxlan 9 and vxlan 12345 and tcp port 80",
        },
    ),
    "a VXLAN header of 3 bytes": (outer4(b"\x08\x00\x00"), {"vxlan"}),
    "plain UDP": (outer4(b"", dport=53), set()),
}


def _verdicts(expr: str, linktype: LinkType, frames: Sequence[bytes]) -> dict[str, list[bool]]:
    """The matcher's verdicts and the BPF program's (libpcap's interpreter, the test's)."""
    matcher = parse_filter(expr, linktype)
    assert matcher is not None
    program = compile_bpf(expr, linktype)
    return {
        "match": [matcher.match(f) for f in frames],
        "bpf_filter": run_program(program, frames),
        "test interpreter": [bool(bpfvm.run(program, f)) for f in frames],
    }


def _frames(linktype: LinkType) -> dict[str, bytes]:
    """The frames of CASES on ``linktype``: as built (Ethernet) or without the Ethernet header
    (raw IP)."""
    cut = 0 if linktype == LinkType.ETHERNET else 14
    return {name: frame[cut:] for name, (frame, _) in CASES.items()}


@pytest.mark.parametrize("linktype", [LinkType.ETHERNET, LinkType.RAW], ids=lambda lt: lt.name)
@pytest.mark.parametrize("expr", EXPRS)
def test_verdicts_are_libpcap_1_11s(expr: str, linktype: LinkType) -> None:
    frames = _frames(linktype)
    wanted = [expr in CASES[name][1] for name in frames]
    for back_end, got in _verdicts(expr, linktype, list(frames.values())).items():
        wrong = [name for name, a, b in zip(frames, got, wanted, strict=True) if a != b]
        assert not wrong, f"{back_end} on {linktype.name}: {wrong}"


def test_every_expression_matches_some_case_and_misses_some() -> None:
    # Guards the table itself: no expression is decided the same on every frame.
    for expr in EXPRS:
        matched = {name for name, (_, exprs) in CASES.items() if expr in exprs}
        assert matched and len(matched) < len(CASES), expr


#: Expression -> how many bytes of a matching frame it reads, counted from the start of the
#: Ethernet frame VXLAN carries (the flags byte is 8 bytes before it, the VNI the 4 before it).
NEEDS = {
    "vxlan": -7,
    "vxlan 12345": 0,
    "vxlan and ip": 14,
    "vxlan and ether src 02:00:00:00:00:0a": 12,
    "vxlan and host 10.9.0.2": 14 + 20,
    "vxlan and ip and tcp port 80": 14 + 20 + 4,
    "vxlan and tcp dst port 80": 14 + 20 + 4,
}


@pytest.mark.parametrize("linktype", [LinkType.ETHERNET, LinkType.RAW], ids=lambda lt: lt.name)
@pytest.mark.parametrize("outer", ["over IPv4", "over IPv6", "IPv4 options"])
@pytest.mark.parametrize("expr", sorted(NEEDS))
def test_a_frame_cut_anywhere_matches_only_with_every_byte_read(
    expr: str, outer: str, linktype: LinkType
) -> None:
    """Cut at every byte (the outer headers, the VXLAN header, the inner Ethernet, IP and TCP
    headers): a read past the end rejects the frame, as in libpcap's interpreter, so a frame
    matches exactly when it holds every byte the expression reads."""
    frame = _frames(linktype)[outer]
    inner = len(frame) - len(FRAME4)  # where the Ethernet frame inside starts
    need = inner + NEEDS[expr]
    cuts = [frame[:n] for n in range(len(frame) + 1)]
    for back_end, got in _verdicts(expr, linktype, cuts).items():
        assert got == [n >= need for n in range(len(frame) + 1)], back_end


def test_a_vlan_tag_outside_moves_the_tunnel_as_libpcap() -> None:
    """``vlan`` before ``vxlan`` moves the outer offsets, not the inner ones; in a live
    socket's program the tag may be in the kernel's metadata instead (the frame untagged)."""
    packet = ipv4("10.0.0.1", "10.0.0.2", udp(40000, 4789, vxlan(12345, FRAME4)))
    tagged, untagged = bytes(ether(packet, vlans=(100,))), bytes(ether(packet))
    expr = "vlan 100 and vxlan 12345 and ip and tcp port 80"
    assert _verdicts(expr, LinkType.ETHERNET, [tagged, untagged]) == {
        "match": [True, False],
        "bpf_filter": [True, False],
        "test interpreter": [True, False],
    }
    assert _verdicts("vxlan", LinkType.ETHERNET, [tagged])["match"] == [False]
    program = compile_bpf(expr, LinkType.ETHERNET, kernel_vlan=True)
    assert bpfvm.run(program, untagged, vlan_tci=100) is True
    assert bpfvm.run(program, untagged, vlan_tci=101) is False
    assert bpfvm.run(program, tagged) is True  # no tag in the metadata: the frame's own


def test_the_vni_is_24_bits() -> None:
    """A VNI past 24 bits is a FilterSyntaxError pointing at the number, as for ``geneve``."""
    for expr, offset in (("vxlan 16777216", 6), ("ip and vxlan 0x1000000", 13)):
        with pytest.raises(FilterSyntaxError, match=r"VXLAN VNI \d+ outside 0-16777215") as info:
            parse_filter(expr, LinkType.ETHERNET)
        assert info.value.offset == offset
    assert parse_filter("vxlan 0xffffff", LinkType.ETHERNET) is not None


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("vxlan or ip", "in its 'and' chain"),
        ("(vxlan and ip) or tcp", "in its 'and' chain"),
        ("not vxlan and ip", "in its 'and' chain"),
        ("vxlan and vlan", "'vlan' is not supported after 'vxlan'"),
        ("vxlan and mpls", "'mpls' is not supported after 'vxlan'"),
        ("vxlan and llc", "'llc' is not supported after 'vxlan'"),
        ("vxlan and stp", "after 'vxlan' capsvc tests the EtherType only"),
        ("vxlan and protochain 6", "variable length headers"),
        ("geneve and ether host 1:2:3:4:5:6", "'ether host' is not supported after 'geneve'"),
    ],
)
def test_what_is_not_read_inside_is_refused(expr: str, message: str) -> None:
    with pytest.raises(FilterCompileError, match=message):
        parse_filter(expr, LinkType.ETHERNET)
    with pytest.raises(FilterCompileError, match=message):
        compile_bpf(expr, LinkType.ETHERNET)


def test_vxlan_compiles_wherever_geneve_does() -> None:
    for linktype in sorted(FILTER_LINKTYPES):
        try:
            compile_bpf("geneve", linktype)
        except FilterCompileError:
            for expr in ("vxlan", "vxlan 12345", "vxlan and ip"):
                with pytest.raises(FilterCompileError):
                    compile_bpf(expr, linktype)
            continue
        for expr in ("vxlan", "vxlan 12345", "vxlan and vxlan", "vxlan and ip and tcp port 80"):
            assert compile_bpf(expr, linktype), (linktype, expr)
            assert parse_filter(expr, linktype) is not None


def test_the_program_is_short() -> None:
    """Two layouts (IPv4 or IPv6 outside), each with its tests, as for ``geneve``."""
    assert len(compile_bpf("vxlan", LinkType.ETHERNET)) <= 20
    assert len(compile_bpf("vxlan 12345", LinkType.ETHERNET)) <= 26
    assert len(compile_bpf("vxlan and ip and tcp port 80", LinkType.ETHERNET)) <= 60


# -- tshark, reading the same frames -------------------------------------------------------------

#: Frames tshark decodes as VXLAN that libpcap's ``vxlan`` does not match, and why.
TSHARK_READS_MORE = {
    "flags 0x0c (another flag too)": "tshark decodes whatever the flags hold; libpcap wants 0x08",
    "flags 0x00 (no I flag)": "tshark decodes whatever the flags hold; libpcap wants 0x08",
    "flags 0x88": "tshark decodes whatever the flags hold; libpcap wants 0x08",
    "from port 4789 only": "tshark decodes port 4789 either way; libpcap tests the destination",
    "an IPv6 hop-by-hop header before UDP": (
        "tshark walks IPv6 extension headers; libpcap reads UDP as the first next header only"
    ),
}


def _write_pcap(path: Path, frames: Sequence[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, int(LinkType.ETHERNET)))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame)


def _tshark(path: Path, *args: str) -> list[list[str]]:
    """tshark's fields for each frame (IP reassembly off: a lone first fragment is read)."""
    done = subprocess.run(
        ["tshark", "-n", "-o", "ip.defragment:FALSE", "-r", str(path), "-T", "fields", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [line.split("\t") for line in done.stdout.splitlines()]


def test_tshark_reads_the_same_vxlan_packets(tmp_path: Path) -> None:
    """For each frame whose outermost tunnel tshark decodes as VXLAN: its (first) VNI is 12345
    exactly when ``vxlan 12345`` matches, and the inner Ethernet header (tshark's second
    ``eth`` layer) has what ``vxlan and ...`` reads; tshark decodes no frame as VXLAN that
    ``vxlan`` refuses but the ones TSHARK_READS_MORE lists."""
    names = list(CASES)
    path = tmp_path / "vxlan.pcap"
    _write_pcap(path, [CASES[n][0] for n in names])
    rows = _tshark(
        path, "-E", "occurrence=f", "-e", "frame.protocols", "-e", "vxlan.vni", "-e", "eth.type"
    )
    assert len(rows) == len(names)
    decoded = {
        name: row
        for name, row in zip(names, rows, strict=True)
        if re.search(r":udp:vxlan(:|$)", row[0])
    }
    assert len(decoded) >= 15, decoded.keys()
    frames = [CASES[n][0] for n in names]
    verdicts = {
        expr: dict(zip(names, _verdicts(expr, LinkType.ETHERNET, frames)["match"], strict=True))
        for expr in ("vxlan", "vxlan 12345")
    }
    more = {name for name in decoded if not verdicts["vxlan"][name]}
    assert more == set(TSHARK_READS_MORE), more
    assert not {n for n in names if n not in decoded and verdicts["vxlan"][n]}
    same = [name for name in decoded if name not in TSHARK_READS_MORE]
    for name in same:
        assert (decoded[name][1] == "12345") == verdicts["vxlan 12345"][name], name
    # The inner Ethernet header, as tshark's second eth layer and capsvc's "vxlan and ...".
    for display, expr in (
        ("eth.type#2 == 0x0800", "vxlan and ip"),
        ("eth.type#2 == 0x86dd", "vxlan and ip6"),
        ("eth.src#2 == 02:00:00:00:00:0a", "vxlan and ether src 02:00:00:00:00:0a"),
        ("eth.dst#2 == ff:ff:ff:ff:ff:ff", "vxlan and broadcast"),
        ("vxlan.vni#2 == 12345 && tcp.port == 80", "vxlan 9 and vxlan 12345 and tcp port 80"),
    ):
        shown = {int(row[0]) for row in _tshark(path, "-Y", display, "-e", "frame.number")}
        ours = _verdicts(expr, LinkType.ETHERNET, [CASES[n][0] for n in same])["match"]
        theirs = [names.index(n) + 1 in shown for n in same]
        differ = [n for n, a, b in zip(same, ours, theirs, strict=True) if a != b]
        assert not differ, (expr, differ)
