"""Hand-built ARCNET frames (no corpus file has BSD's link type 7): every protocol id tcpdump
follows, RFC 1051's header and RFC 1201's (split flag, sequence number), a split packet's
first and middle fragments, exception packets, unknown ids; and the same packets behind
Linux's header (which has no exception or fragment forms: Linux hands over whole packets).
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from _helpers import icmp, icmp6, ipv4, ipv6, tcp, udp

#: An ICMP echo request, a UDP datagram to port 53 and a TCP SYN, in IPv4; an ICMPv6 echo.
PING = ipv4("10.0.0.1", "10.0.0.2", icmp(ident=4660, payload=b"abcdefgh"))
DNS = ipv4("10.0.0.1", "10.0.0.2", udp(1234, 53, bytes.fromhex("000101000001000000000000")))
SYN = ipv4("10.0.0.2", "10.0.0.1", tcp(40000, 80))
PING6 = ipv6("fe80::1", "fe80::2", icmp6(payload=b"hi!!"))
#: An IPX packet to socket 0x0451 (NCP) with 10 bytes of payload.
IPX = b"\xff\xff\x00\x28\x00\x11" + bytes(10) + b"\x04\x51" + bytes(10) + b"\x40\x00" + b"x" * 10


def arcnet_arp(op: int) -> bytes:
    """ARP for ARCNET (hardware type 7, 1-byte addresses) and IPv4: 01/10.0.0.1 asks for
    10.0.0.2 (op 1), replies (2), asks RARP (3)."""
    sender, target = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
    return struct.pack("!HHBBH", 7, 0x0800, 1, 4, op) + b"\x01" + sender + b"\x00" + target


def _rfc1201(
    proto: int, flag: int, seqid: int, payload: bytes, src: int = 1, dst: int = 2
) -> bytes:
    return bytes((src, dst, proto, flag)) + seqid.to_bytes(2, "big") + payload


def _exception(proto: int, flag: int, seqid: int, payload: bytes) -> bytes:
    return bytes((1, 2, proto, 0xFF, 0xFF, 0xFF, proto, flag)) + seqid.to_bytes(2, "big") + payload


def arcnet_frames() -> list[bytes]:
    """Frames with BSD's header (LINKTYPE_ARCNET)."""
    return [
        _rfc1201(0xD4, 0, 0x1234, PING),
        b"\x01\xff\xf0" + PING,  # RFC 1051 IP, to the broadcast address
        _rfc1201(0xD4, 0, 0x0001, DNS),
        _rfc1201(0xD4, 0, 0x0002, SYN, src=2, dst=1),
        _rfc1201(0xD5, 0, 0x0007, arcnet_arp(1)),
        _rfc1201(0xD5, 0, 0x0008, arcnet_arp(2), src=2, dst=1),
        _rfc1201(0xD6, 0, 0x0009, arcnet_arp(3)),
        b"\x01\xff\xf1" + arcnet_arp(1),  # RFC 1051 ARP
        _rfc1201(0xC4, 0, 0xABCD, PING6),
        _rfc1201(0xFA, 0, 0x0003, IPX),
        _rfc1201(0xD4, 1, 0x0010, PING),  # first of 2 fragments
        _rfc1201(0xD4, 3, 0x0011, PING),  # first of 3
        _rfc1201(0xD4, 2, 0x0010, b"y" * 30),  # fragment 2
        _rfc1201(0xD4, 4, 0x0011, b"z" * 30),  # fragment 3
        _exception(0xD4, 0, 0x0022, PING),
        _exception(0xD4, 1, 0x0023, PING),  # an exception packet's first fragment
        _exception(0xD4, 2, 0x0023, b"q" * 20),
        _rfc1201(0x42, 0, 0x0001, b"unknown protocol id"),
        _rfc1201(0xF7, 0, 0x0001, b"banyan"),  # named, not followed
        _rfc1201(0x42, 0, 0x0001, b""),  # nothing after the header
        b"\x01\x02\x80diagnostics",  # RFC 1051 header, not followed
    ]


def arcnet_linux_frames() -> list[bytes]:
    """The same packets behind Linux's header (LINKTYPE_ARCNET_LINUX): the 2-byte offset after
    the addresses; no exception packets."""
    return [f[:2] + b"\x00\x00" + f[2:] for f in arcnet_frames() if f[3:4] != b"\xff"]


def write_cuts(path: Path, linktype: int, frames: list[bytes]) -> Path:
    """A pcap file of every prefix of every frame (the empty one left out), wire length kept."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, frame in enumerate(frames):
            for n in range(1, len(frame) + 1):
                f.write(struct.pack("<IIII", 1000 + i, n, n, len(frame)) + frame[:n])
    return path
