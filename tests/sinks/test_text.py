"""TextWriter: golden lines per protocol and link type, verbose/ASCII modes, malformed input."""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator

import pytest
from _helpers import (
    ETH_ARP,
    MAC_A,
    MAC_B,
    arp,
    ether,
    icmp,
    icmp6,
    ipv4,
    ipv6,
    null,
    sll,
    sll2,
    tcp,
    udp,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc import Direction, LinkType, Packet, Session
from capsvc.format._line import TextFormatter
from capsvc.sinks._text import TextWriter

IN, OUT, UNK = Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN
#: 12:30:45.123456 UTC on 1 January 2026.
T0 = (1767225600 + 12 * 3600 + 30 * 60 + 45) * 1_000_000_000 + 123_456_000
STAMP = "12:30:45.123456"
HTTP_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX: yz\r\n\r\n"
)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def line(
    data: bytes,
    direction: Direction = IN,
    *,
    linktype: LinkType | int = LinkType.RAW,
    verbose: bool = False,
    ascii: bool = False,
    ts: int = T0,
    wire_len: int | None = None,
) -> str:
    """The text (without the time stamp) TextWriter writes for one frame."""
    out = io.StringIO()
    TextWriter(out, verbose, ascii, linktype=linktype).write_packet(ts, data, direction, wire_len)
    text = out.getvalue()
    assert text.endswith("\n")
    assert text.startswith(STAMP + " ") or ts != T0
    return text[len(STAMP) + 1 : -1]


def dns_query(ident: int, name: str, qtype: int = 1, flags: int = 0x0100) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def dns_answer(query: bytes, answers: list[tuple[int, bytes]], rcode: int = 0) -> bytes:
    flags = 0x8180 | rcode
    head = struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], flags, 1, len(answers), 0, 0)
    body = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
        for rtype, rdata in answers
    )
    return head + query[12:] + body


def client_hello(sni: str | None) -> bytes:
    exts = b""
    if sni is not None:
        name = sni.encode()
        entry = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
        exts = struct.pack("!HH", 0, len(entry)) + entry
    exts += struct.pack("!HH", 10, 4) + b"\x00\x02\x00\x1d"  # supported_groups
    body = (
        b"\x03\x03"
        + b"\x11" * 32
        + b"\x00"
        + b"\x00\x02\x13\x01"
        + b"\x01\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def server_hello_13() -> bytes:
    exts = struct.pack("!HH", 43, 2) + b"\x03\x04"
    body = b"\x03\x03" + b"\x22" * 32 + b"\x00" + b"\x13\x01" + b"\x00"
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs


# -- the issue's examples --------------------------------------------------------------------


def test_issue_examples_exactly() -> None:
    assert len(HTTP_REQUEST) == 78
    out = io.StringIO()
    w = TextWriter(out)
    w.write_packet(T0, ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, HTTP_REQUEST, flags="PA")), IN)
    w.write_packet(
        T0 + 1000,
        ipv4("100.64.0.1", "100.64.0.2", udp(41234, 53, dns_query(0x1A2B, "example.com"))),
        OUT,
    )
    w.write_packet(T0 + 2000, ipv4("10.0.0.1", "10.0.0.2", icmp(8, 0, 1, 1, b"x" * 56)), OUT)
    w.write_packet(T0 + 3000, ipv4("10.0.0.1", "10.0.0.2", b"\0" * 24, proto=253), IN)
    assert out.getvalue().splitlines() == [
        "12:30:45.123456 [IN   TCP] 10.0.0.1:40000 > 10.0.0.2:80 [P.] length 78: GET / HTTP/1.1",
        "12:30:45.123457 [OUT  UDP] 100.64.0.1:41234 > 100.64.0.2:53 1a2b+ A? example.com. (29)",
        "12:30:45.123458 [OUT ICMP] 10.0.0.1 > 10.0.0.2 EchoRequest, id 1, seq 1, length 64",
        "12:30:45.123459 [IN  P253] 10.0.0.1 > 10.0.0.2 length 24",
    ]


# -- transport lines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        ("S", "S"),
        ("SA", "S."),
        ("A", "."),
        ("FA", "F."),
        ("R", "R"),
        ("RA", "R."),
        ("PA", "P."),
        ("", "none"),
        ("UA", ".U"),
        ("SEC", "SEW"),
        ("FSRPAU", "SFRP.U"),
    ],
)
def test_tcp_flags_in_tcpdump_order(flags: str, text: str) -> None:
    frame = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, flags=flags))
    assert line(frame) == f"[IN   TCP] 10.0.0.1:1 > 10.0.0.2:2 [{text}] length 0"


def test_direction_tags() -> None:
    frame = ipv4("10.0.0.1", "10.0.0.2", udp(5000, 6000, b"abc"))
    assert line(frame, OUT).startswith("[OUT  UDP] ")
    assert line(frame, UNK).startswith("[---  UDP] ")
    assert line(frame, 7).startswith("[---  UDP] ")  # type: ignore[arg-type]


def test_udp_plain_and_ipv6_brackets() -> None:
    assert line(ipv4("10.0.0.1", "10.0.0.2", udp(5000, 6000, b"x" * 100))) == (
        "[IN   UDP] 10.0.0.1:5000 > 10.0.0.2:6000 length 100"
    )
    assert line(ipv6("fd00::1", "fd00::2", udp(1234, 4321, b"hi")), OUT) == (
        "[OUT  UDP] [fd00::1]:1234 > [fd00::2]:4321 length 2"
    )
    assert line(ipv6("fd00::1", "fd00::2", tcp(1234, 443, flags="S"))) == (
        "[IN   TCP] [fd00::1]:1234 > [fd00::2]:443 [S] length 0"
    )


def test_tcp_length_is_payload_and_survives_truncation() -> None:
    frame = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, HTTP_REQUEST, flags="PA"))
    cut = frame[:60]  # snaplen 60: the request line is cut, its length is not
    assert line(cut, wire_len=len(frame)) == (
        "[IN   TCP] 10.0.0.1:40000 > 10.0.0.2:80 [P.] length 78: GET / HTTP/1.1"
    )
    padded = ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, flags="A"))) + b"\0" * 6
    assert line(padded, linktype=LinkType.ETHERNET).endswith("[.] length 0")


def test_ipv6_extension_headers_and_fragments() -> None:
    hop = ipv6("fd00::1", "fd00::2", udp(53, 999, b"zz"), ext=((0, b"\x01\x00"),))
    assert line(hop).startswith("[IN   UDP] [fd00::1]:53 > [fd00::2]:999 ")
    later = ipv6("fd00::1", "fd00::2", b"\0" * 16, nh=17, ext=((44, b"\x05\x00\0\0\0\x07"),))
    assert line(later) == "[IN   UDP] fd00::1 > fd00::2 frag id 7, offset 1280, length 16"


def test_ipv4_later_fragment_has_no_ports() -> None:
    first = ipv4("10.0.0.1", "10.0.0.2", udp(7, 9, b"a" * 32), ident=7, flags_frag=0x2000)
    assert line(first).startswith("[IN   UDP] 10.0.0.1:7 > 10.0.0.2:9 ")
    later = ipv4("10.0.0.1", "10.0.0.2", b"b" * 520, proto=17, ident=7, flags_frag=185)
    assert line(later) == "[IN   UDP] 10.0.0.1 > 10.0.0.2 frag id 7, offset 1480, length 520"


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (icmp(0, 0, 9, 3), "EchoReply, id 9, seq 3, length 8"),
        (icmp(3, 3, 0, 0), "DestUnreach, code 3, inner [|ip], length 8"),
        (icmp(3, 4, 0, 1400), "DestUnreach, code 4, mtu 1400, inner [|ip], length 8"),
        (icmp(11, 0, 0, 0), "TimeExceeded, inner [|ip], length 8"),
        (icmp(42, 1, 0, 0), "type 42, code 1, length 8"),
    ],
)
def test_icmp_types(message: bytes, text: str) -> None:
    assert line(ipv4("10.0.0.1", "10.0.0.2", message)) == f"[IN  ICMP] 10.0.0.1 > 10.0.0.2 {text}"


def test_icmp6_types() -> None:
    echo = ipv6("fd00::1", "fd00::2", icmp6(128, 0, 5, 6, b"p" * 8))
    assert line(echo) == "[IN  ICMP6] fd00::1 > fd00::2 EchoRequest, id 5, seq 6, length 16"
    target = bytes.fromhex("fd000000000000000000000000000002")
    ns = ipv6("fd00::1", "ff02::1:ff00:2", icmp6(135, 0, 0, 0, target))
    assert line(ns, OUT) == (
        "[OUT ICMP6] fd00::1 > ff02::1:ff00:2 NeighborSolicit, who has fd00::2, length 24"
    )
    na = ipv6("fd00::2", "fd00::1", icmp6(136, 0, 0x6000, 0, target))
    assert line(na).endswith("NeighborAdvert, tgt is fd00::2, length 24")


# -- payload annotations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "note"),
    [
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (b"POST /api/v1 HTTP/1.1\r\n", "POST /api/v1 HTTP/1.1"),
        (b"SSH-2.0-OpenSSH_9.6p1 Debian\r\n", "SSH-2.0-OpenSSH_9.6p1 Debian"),
        (client_hello("example.com"), "TLS ClientHello, SNI example.com"),
        (client_hello(None), "TLS ClientHello"),
        (server_hello_13(), "TLS ServerHello, TLSv1.3"),
        (b"\x15\x03\x03\x00\x02\x02\x28", "TLS Alert fatal handshake_failure"),
        (b"\x15\x03\x03\x00\x1a" + b"\x99" * 26, "TLS Alert (encrypted)"),
        (b"GET /\x01\xff HTTP/1.0\n", "GET /.. HTTP/1.0"),
    ],
)
def test_tcp_annotations(payload: bytes, note: str) -> None:
    frame = ipv4("10.0.0.1", "10.0.0.2", tcp(443, 50000, payload, flags="PA"))
    assert line(frame) == (
        f"[IN   TCP] 10.0.0.1:443 > 10.0.0.2:50000 [P.] length {len(payload)}: {note}"
    )


def test_no_annotation_for_other_payloads() -> None:
    frame = ipv4("10.0.0.1", "10.0.0.2", tcp(443, 50000, b"\x17\x03\x03\x00\x10" + b"q" * 16))
    assert line(frame).endswith("[S] length 21")
    frame = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, b"GETTING", flags="PA"))
    assert line(frame).endswith("[P.] length 7")


def test_dns_response_summary() -> None:
    query = dns_query(0xBEEF, "www.example.com")
    answer = dns_answer(
        query,
        [
            (5, b"\x03cdn\xc0\x10"),
            (1, bytes([93, 184, 216, 34])),
            (28, b"\x20\x01" + b"\0" * 13 + b"\1"),
        ],
    )
    frame = ipv4("100.64.0.2", "100.64.0.1", udp(53, 41234, answer))
    assert line(frame, OUT) == (
        "[OUT  UDP] 100.64.0.2:53 > 100.64.0.1:41234 beef q: A? www.example.com. 3/0/0 "
        f"CNAME cdn.example.com., A 93.184.216.34, AAAA 2001::1 ({len(answer)})"
    )


def test_dns_nxdomain_aaaa_and_tcp() -> None:
    query = dns_query(0x0001, "nope.test", qtype=28)
    nx = dns_answer(query, [], rcode=3)
    assert line(ipv6("fd00::53", "fd00::1", udp(53, 1000, nx))).endswith(
        f" 0001 NXDomain q: AAAA? nope.test. 0/0/0 ({len(nx)})"
    )
    framed = struct.pack("!H", len(query)) + query
    tcp_line = line(ipv4("10.0.0.1", "10.0.0.2", tcp(1000, 53, framed, flags="PA")))
    assert tcp_line.endswith(f"length {len(framed)}: 0001+ AAAA? nope.test. ({len(query)})")


def test_dns_malformed_names_end_with_marker() -> None:
    loop = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c"
    assert line(ipv4("10.0.0.1", "10.0.0.2", udp(1000, 53, loop))).endswith("0007+ [|domain] (14)")
    short = dns_query(9, "example.com")[:20]
    assert line(ipv4("10.0.0.1", "10.0.0.2", udp(1000, 53, short))).endswith("[|domain] (20)")
    tiny = b"\x00\x01\x02"
    assert line(ipv4("10.0.0.1", "10.0.0.2", udp(1000, 53, tiny))).endswith(" length 3")


# -- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (b"", "[IN     ?] [|ip] len=0"),
        (b"\x45\x00\x00", "[IN    IP] [|ip] len=3"),
        (b"\x43" + b"\0" * 30, "[IN    IP] ??? len=31"),
        (b"\x53" + b"\0" * 30, "[IN     ?] ??? len=31"),
        (b"\x60" + b"\0" * 20, "[IN   IP6] [|ip6] len=21"),
        (ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2))[:30], "[IN   TCP] 10.0.0.1:1 > 10.0.0.2:2 [|tcp]"),
        (ipv4("10.0.0.1", "10.0.0.2", udp(1, 2))[:24], "[IN   UDP] 10.0.0.1:1 > 10.0.0.2:2 [|udp]"),
        (ipv4("10.0.0.1", "10.0.0.2", icmp())[:22], "[IN  ICMP] 10.0.0.1 > 10.0.0.2 [|icmp]"),
        (b"\x44" + ipv4("10.0.0.1", "10.0.0.2", udp(1, 2))[1:], "[IN    IP] ??? len=28"),
        (ipv4("10.0.0.1", "10.0.0.2", udp(1, 2), total_length=12), "[IN    IP] ??? len=28"),
    ],
)
def test_malformed_frames_give_question_marks(frame: bytes, text: str) -> None:
    """Contradicting headers print ``???``; a frame the capture ends early gives the marker of
    the layer it ends in (``[|ip]``, ``[|tcp]``, ...)."""
    assert line(frame) == text


def test_bad_tcp_header_length() -> None:
    frame = bytearray(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, b"abcdefgh")))
    frame[32] = 0x30  # data offset 3 words
    assert line(bytes(frame)) == "[IN   TCP] ??? len=48"
    frame[32] = 0xF0  # 60 bytes of header in a 28-byte segment
    assert line(bytes(frame)) == "[IN   TCP] ??? len=48"


def test_unknown_link_type_and_odd_timestamps() -> None:
    assert line(b"\x01\x02", linktype=105) == "[IN  WLAN] Assoc Request [|802.11]"
    assert line(b"\x01\x02", linktype=147) == "[IN  LINK] LINKTYPE_147, length 2"
    fmt = TextFormatter()
    assert fmt.clock(0) == "00:00:00.000000"
    assert fmt.clock(-1) == "23:59:59.999999"
    assert fmt.clock(2**100 + 5_000) == f"??:??:??.{(2**100 + 5_000) // 1000 % 1_000_000:06d}"
    frame = ipv4("10.0.0.1", "10.0.0.2", udp(1, 2))
    assert fmt.format(2**100, frame, len(frame), IN).startswith("??:??:??.")


def test_verbose_ipv6_flow_and_ascii() -> None:
    fmt = TextFormatter(LinkType.ETHERNET, verbose=True, ascii=True)
    first = ether(ipv6("fd00::1", "fd00::2", tcp(5555, 22, b"SSH-2.0-x\r\n", flags="PA", seq=7)))
    second = ether(ipv6("fd00::1", "fd00::2", tcp(5555, 22, b"more", flags="PA", seq=18)))
    assert fmt.format(T0, first, len(first), OUT)[len(STAMP) + 1 :].split("\n") == [
        "[OUT  TCP] [fd00::1]:5555 > [fd00::2]:22 [P.] seq 0:11, ack 0, win 65535, length 11, "
        "ttl 64, iplen 71: SSH-2.0-x",
        "  SSH-2.0-x",
    ]
    assert " seq 11:15, " in fmt.format(T0, second, len(second), OUT)


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=200),
    linktype=st.sampled_from([*LinkType, 105]),
    verbose=st.booleans(),
    ascii=st.booleans(),
    direction=st.integers(-1, 4),
    ts=st.integers(-(2**40), 2**70),
)
def test_never_raises_on_arbitrary_bytes(
    data: bytes, linktype: int, verbose: bool, ascii: bool, direction: int, ts: int
) -> None:
    out = io.StringIO()
    TextWriter(out, verbose, ascii, linktype=linktype).write_packet(ts, data, direction)
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""
    assert lines[0][15:17] == " ["
    assert all(extra.startswith("  ") for extra in lines[1:-1])


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=120),
    proto=st.sampled_from([6, 17]),
    port=st.sampled_from([53, 80, 443, 22, 5353]),
    cut=st.integers(20, 200),
)
def test_never_raises_on_arbitrary_payloads(
    payload: bytes, proto: int, port: int, cut: int
) -> None:
    segment = tcp(port, port, payload, flags="PA") if proto == 6 else udp(port, port, payload)
    frame = ipv4("10.0.0.1", "10.0.0.2", segment)[:cut]
    text = line(frame, verbose=True, ascii=True)
    assert text.startswith("[IN   TCP]" if proto == 6 else "[IN   UDP]")


# -- link types -----------------------------------------------------------------------------

TCP_SYN = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, flags="S"))
SYN_TEXT = "10.0.0.1:40000 > 10.0.0.2:80 [S] length 0"


@pytest.mark.parametrize(
    ("frame", "linktype"),
    [
        (TCP_SYN, LinkType.RAW),
        (TCP_SYN, LinkType.IPV4),
        (ether(TCP_SYN), LinkType.ETHERNET),
        (ether(TCP_SYN, vlans=(100,)), LinkType.ETHERNET),
        (ether(TCP_SYN, vlans=(100, 200)), LinkType.ETHERNET),
        (sll(TCP_SYN), LinkType.LINUX_SLL),
        (sll2(TCP_SYN), LinkType.LINUX_SLL2),
        (null(TCP_SYN), LinkType.NULL),
        (null(TCP_SYN, big_endian=True), LinkType.NULL),
        (null(TCP_SYN, big_endian=True), LinkType.LOOP),
        (ether(TCP_SYN), 0x30000001),  # pcap link type field with an FCS length in its top bits
    ],
)
def test_link_types_decode_to_the_same_line(frame: bytes, linktype: int) -> None:
    assert line(frame, linktype=linktype) == f"[IN   TCP] {SYN_TEXT}"


def test_ipv6_link_types() -> None:
    frame = ipv6("fd00::1", "fd00::2", udp(1, 2))
    assert line(frame, linktype=LinkType.IPV6).startswith("[IN   UDP] [fd00::1]:1")
    assert line(null(frame), linktype=LinkType.NULL).startswith("[IN   UDP] [fd00::1]:1")
    assert line(null(frame, family=10), linktype=LinkType.NULL).startswith("[IN   UDP]")
    assert line(TCP_SYN, linktype=LinkType.IPV6) == "[IN     ?] ??? len=40"
    assert line(frame, linktype=LinkType.IPV4) == "[IN     ?] ??? len=48"


def test_cooked_headers_give_the_direction() -> None:
    assert line(sll(TCP_SYN, pkttype=4), UNK, linktype=LinkType.LINUX_SLL).startswith("[OUT ")
    assert line(sll(TCP_SYN, pkttype=0), UNK, linktype=LinkType.LINUX_SLL).startswith("[IN  ")
    assert line(sll2(TCP_SYN, pkttype=4), UNK, linktype=LinkType.LINUX_SLL2).startswith("[OUT ")
    # A known direction wins over the header's.
    assert line(sll2(TCP_SYN, pkttype=4), IN, linktype=LinkType.LINUX_SLL2).startswith("[IN  ")


def test_arp_and_other_ethertypes() -> None:
    request = ether(arp(1, MAC_A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ethertype=ETH_ARP)
    assert line(request, linktype=LinkType.ETHERNET) == (
        "[IN   ARP] ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28"
    )
    reply = ether(arp(2, MAC_B, "10.0.0.2", MAC_A, "10.0.0.1"), ethertype=ETH_ARP)
    assert line(reply, OUT, linktype=LinkType.ETHERNET) == (
        "[OUT  ARP] ARP, Reply 10.0.0.2 is-at 02:00:00:00:00:0b, length 28"
    )
    lldp = ether(b"\x02\x07" + b"\0" * 44, ethertype=0x88CC)
    assert line(lldp, linktype=LinkType.ETHERNET) == (
        "[IN  LLDP] LLDP, ethertype 0x88cc, length 46"
    )
    stp = ether(b"\x42\x42\x03" + b"\0" * 35, ethertype=38)
    assert line(stp, linktype=LinkType.ETHERNET) == (
        "[IN   LLC] LLC, dsap 0x42, ssap 0x42, length 38"
    )
    assert line(sll(b"\x42\x42\x03\0", protocol=4), linktype=LinkType.LINUX_SLL) == (
        "[IN   LLC] LLC, dsap 0x42, ssap 0x42, length 4"
    )
    assert line(ether(b"", ethertype=0x1234), linktype=LinkType.ETHERNET) == (
        "[IN   ETH] ETH, ethertype 0x1234, length 0"
    )
    assert line(ether(TCP_SYN, vlans=(5,))[:16], linktype=LinkType.ETHERNET) == (
        "[IN     ?] [|ether] len=16"
    )


# -- verbose and ASCII ----------------------------------------------------------------------

MSS_SACK_TS_WS = (
    b"\x02\x04\x05\xb4"
    + b"\x04\x02"
    + b"\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00"
    + b"\x01"
    + b"\x03\x03\x07"
)


def test_verbose_handshake_relative_numbers() -> None:
    a, b = "10.0.0.1", "10.0.0.2"
    frames = [
        ipv4(a, b, tcp(40000, 80, flags="S", seq=1000, options=MSS_SACK_TS_WS), ident=1),
        ipv4(b, a, tcp(80, 40000, flags="SA", seq=5000, ack=1001, win=65160), ident=0),
        ipv4(a, b, tcp(40000, 80, flags="A", seq=1001, ack=5001, win=502), ident=2),
        ipv4(a, b, tcp(40000, 80, HTTP_REQUEST, flags="PA", seq=1001, ack=5001, win=502), ident=3),
        ipv4(
            b,
            a,
            tcp(
                80,
                40000,
                flags="A",
                seq=5001,
                ack=1079,
                options=b"\x01\x01\x05\x0a" + struct.pack("!II", 1100, 1200),
            ),
        ),
    ]
    out = io.StringIO()
    w = TextWriter(out, verbose=True)
    w.write_batch([Packet(T0, f, len(f), IN, 0) for f in frames])
    assert [x[len(STAMP) + 1 :] for x in out.getvalue().splitlines()] == [
        "[IN   TCP] 10.0.0.1:40000 > 10.0.0.2:80 [S] seq 0, win 65535, options "
        "[mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0, ttl 64, id 1, iplen 60",
        "[IN   TCP] 10.0.0.2:80 > 10.0.0.1:40000 [S.] seq 0, ack 1, win 65160, length 0, "
        "ttl 64, id 0, iplen 40",
        "[IN   TCP] 10.0.0.1:40000 > 10.0.0.2:80 [.] seq 1, ack 1, win 502, length 0, "
        "ttl 64, id 2, iplen 40",
        "[IN   TCP] 10.0.0.1:40000 > 10.0.0.2:80 [P.] seq 1:79, ack 1, win 502, length 78, "
        "ttl 64, id 3, iplen 118: GET / HTTP/1.1",
        "[IN   TCP] 10.0.0.2:80 > 10.0.0.1:40000 [.] seq 1, ack 79, win 65535, options "
        "[nop,nop,sack 1 {100:200}], length 0, ttl 64, id 1, iplen 52",
    ]


def test_verbose_other_protocols_and_bad_options() -> None:
    frame = ipv6("fd00::1", "fd00::2", udp(1, 2, b"abc"), hlim=9)
    assert line(frame, verbose=True).endswith("length 3, ttl 9, iplen 51")
    frame = ipv4("10.0.0.1", "10.0.0.2", icmp(8, 0, 1, 2), ttl=3, ident=77)
    assert line(frame, verbose=True).endswith("seq 2, length 8, ttl 3, id 77, iplen 28")
    bad = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, options=b"\x02\x09\x00\x00\x13\x02"))
    assert "options [bad opt]" in line(bad, verbose=True)
    odd = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, options=b"\x1e\x04\x00\x00\x63\x02\x00\x00"))
    assert "options [mptcp,unknown-99,eol]" in line(odd, verbose=True)


def test_flow_table_is_bounded() -> None:
    fmt = TextFormatter(LinkType.RAW, verbose=True, max_flows=3)
    for port in range(1000, 1010):
        frame = ipv4("10.0.0.1", "10.0.0.2", tcp(port, 80, seq=port * 7))
        assert " seq 0," in fmt.format(T0, frame, len(frame), IN)
    assert len(fmt.flows) == 3
    # The oldest flows were forgotten: a flow seen again starts over (seq 0 again) ...
    again = ipv4("10.0.0.1", "10.0.0.2", tcp(1000, 80, seq=9999))
    assert " seq 0," in fmt.format(T0, again, len(again), IN)
    # ... while a remembered one keeps its base.
    kept = ipv4("10.0.0.1", "10.0.0.2", tcp(1009, 80, seq=1009 * 7 + 5))
    assert " seq 5," in fmt.format(T0, kept, len(kept), IN)
    assert len(fmt.flows) == 3
    with pytest.raises(ValueError, match="max_flows"):
        TextFormatter(max_flows=0)


def test_ascii_mode_prints_payload_lines() -> None:
    frame = ipv4(
        "10.0.0.1", "10.0.0.2", tcp(40000, 80, b"GET / HTTP/1.1\r\nA: \x01\tb\r\n\r\n", flags="PA")
    )
    assert line(frame, ascii=True).split("\n") == [
        "[IN   TCP] 10.0.0.1:40000 > 10.0.0.2:80 [P.] length 26: GET / HTTP/1.1",
        "  GET / HTTP/1.1",
        "  A: ..b",
        "  ",
    ]
    udp_frame = ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"\xffhello"))
    assert line(udp_frame, ascii=True).split("\n")[1:] == ["  .hello"]
    echo = ipv4("10.0.0.1", "10.0.0.2", icmp(8, 0, 1, 1, b"ping"))
    assert line(echo, ascii=True).split("\n")[1:] == ["  ping"]
    assert "\n" not in line(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2)), ascii=True)


# -- the sink -------------------------------------------------------------------------------


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def test_write_batch_writes_once_and_close_keeps_stream_open() -> None:
    stream = CountingStream()
    w = TextWriter(stream, linktype=LinkType.ETHERNET)
    batch = [Packet(T0 + i * 1000, ether(TCP_SYN), 54, IN, 0) for i in range(50)]
    w.write_batch(batch)
    w.write_batch([])
    assert stream.writes == 1
    lines = stream.getvalue().splitlines()
    assert len(lines) == 50
    assert lines[49] == f"12:30:45.123505 [IN   TCP] {SYN_TEXT}"
    w.flush()
    w.close()
    assert not stream.closed
    assert w.verbose is False and w.ascii is False


def test_clock_crosses_seconds_in_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    fmt = TextFormatter()
    assert fmt.clock(T0) == STAMP
    assert fmt.clock(T0 + 876_544_000) == "12:30:46.000000"
    monkeypatch.setenv("TZ", "Etc/GMT-2")  # UTC+2
    time.tzset()
    assert TextFormatter().clock(T0) == "14:30:45.123456"


async def test_session_text_output() -> None:
    out = io.StringIO()
    async with Session(text_output=out, linktype=LinkType.RAW) as session:
        session.offer(TCP_SYN, ts_ns=T0)
        session.offer(ipv4("10.0.0.2", "10.0.0.1", udp(53, 1, b"")), True, ts_ns=T0 + 1000)
    assert out.getvalue().splitlines() == [
        f"{STAMP} [IN   TCP] {SYN_TEXT}",
        "12:30:45.123457 [OUT  UDP] 10.0.0.2:53 > 10.0.0.1:1 length 0",
    ]
    assert not out.closed


def test_truncated_dns_response_line_ends_with_the_domain_marker() -> None:
    """A DNS response cut inside its answer's fixed part prints ``[|domain]``.

    Mutation: ``if pos + 10 > end: raise _Malformed`` removed from ``dns_summary``: with the
    formatter's catch-all the line turns into ``??? len=N`` (caught here); with the catch-all
    also narrowed (``_DECODE_ERRORS`` without struct.error), ``write_packet`` raises (caught
    here too)."""
    query = dns_query(0x1A2B, "example.com")
    response = dns_answer(query, [(1, bytes([93, 184, 216, 34]))])
    frame = ipv4("10.0.0.53", "10.0.0.1", udp(53, 40000, response))
    cut = frame[: len(frame) - 8]  # inside the answer's TYPE/CLASS/TTL/RDLENGTH
    assert line(cut, wire_len=len(frame)) == (
        "[IN   UDP] 10.0.0.53:53 > 10.0.0.1:40000 1a2b q: A? example.com. 1/0/0 [|domain] (45)"
    )


def test_interface_names_on_cooked_v2_frames() -> None:
    """``-i any`` frames (LINUX_SLL2) name their interface when the writer has a map."""
    out = io.StringIO()
    writer = TextWriter(out, linktype=LinkType.LINUX_SLL2, interfaces={3: "eth0"})
    writer.write_packet(T0, sll2(TCP_SYN, ifindex=3, pkttype=4))
    writer.write_packet(T0, sll2(TCP_SYN, ifindex=9))
    first, second = out.getvalue().splitlines()
    assert first.startswith(f"{STAMP} eth0 [OUT  TCP] ")
    assert second.startswith(f"{STAMP} if9 [IN   TCP] ")
    assert line(sll2(TCP_SYN, ifindex=3), linktype=LinkType.LINUX_SLL2).startswith("[IN   TCP]")
