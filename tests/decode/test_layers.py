"""Decoded layers for applications: ``Packet.decode`` (dpkt's objects by link type) and
``Packet.addresses`` (capsvc's own reading, no objects), checked against each other on built
frames of every link type they share and on the real corpus."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import dpkt
import pytest
from _helpers import ether, ipv4, ipv6, null, sll, sll2, tcp, udp

from capsvc import DecodeError, Direction, LinkType, Packet
from capsvc.decode import DPKT_LINKTYPES, NO_PORT, Endpoints, addresses, layers
from capsvc.sources.capfile._source import read_capture

TCP4 = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443, b"hello", flags="PA"))
UDP6 = ipv6("2001:db8::1", "2001:db8::2", udp(5353, 53, b"q"))


def packet(data: bytes) -> Packet:
    return Packet(1, data, len(data), Direction.INBOUND, 0)


@pytest.mark.parametrize(
    ("linktype", "frame", "outer"),
    [
        (LinkType.ETHERNET, ether(TCP4), dpkt.ethernet.Ethernet),
        (LinkType.RAW, TCP4, dpkt.ip.IP),
        (LinkType.RAW, UDP6, dpkt.ip6.IP6),
        (LinkType.IPV4, TCP4, dpkt.ip.IP),
        (LinkType.IPV6, UDP6, dpkt.ip6.IP6),
        (LinkType.LINUX_SLL, sll(TCP4), dpkt.sll.SLL),
        (LinkType.LINUX_SLL2, sll2(UDP6), dpkt.sll2.SLL2),
        (LinkType.NULL, null(TCP4), dpkt.loopback.Loopback),
        (LinkType.LOOP, null(TCP4, big_endian=True), dpkt.loopback.Loopback),
        (LinkType.PPP_HDLC, b"\xff\x03\x00\x21" + TCP4, dpkt.ppp.PPP),
        (LinkType.PPP, b"\xff\x03\x00\x21" + TCP4, dpkt.ppp.PPP),
        (LinkType.PPP, b"\x00\x21" + TCP4, dpkt.pppoe.PPP),
    ],
)
def test_decode_gives_dpkt_layers_for_the_link_type(
    linktype: LinkType, frame: bytes, outer: type
) -> None:
    top = packet(frame).decode(linktype)
    assert type(top) is outer
    ip: Any = top
    while not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
        ip = ip.data
    transport = ip.data
    ends = packet(frame).addresses(linktype)
    assert ends is not None
    assert (ends.src, ends.dst) == (bytes(ip.src), bytes(ip.dst))
    assert (ends.sport, ends.dport) == (transport.sport, transport.dport)
    assert ends.protocol == (6 if isinstance(transport, dpkt.tcp.TCP) else 17)
    whole: Any = top
    assert bytes(layers(frame, linktype)) == bytes(whole)  # the function is the method


def test_decode_reaches_the_payload() -> None:
    eth = packet(ether(TCP4)).decode(LinkType.ETHERNET)
    assert socket.inet_ntoa(eth.data.src) == "10.0.0.1"
    assert eth.data.data.dport == 443 and eth.data.data.data == b"hello"


@pytest.mark.parametrize(
    ("linktype", "frame", "message"),
    [
        (LinkType.ETHERNET, b"\x00" * 5, "not a ETHERNET frame dpkt can unpack"),
        (LinkType.RAW, b"\x50" + b"\x00" * 30, "IP version 5"),
        (LinkType.RAW, b"", "IP version 0"),
        (LinkType.IPV4, TCP4[:12], "not a IPV4 frame"),
        (LinkType(147), TCP4, "dpkt has no decoder for link type LINKTYPE_147"),
        (LinkType.NFLOG, TCP4, "dpkt has no decoder for link type NFLOG"),
    ],
)
def test_decode_errors_are_decode_errors(linktype: LinkType, frame: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        packet(frame).decode(linktype)
    assert issubclass(DecodeError, ValueError)


def test_addresses_of_frames_without_ip_or_ports() -> None:
    arp = ether(b"\x00\x01" + b"\x00" * 26, ethertype=0x0806)
    assert packet(arp).addresses(LinkType.ETHERNET) is None
    assert packet(b"\x60").addresses(LinkType.RAW) is None  # cut short: None, never raises
    icmp = ipv4("10.0.0.1", "10.0.0.9", b"\x08\x00" + b"\x00" * 6, proto=1)
    ends = addresses(icmp, LinkType.RAW)
    assert ends == Endpoints(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 9]), 1, NO_PORT, NO_PORT)
    assert ends.src_ip == ipaddress.ip_address("10.0.0.1")
    six = addresses(packet(UDP6), LinkType.RAW)
    assert six is not None and six.dst_ip == ipaddress.ip_address("2001:db8::2")


def test_decode_and_addresses_agree_on_the_corpus(corpus: Path) -> None:
    """dpkt is the oracle for capsvc's own reading wherever both see an unfragmented TCP or
    UDP packet in a real capture of a link type both decode."""
    compared = 0
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    for path in files:
        try:
            capture = read_capture(path)
        except Exception:
            continue
        with capture:
            linktype = capture.linktype
            if linktype not in DPKT_LINKTYPES or linktype in (
                LinkType.IEEE802_11,
                LinkType.IEEE802_11_RADIO,
            ):
                continue
            for batch in capture:
                for p in batch[:200]:
                    compared += _agree(p, linktype, path.name)
    assert compared > 1000  # the corpus was read, not skipped


def _agree(p: Packet, linktype: LinkType, name: str) -> int:
    try:
        top = p.decode(linktype)
    except DecodeError:
        return 0
    ip: Any = top
    for _ in range(4):  # through VLAN tags, cooked headers, PPP
        if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not hasattr(ip, "data"):
            break
        ip = ip.data
    if isinstance(top, dpkt.ethernet.Ethernet) and top.type not in (0x0800, 0x86DD, 0x8100):
        return 0  # MPLS, PPPoE and friends: dpkt goes where capsvc's reading stops
    if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
        return 0
    transport = ip.data
    if not isinstance(transport, dpkt.tcp.TCP | dpkt.udp.UDP):
        return 0
    if isinstance(ip, dpkt.ip.IP) and (ip.offset or ip.hl < 5):
        return 0
    ends = p.addresses(linktype)
    if ends is None or ends.sport == NO_PORT:
        return 0  # capsvc is stricter than dpkt about cut headers (tshark's rules)
    assert (ends.src, ends.dst) == (bytes(ip.src), bytes(ip.dst)), name
    assert (ends.sport, ends.dport) == (transport.sport, transport.dport), name
    return 1
