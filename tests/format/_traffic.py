"""Everyday traffic written to capture files, for comparing capsvc's text with tcpdump's.

The corpora beside the project are mostly malformed packets; these files hold the ordinary
ones: a TCP connection carrying HTTP (handshake, request, response, SACK, FIN, RST), DNS
queries and answers of the common types, ICMP and ICMPv6 (echo, errors quoting UDP and TCP,
neighbour discovery), ARP, VLAN and QinQ tags, IPv4 fragments, IPv6 over TCP and UDP, frames
cut by a snapshot length, an unknown ethertype and an unknown IP protocol; and the same kind of
packets over Linux cooked v2 (``-i any``) and BSD loopback headers.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from _helpers import (
    ETH_ARP,
    arp,
    ether,
    icmp,
    icmp6,
    ipv4,
    ipv6,
    null,
    sll2,
    tcp,
    udp,
)

PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")
#: The first packet's time: 2024-05-01 12:00:00 UTC.
START = 1714564800


def write_pcap(
    path: Path, linktype: int, frames: list[tuple[bytes, int]], snaplen: int = 65535
) -> Path:
    """Write ``(captured bytes, wire length)`` frames as a microsecond pcap, 1.25 ms apart
    (with one jump of 2 hours, so delta time stamps show hours)."""
    out = [PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, (data, wire) in enumerate(frames):
        usec = START * 1_000_000 + i * 1250 + (7_200_000_000 if i >= len(frames) - 2 else 0)
        out.append(PCAP_RECORD.pack(usec // 1_000_000, usec % 1_000_000, len(data), wire))
        out.append(data)
    path.write_bytes(b"".join(out))
    return path


def _name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


def dns_query(
    ident: int, name: str, qtype: int = 1, *, flags: int = 0x0100, extra: bytes = b""
) -> bytes:
    """A DNS query for ``name``; ``extra`` is an additional-section record (EDNS OPT)."""
    header = struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 1 if extra else 0)
    return header + _name(name) + struct.pack("!HH", qtype, 1) + extra


def dns_answer(
    ident: int,
    name: str,
    qtype: int,
    answers: list[tuple[int, bytes]],
    *,
    rcode: int = 0,
    flags: int = 0x8180,
) -> bytes:
    """A DNS response to ``name``/``qtype``: answers of (type, rdata), names compressed."""
    header = struct.pack("!HHHHHH", ident, flags | rcode, 1, len(answers), 0, 0)
    body = _name(name) + struct.pack("!HH", qtype, 1)
    for rtype, rdata in answers:
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    return header + body


_OPT = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
_TS = b"\x01\x01\x08\x0a" + struct.pack("!II", 1000, 2000)
_SYN_OPTS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + struct.pack("!II", 1000, 0) + b"\x01\x03\x03\x07"
A, B = "10.0.0.1", "10.0.0.2"
A6, B6 = "fd00::1", "fd00::2"


def _http_connection() -> list[bytes]:
    c, s = 1_000_000, 3_000_000_000
    req = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    sack = b"\x01\x01\x05\x0a" + struct.pack("!II", s + 1 + 100, s + 1 + 200)
    return [
        ipv4(A, B, tcp(40000, 80, flags="S", seq=c, win=64240, options=_SYN_OPTS)),
        ipv4(B, A, tcp(80, 40000, flags="SA", seq=s, ack=c + 1, win=65160, options=_SYN_OPTS)),
        ipv4(A, B, tcp(40000, 80, flags="A", seq=c + 1, ack=s + 1, win=502, options=_TS)),
        ipv4(A, B, tcp(40000, 80, req, flags="PA", seq=c + 1, ack=s + 1, win=502, options=_TS)),
        ipv4(
            B,
            A,
            tcp(80, 40000, resp, flags="PA", seq=s + 1, ack=c + 1 + len(req), win=509, options=_TS),
        ),
        ipv4(
            A,
            B,
            tcp(
                40000,
                80,
                flags="A",
                seq=c + 1 + len(req),
                ack=s + 1,
                win=502,
                options=b"\x01\x01" + sack,
            ),
        ),
        ipv4(
            A,
            B,
            tcp(
                40000,
                80,
                b"x" * 10,
                flags="PA",
                seq=c + 1 + len(req),
                ack=s + 1 + len(resp),
                win=502,
                options=_TS,
            ),
        ),
        ipv4(
            A, B, tcp(40000, 80, flags="FA", seq=c + 11 + len(req), ack=s + 1 + len(resp), win=502)
        ),
        ipv4(B, A, tcp(80, 40000, flags="R", seq=s + 1 + len(resp))),
        ipv4(A, B, tcp(40001, 8080, b"POST /x HTTP/1.0\r\n\r\n", flags="PUA", seq=5, ack=6, urg=3)),
        ipv4(A, B, tcp(40002, 443, b"\x16\x03\x01", flags="PECA", seq=7, ack=8)),
        ipv4(
            A,
            B,
            tcp(
                53000,
                53,
                struct.pack("!H", 29) + dns_query(7, "example.com"),
                flags="PA",
                seq=9,
                ack=10,
            ),
        ),
    ]


def _dns() -> list[bytes]:
    out = []
    a = [(1, socket.inet_aton("93.184.216.34")), (1, socket.inet_aton("93.184.216.35"))]
    cname = [(5, _name("www.example.net")), (1, socket.inet_aton("1.2.3.4"))]
    mx = [(15, struct.pack("!H", 10) + _name("mail.example.com"))]
    txt = [(16, b"\x05hello\x05world")]
    aaaa = [(28, socket.inet_pton(socket.AF_INET6, "2001:db8::1"))]
    srv = [(33, struct.pack("!HHH", 1, 2, 5060) + _name("sip.example.com"))]
    ptr = [(12, _name("host.example.com"))]
    queries = [
        (1, "example.com", 1, a, 0),
        (2, "www.example.com", 1, cname, 0),
        (3, "example.com", 15, mx, 0),
        (4, "example.com", 16, txt, 0),
        (5, "example.com", 28, aaaa, 0),
        (6, "_sip._udp.example.com", 33, srv, 0),
        (7, "4.3.2.1.in-addr.arpa", 12, ptr, 0),
        (8, "nope.example.com", 1, [], 3),
    ]
    for ident, name, qtype, answers, rcode in queries:
        out.append(
            ipv4(A, "9.9.9.9", udp(50000 + ident, 53, dns_query(ident, name, qtype, extra=_OPT)))
        )
        out.append(
            ipv4(
                "9.9.9.9",
                A,
                udp(53, 50000 + ident, dns_answer(ident, name, qtype, answers, rcode=rcode)),
            )
        )
    out.append(ipv6(A6, "2620:fe::9", udp(40000, 53, dns_query(4660, "example.com", flags=0x0110))))
    out.append(ipv4(A, "224.0.0.251", udp(5353, 5353, dns_query(0, "printer.local", 12, flags=0))))
    out.append(ipv4(A, "9.9.9.9", udp(50100, 53, b"\x12\x34\x01")))
    return out


def _icmp_and_more() -> list[bytes]:
    inner_udp = ipv4(A, B, udp(40000, 9999, b"data"))
    inner_tcp = ipv4(A, B, tcp(40000, 22, flags="S"))
    inner6 = ipv6(A6, B6, udp(40000, 9999, b"data"))
    ns = (
        struct.pack("!I", 0)
        + socket.inet_pton(socket.AF_INET6, B6)
        + b"\x01\x01"
        + bytes.fromhex("02000000000a")
    )
    na = struct.pack("!I", 0x60000000) + socket.inet_pton(socket.AF_INET6, B6)
    return [
        ipv4(A, B, icmp(8, 0, 77, 1, b"ping" * 14)),
        ipv4(B, A, icmp(0, 0, 77, 1, b"ping" * 14)),
        ipv4(B, A, icmp(3, 3, 0, 0, inner_udp[:28])),
        ipv4(B, A, icmp(3, 3, 0, 0, inner_tcp[:28])),
        ipv4(B, A, icmp(3, 1, 0, 0, inner_udp[:28])),
        ipv4(B, A, icmp(3, 4, 0, 1400, inner_udp[:28])),
        ipv4("192.0.2.1", A, icmp(11, 0, 0, 0, inner_udp[:28])),
        ipv4(B, A, icmp(5, 1, 0x0A00, 0x0063, inner_udp[:28])),
        ipv4(A, B, icmp(13, 0, 5, 6, bytes(12))),
        ipv6(A6, B6, icmp6(128, 0, 9, 2, b"abcd")),
        ipv6(B6, A6, icmp6(129, 0, 9, 2, b"abcd")),
        ipv6(A6, "ff02::1:ff00:2", icmp6(135, 0, 0, 0, ns[4:]), hlim=255),
        ipv6(B6, A6, icmp6(136, 0, 0x6000, 0, na[4:]), hlim=255),
        ipv6(B6, A6, icmp6(1, 4, 0, 0, inner6[:48])),
        ipv6(B6, A6, icmp6(2, 0, 0, 1280, inner6[:48])),
        ipv6(B6, A6, icmp6(3, 0, 0, 0, inner6[:48])),
        ipv6(A6, B6, tcp(40000, 80, flags="S", seq=42, options=_SYN_OPTS)),
        ipv6(A6, B6, udp(40000, 9999, b"hello")),
        ipv6(A6, B6, udp(40000, 9999, b"hello"), ext=((0, b"\x01\x00\x00\x00"),)),
        ipv4(A, B, udp(40000, 9999, b"hello" * 3)),
        ipv4(A, B, b"\x01" * 24, proto=253),
        ipv4(A, B, udp(40000, 9999, b"a" * 40)[:24], flags_frag=0x2000, ident=99),
        ipv4(A, B, b"a" * 24, proto=17, flags_frag=3, ident=99),
        ipv4(
            A, B, tcp(40000, 80, flags="A", seq=1, ack=1, options=b"\x01\x01\x13\x12" + bytes(16))
        ),
        ipv4(A, B, tcp(40000, 80, flags="A", seq=1, ack=1, options=b"\x1e\x04\x20\x01")),
    ]


def _frames() -> list[tuple[bytes, int]]:
    frames: list[tuple[bytes, int]] = []
    for packet in _http_connection() + _dns() + _icmp_and_more():
        frame = ether(packet)
        frames.append((frame, len(frame)))
    for vlans in ((100,), (100, 200)):
        frame = ether(ipv4(A, B, udp(40000, 9999, b"tagged")), vlans=vlans)
        frames.append((frame, len(frame)))
    req = arp(1, "02:00:00:00:00:0a", A, "00:00:00:00:00:00", B)
    rep = arp(2, "02:00:00:00:00:0b", B, "02:00:00:00:00:0a", A)
    for body in (req, rep):
        frame = ether(body + bytes(18), ethertype=ETH_ARP, dst="ff:ff:ff:ff:ff:ff")
        frames.append((frame, len(frame)))
    frame = ether(b"\x00\x01" * 23, ethertype=0x88B5)
    frames.append((frame, len(frame)))
    cut = [
        ether(
            ipv4(
                A,
                B,
                tcp(
                    40000,
                    80,
                    b"GET /long/path HTTP/1.1\r\nHost: x\r\n\r\n",
                    flags="PA",
                    seq=1,
                    ack=1,
                ),
            )
        ),
        ether(
            ipv4(
                "9.9.9.9",
                A,
                udp(53, 50001, dns_answer(1, "example.com", 1, [(1, b"\x01\x02\x03\x04")])),
            )
        ),
        ether(ipv4(A, B, tcp(40000, 80, flags="S", options=_SYN_OPTS))),
    ]
    for frame, keep in zip(cut, (70, 60, 40), strict=True):
        frames.append((frame[:keep], len(frame)))
    return frames


def ethernet_file(folder: Path) -> Path:
    """The Ethernet capture of everyday traffic."""
    return write_pcap(folder / "everyday.pcap", 1, _frames())


def cooked_file(folder: Path) -> Path:
    """Linux cooked v2 frames (as ``-i any`` captures) on interface 1 (lo) and an unknown one,
    in and out; and ARP."""
    frames = []
    for ifindex, pkttype in ((1, 0), (1, 4), (987654, 0), (1, 1), (1, 2)):
        frame = sll2(ipv4(A, B, udp(40000, 9999, b"any")), ifindex=ifindex, pkttype=pkttype)
        frames.append((frame, len(frame)))
    frame = sll2(arp(1, "02:00:00:00:00:0a", A, "00:00:00:00:00:00", B), protocol=ETH_ARP)
    frames.append((frame, len(frame)))
    frame = sll2(ipv6(A6, B6, tcp(1, 2, flags="S")))
    frames.append((frame, len(frame)))
    return write_pcap(folder / "cooked.pcap", 276, frames)


def loopback_file(folder: Path) -> Path:
    """BSD loopback frames of IPv4 and IPv6."""
    frames = []
    for packet in (ipv4(A, B, udp(1, 2, b"x")), ipv6(A6, B6, icmp6(128, 0, 1, 1, b"y"))):
        frame = null(packet)
        frames.append((frame, len(frame)))
    return write_pcap(folder / "loopback.pcap", 0, frames)
