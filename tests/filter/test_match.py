"""The Python matcher on hand-built frames: meaning of the base grammar, link types, Filter."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from _helpers import (
    ETH_ARP,
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

from capsvc._packet import LinkType
from capsvc.filter import (
    CompiledFilter,
    Filter,
    FilterCompileError,
    compile_bpf,
    parse,
    parse_filter,
)

TCP443 = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443))
UDP53 = ipv4("10.0.0.3", "10.0.0.1", udp(53, 5353))
TCP6 = ipv6("2001:db8::1", "::1", tcp(22, 40000))
ICMP = ipv4("10.0.0.2", "10.0.0.9", icmp(8))
ICMP6 = ipv6("fe80::1", "fe80::2", icmp6(128))
MAPPED = ipv6("::ffff:10.0.0.1", "::1", udp(1, 2))
LATER_FRAGMENT = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443), flags_frag=0x0004)
FIRST_FRAGMENT = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443), flags_frag=0x2000)
OPTIONS = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443), options=b"\x94\x04\x00\x00")
UDP_OTHER = ipv4("10.0.0.3", "10.0.0.1", udp(5000, 5353))


def m(expr: str, linktype: LinkType = LinkType.RAW) -> CompiledFilter:
    matcher = parse_filter(expr, linktype)
    assert matcher is not None
    return matcher


@pytest.mark.parametrize(
    ("expr", "frame", "verdict"),
    [
        ("ip", TCP443, True),
        ("ip", TCP6, False),
        ("ip6", TCP6, True),
        ("ip6", TCP443, False),
        ("tcp", TCP443, True),
        ("tcp", TCP6, True),
        ("tcp", UDP53, False),
        ("udp", UDP53, True),
        ("icmp", ICMP, True),
        ("icmp", ICMP6, False),
        ("icmp6", ICMP6, True),
        ("tcp port 443", TCP443, True),
        ("tcp port 443", UDP53, False),
        ("port 53", UDP53, True),
        ("udp port 53", UDP53, True),
        ("tcp port 53", UDP53, False),
        ("src port 53", UDP53, True),
        ("dst port 53", UDP53, False),
        ("port 22", TCP6, True),
        ("port 443", LATER_FRAGMENT, False),  # only a first fragment carries ports
        ("port 443", FIRST_FRAGMENT, True),
        ("port 443", OPTIONS, True),  # ports found past IPv4 options
        ("tcp[0:2] = 40000", OPTIONS, True),
        ("host 10.0.0.1", TCP443, True),
        ("host 10.0.0.1", UDP53, True),
        ("src host 10.0.0.1", UDP53, False),
        ("dst host 10.0.0.1", UDP53, True),
        ("src and dst host 10.0.0.1", UDP53, False),
        ("host 10.0.0.1", MAPPED, False),  # an IPv4 address tests IPv4 only
        ("host ::ffff:10.0.0.1", MAPPED, True),
        ("host ::ffff:10.0.0.1", TCP443, False),
        ("net 10.0.0.0/24", UDP53, True),
        ("net 10.0.1.0/24", UDP53, False),
        ("net 2001:db8::/32", TCP6, True),
        ("portrange 400-500", TCP443, True),
        ("portrange 444-500", TCP443, False),
        ("tcp port 443 and host 10.0.0.2", TCP443, True),
        ("tcp port 443 host 10.0.0.2", TCP443, True),  # juxtaposition is and
        # and/or have equal precedence and group from the left, as in libpcap: each row below
        # gives the other verdict if "and" bound tighter (the mutation these rows catch).
        ("udp or tcp and port 53", UDP_OTHER, False),
        ("tcp or udp and port 53", TCP443, False),
        ("tcp and port 53 or udp", UDP_OTHER, True),
        ("udp and port 53 or tcp and port 443", UDP53, False),
        ("udp or tcp and port 443", TCP443, True),
        ("(udp or tcp) and port 443", TCP443, True),
        ("udp or (tcp and port 53)", UDP_OTHER, True),
        ("not tcp", TCP443, False),
        ("not tcp and ip", UDP53, True),  # not binds tightest
        ("not (tcp and ip)", UDP53, True),
        ("not not tcp", TCP443, True),
        ("TCP PORT 443 AND NOT HOST 10.9.9.9", TCP443, True),
        ("proto 17", UDP53, True),
        ("proto tcp", TCP6, True),
        ("ip proto 6", TCP6, False),
        ("ip6 proto 6", TCP6, True),
        ("icmp[icmptype] == icmp-echo", ICMP, True),
        ("icmp[icmptype] == icmp-echoreply", ICMP, False),
        ("tcp[tcpflags] & tcp-syn != 0", TCP443, True),
        ("tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-ack", TCP443, False),
        ("less 40", TCP443, True),
        ("less 39", TCP443, False),
        ("greater 40", TCP443, True),
        ("len >= 41", TCP443, False),
        ("ip[9] = 6 and ip[2:2] = len", TCP443, True),
        ("ip[2:2] / 0x4 * 4 = 40", TCP443, True),
        ("port 0", ipv4("10.0.0.1", "10.0.0.2", udp(0, 9)), True),
        ("port http", ipv4("10.0.0.1", "10.0.0.2", tcp(1, 80)), True),
        ("port http", ipv4("10.0.0.1", "10.0.0.2", udp(1, 80)), False),  # http: TCP only
        ("port domain", UDP53, True),
        ("tcp port ssh", TCP6, True),
        ("portrange ftp-data-ftp", ipv4("10.0.0.1", "10.0.0.2", tcp(21, 1)), True),
        ("ip proto ospf", ipv4("10.0.0.1", "10.0.0.2", b"", proto=89), True),
        ("net 10", UDP53, True),
        ("net 10.0", UDP53, True),
        ("net 10.1", UDP53, False),
        ("host 0x0a000002", TCP443, True),
        ("dst host 167772162", TCP443, True),
        ("ip multicast", ipv4("10.0.0.1", "224.0.0.251", udp(5353, 5353)), True),
        ("ip multicast", TCP443, False),
        ("ip broadcast", ipv4("10.0.0.1", "255.255.255.255", udp(68, 67)), True),
        ("ip6 multicast", ipv6("fe80::1", "ff02::1", icmp6(135)), True),
        ("ip6 multicast", TCP6, False),
        ("ah", ipv4("10.0.0.1", "10.0.0.2", b"", proto=51), True),
        ("byte 9 = 6", TCP443, True),
        ("byte 0 & 0x0f", TCP443, True),
        ("byte 0 < 0x40", TCP443, False),
    ],
)
def test_meaning(expr: str, frame: bytes, verdict: bool) -> None:
    assert m(expr).match(frame) is verdict


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (LinkType.ETHERNET, ether(TCP443)),
        (LinkType.ETHERNET, ether(TCP443, vlans=(7,))),
        (LinkType.LINUX_SLL, sll(TCP443)),
        (LinkType.LINUX_SLL2, sll2(TCP443)),
        (LinkType.NULL, null(TCP443)),
        (LinkType.LOOP, null(TCP443, big_endian=True)),
        (LinkType.RAW, TCP443),
        (LinkType.IPV4, TCP443),
    ],
)
def test_every_link_type_finds_the_ip_header(linktype: LinkType, frame: bytes) -> None:
    tagged = frame[12:14] == b"\x81\x00"
    prefix = "vlan 7 and " if tagged else ""
    assert m(prefix + "tcp port 443 and host 10.0.0.2", linktype).match(frame)
    assert not m(prefix + "udp or host 10.0.0.3", linktype).match(frame)


def test_vlan_moves_later_offsets_like_libpcap() -> None:
    tagged = ether(TCP443, vlans=(100,))
    assert not m("tcp port 443", LinkType.ETHERNET).match(tagged)
    assert m("vlan and tcp port 443", LinkType.ETHERNET).match(tagged)
    assert m("vlan 100 and tcp port 443", LinkType.ETHERNET).match(tagged)
    assert not m("vlan 101 and tcp", LinkType.ETHERNET).match(tagged)
    # As in libpcap the shift applies to everything written after "vlan", even across "or".
    assert not m("vlan 5 or tcp", LinkType.ETHERNET).match(ether(TCP443))


def test_arp_and_ether_primitives() -> None:
    frame = ether(
        arp(1, "02:00:00:00:00:0a", "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"),
        ethertype=ETH_ARP,
        src="02:00:00:00:00:0a",
        dst="ff:ff:ff:ff:ff:ff",
    )
    e = LinkType.ETHERNET
    assert m("arp", e).match(frame)
    assert m("host 10.0.0.2", e).match(frame)  # host covers ARP, as in tcpdump
    assert not m("ip host 10.0.0.2", e).match(frame)
    assert m("arp src host 10.0.0.1", e).match(frame)
    assert m("ether src 02:00:00:00:00:0a and ether dst ff:ff:ff:ff:ff:ff", e).match(frame)
    assert m("ether proto arp", e).match(frame)
    assert not m("ether host 02:00:00:00:00:0b", e).match(frame)


def test_too_short_frames_do_not_match_and_not_follows_libpcap() -> None:
    short = TCP443[:21]  # the IP header ends early: no ports
    assert not m("port 443").match(short)
    assert not m("not port 443").match(short)  # libpcap rejects the frame outright
    assert not m("not tcp port 443 or ip").match(short)
    assert m("ip").match(short)
    assert not m("tcp").match(b"")
    assert m("not ip6").match(TCP443[:1])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_match_never_raises(data: bytes) -> None:
    for linktype, expr in (
        (LinkType.RAW, "tcp port 443 or (udp and ip[ip[0] & 0xf] / (ip[1] & 3) > 2)"),
        (LinkType.ETHERNET, "vlan and not (host 10.0.0.1 or net fe80::/10) or tcp[tcp[12]:4] = 1"),
        (LinkType.LINUX_SLL2, "not (icmp6[icmp6type] = 128 or ip[2:2] << ip[0] > len)"),
        (LinkType.NULL, "not portrange 1-1000 and len - 10 > ip[8:4] % (ip[9] - 6)"),
    ):
        # A bool, not merely something that compares equal to one (0, None, 1 would pass an
        # "in (True, False)" check).
        assert type(m(expr, linktype).match(data)) is bool
        assert type(m(expr, linktype).match(data, len(data) + 100)) is bool
    assert type(m("not tcp").match(memoryview(data))) is bool


def test_matcher_exposes_its_source_and_is_cheap_to_call() -> None:
    matcher = m("tcp port 443", LinkType.ETHERNET)
    assert "def match(d, n=None)" in matcher.source
    assert "n is None" not in matcher.source  # the wire length costs only where it is read
    assert not matcher.wire_length
    assert "for " not in matcher.source  # no loops: straight-line byte tests
    assert matcher.match is matcher.match  # a plain function attribute, no bound method
    assert repr(matcher) == "CompiledFilter('tcp port 443', ETHERNET)"


def test_filter_criteria() -> None:
    assert Filter().is_empty()
    assert Filter().match(b"")
    f = Filter(src_ip="10.0.0.1", dst_port=443, proto=6)
    assert not f.is_empty()
    assert str(f) == "src host 10.0.0.1 and dst port 443 and proto 6"
    assert f.match(TCP443)
    assert not f.match(UDP53)
    assert Filter(host=ipaddress.ip_address("10.0.0.1"), port=53).match(UDP53)
    assert Filter(dst_ip=ipaddress.IPv6Address("::1")).match(TCP6)
    assert not Filter(src_port=1).match(TCP443)
    assert Filter(port=443, linktype=LinkType.ETHERNET).match(ether(TCP443))
    with pytest.raises(ValueError, match="invalid address"):
        Filter(src_ip="10.0.0.256")
    with pytest.raises(ValueError, match="outside 1-65535"):
        Filter(port=70000)


def test_long_chains_of_alternatives() -> None:
    # Block lists are long "or" chains: no recursion limit, and the meaning holds at the end.
    hosts = [f"10.{i // 250}.{i % 250}.1" for i in range(3000)]
    expr = " or ".join(f"host {h}" for h in hosts)
    node = parse(expr)
    assert node is not None
    assert parse(str(node)) == node
    matcher = m(expr, LinkType.ETHERNET)
    last = ether(ipv4("172.16.0.1", hosts[-1], udp(1, 2)))
    assert matcher.match(last)
    assert not matcher.match(ether(ipv4("172.16.0.1", "10.99.0.1", udp(1, 2))))
    with pytest.raises(FilterCompileError, match="limit of 4096"):
        compile_bpf(expr)
    program = compile_bpf(" or ".join(f"host {h}" for h in hosts[:300]))
    assert 1000 < len(program) <= 4096


@pytest.mark.parametrize(
    "linktype", [LinkType.ETHERNET, LinkType.RAW, LinkType.LINUX_SLL2], ids=lambda lt: lt.name
)
def test_compact_code_means_the_same(linktype: LinkType, monkeypatch: pytest.MonkeyPatch) -> None:
    # Large expressions get compact code (fields and repeated tests read once, up front, with a
    # stand-in for what a short frame lacks): the same verdict as the plain code on every frame,
    # truncated ones included, and "too short" exactly where the plain code says so.
    from _exprs import LARGE
    from _packets import frames

    from capsvc.filter import _codegen as _match
    from capsvc.filter._lower import lower

    pk, _ = frames(linktype, 300, seed=5)
    pk += [p[:cut] for p in pk[:60] for cut in range(0, len(p), 3)]
    for expr in LARGE:
        node = parse(expr)
        assert node is not None
        formula = lower(node, linktype, expr)
        compact, compact_match = _match.build(formula, on_short="None")
        monkeypatch.setattr(_match, "COMPACT_ABOVE", 10**9)
        plain, plain_match = _match.build(formula, on_short="None")
        monkeypatch.undo()
        assert "_short" not in plain
        if "_short" not in compact:
            continue  # simplified below the size of compact code
        for p in pk:
            assert compact_match(p) == plain_match(p), (expr, p.hex())


def test_len_is_the_wire_length() -> None:
    """libpcap's len is the original length: a frame cut to 60 bytes of a 1500-byte packet is
    "greater 100". Mutation: len reading len(frame)."""
    whole = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"z" * 1400)))
    cut = whole[:60]
    e = LinkType.ETHERNET
    for expr, verdict in (
        ("greater 100", True),
        ("less 100", False),
        (f"len = {len(whole)}", True),
        ("length > 1000 and udp", True),
        ("len - 14 = ip[2:2]", True),
    ):
        matcher = m(expr, e)
        assert matcher.wire_length
        assert matcher.match(cut, len(whole)) is verdict, expr
        assert matcher.match(whole) is verdict, expr
        assert matcher.match(cut) is not verdict or expr.startswith("len -"), expr
    assert m("greater 100", e).match(cut) is False  # without a wire length: the bytes given
    assert Filter(port=2, linktype=e).match(cut, len(whole))


def _radiotap(frame: bytes, hdrlen: int, padded: bool = False) -> bytes:
    """A radiotap header of 17 bytes (TSFT and flags) before an 802.11 frame; with the
    data-padding flag, the frame body starts at the next multiple of 4 of the packet."""
    flags = 0x20 if padded else 0
    if padded:
        end = 17 + hdrlen
        frame = frame[:hdrlen] + b"\0" * (-end % 4) + frame[hdrlen:]
    return struct.pack("<BBHI", 0, 0, 17, 0x03) + bytes(8) + bytes([flags]) + frame


def _wlan_data(payload: bytes, ethertype: int, qos: bool, fc1: int = 0x01) -> bytes:
    fc0 = 0x88 if qos else 0x08
    head = bytes([fc0, fc1, 0, 0]) + bytes.fromhex("123456789abc02000000000a02000000000b")
    head += b"\0\0" + (b"\0\0" if qos else b"")
    return head + b"\xaa\xaa\x03\0\0\0" + struct.pack("!H", ethertype) + payload


@pytest.mark.parametrize("qos", [False, True], ids=["data", "qos-data"])
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_802_11_finds_the_ip_header(qos: bool, padded: bool) -> None:
    """The payload offset follows the QoS field and radiotap's data padding (a QoS header of
    26 bytes is padded to 28). Mutation: a fixed 24-byte header."""
    inner = _wlan_data(TCP443, 0x0800, qos)
    for linktype, frame in (
        (LinkType.IEEE802_11, inner),
        (LinkType.IEEE802_11_RADIO, _radiotap(inner, 26 if qos else 24, padded)),
    ):
        assert m("tcp port 443 and host 10.0.0.2", linktype).match(frame)
        assert m("wlan addr1 12:34:56:78:9a:bc and wlan type data", linktype).match(frame)
        assert m("wlan src 02:00:00:00:00:0a", linktype).match(frame)  # ToDS: SA is addr2
        assert not m("udp or ip6 or wlan addr1 02:00:00:00:00:0a", linktype).match(frame)


@pytest.mark.parametrize(
    ("linktype", "head"),
    [
        (LinkType.PPP, b"\xff\x03\x00\x21"),
        (LinkType.PPP_HDLC, b"\xff\x03\x00\x21"),
        (LinkType.C_HDLC, b"\x0f\x00\x08\x00"),
        # libpcap reads SLIP's IP version from the first byte of the SLIP header, not of the
        # packet (capsvc keeps its meaning); 0x40 there makes every IP test possible.
        (LinkType.SLIP, b"\x40" + bytes(15)),
    ],
)
def test_serial_links_find_the_ip_header(linktype: LinkType, head: bytes) -> None:
    assert m("tcp port 443 and host 10.0.0.2 and ip", linktype).match(head + TCP443)
    assert not m("udp or ip6", linktype).match(head + TCP443)


def test_slip_direction_and_libpcaps_version_byte() -> None:
    inbound = bytes(16) + TCP443
    assert m("inbound", LinkType.SLIP).match(inbound)
    assert not m("outbound", LinkType.SLIP).match(inbound)
    assert not m("ip", LinkType.SLIP).match(inbound)  # libpcap: the direction byte is not 4x


def test_link_types_without_these_primitives_say_so() -> None:
    with pytest.raises(FilterCompileError, match="NFLOG"):
        parse_filter("ip", LinkType.NFLOG)
    assert m("len > 10", LinkType.NFLOG).match(bytes(20))
    with pytest.raises(FilterCompileError, match="filters are not supported on link type FRELAY"):
        parse_filter("ip", LinkType.FRELAY)
    with pytest.raises(FilterCompileError, match="live capture"):
        parse_filter("inbound", LinkType.ETHERNET)  # only a kernel filter knows the direction
    assert compile_bpf("inbound", LinkType.ETHERNET)  # ... and it does: [type]


def test_protochain_walks_the_headers_as_libpcap_and_has_no_kernel_program() -> None:
    """The matcher walks IPv6 extension headers and AH (libpcap's verdicts on such chains are
    the differential test's); a kernel program cannot loop, so ``compile_bpf`` says so; on
    802.11, where the header's length varies, libpcap refuses it and so does capsvc."""
    hop = (0, b"\x01\x04\x00\x00\x00\x00")
    chained = ipv6("2001:db8::1", "2001:db8::2", tcp(1, 2), nh=6, ext=(hop, (44, bytes(6))))
    assert m_any("ip6 protochain 6").match(chained)
    assert m_any("protochain 6").match(chained)
    assert m_any("ip6 protochain 44").match(chained)  # the walk stops where it is found
    assert not m_any("ip6 protochain 17").match(chained)
    assert not m_any("ip6 proto 6").match(chained)  # proto skips one fragment header only
    assert not m_any("ip6 protochain 6").match(chained[:48])  # the walk reads past the end
    with pytest.raises(FilterCompileError, match="a kernel program cannot"):
        compile_bpf("ip protochain 6", LinkType.RAW)
    with pytest.raises(FilterCompileError, match="variable length headers"):
        parse_filter("protochain 6", LinkType.IEEE802_11)


def m_any(expr: str) -> CompiledFilter:
    matcher = parse_filter(expr, LinkType.RAW)
    assert matcher is not None
    return matcher


def _geneve(proto: int, inner: bytes, vni: int = 12345, options: bytes = b"") -> bytes:
    head = struct.pack("!BBHI", len(options) // 4, 0, proto, vni << 8) + options
    return ipv4("10.0.0.1", "10.0.0.2", udp(4000, 6081, head + inner))


def test_geneve_looks_inside_the_tunnel_as_libpcap() -> None:
    """After ``geneve`` the rest of its ``and`` chain reads the packet inside: an Ethernet
    frame (protocol type 0x6558) or a packet the protocol type names, past any options
    (libpcap's verdicts are the differential test's). What libpcap would read through
    registers set only when the tunnel matched (a primitive outside that chain) is refused."""
    inner = bytes(ipv4("10.9.0.1", "10.9.0.2", tcp(1000, 80)))
    bridged = _geneve(0x6558, bytes(ether(inner)), options=bytes(8))
    routed = _geneve(0x0800, inner, vni=5)
    for frame in (bridged, routed):
        assert m_any("geneve and ip and tcp port 80").match(frame)
        assert m_any("geneve and host 10.9.0.2").match(frame)
        assert not m_any("geneve and host 10.0.0.2").match(frame)  # the outer address
        assert not m_any("geneve and udp").match(frame)
    assert m_any("geneve 12345").match(bridged) and not m_any("geneve 12345").match(routed)
    assert not m_any("geneve").match(ipv4("10.0.0.1", "10.0.0.2", udp(6081, 4000, bytes(16))))
    for expr in ("geneve or ip", "(geneve and ip) or tcp", "not geneve and ip"):
        with pytest.raises(FilterCompileError, match="in its 'and' chain"):
            parse_filter(expr, LinkType.RAW)
    with pytest.raises(FilterCompileError, match="after 'geneve'"):
        parse_filter("geneve and ether host 1:2:3:4:5:6", LinkType.ETHERNET)
    assert len(compile_bpf("geneve and ip and tcp port 80", LinkType.ETHERNET)) < 150
