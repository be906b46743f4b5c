"""Builders of real packets (with correct checksums) for the tests, and the test network.

Every builder returns bytes of one layer with what follows it; compose them:
``ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, flags="PA", payload=b"GET /")))``.
The network helpers live in tests/netns.py and are re-exported here.
"""

from __future__ import annotations

import io
import ipaddress
import os
import socket
import struct
from pathlib import Path

#: The real-world capture corpus beside the project (../shared/pcaps); may be absent.
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "pcaps"

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132

ETH_IP = 0x0800
ETH_IP6 = 0x86DD
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"

_TCP_FLAG_BITS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
}


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac(text: str) -> bytes:
    """``"02:00:00:00:00:0a"`` -> 6 bytes."""
    return bytes(int(part, 16) for part in text.split(":"))


def ether(
    payload: bytes,
    *,
    src: str = MAC_A,
    dst: str = MAC_B,
    ethertype: int | None = None,
    vlans: tuple[int, ...] = (),
) -> bytes:
    """An Ethernet II frame; ``ethertype`` None guesses from the payload's IP version.

    ``vlans`` adds 802.1Q tags (outermost first), each a VLAN id (priority 0).
    """
    if ethertype is None:
        ethertype = ETH_IP6 if payload[:1] and payload[0] >> 4 == 6 else ETH_IP
    tags = b"".join(struct.pack("!HH", ETH_VLAN, vid) for vid in vlans)
    return mac(dst) + mac(src) + tags + struct.pack("!H", ethertype) + payload


def ipv4(
    src: str,
    dst: str,
    payload: bytes = b"",
    *,
    proto: int | None = None,
    ttl: int = 64,
    ident: int = 1,
    flags_frag: int = 0x4000,
    options: bytes = b"",
    tos: int = 0,
    total_length: int | None = None,
) -> bytes:
    """An IPv4 header with a correct checksum; ``proto`` None guesses from the payload builder.

    ``flags_frag`` is the 16-bit flags+fragment-offset field (DF by default; 0x2000 is MF,
    offsets are in 8-byte units). ``options`` is padded to a multiple of 4 bytes.
    """
    if proto is None:
        proto = _guess_proto(payload)
    options += b"\0" * (-len(options) % 4)
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total_length is None else total_length
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl,
            tos,
            length,
            ident,
            flags_frag,
            ttl,
            proto,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + options
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return _fix_l4_checksum(
        header + payload, proto, socket.inet_aton(src), socket.inet_aton(dst), ihl * 4, v6=False
    )


def ipv6(
    src: str,
    dst: str,
    payload: bytes = b"",
    *,
    nh: int | None = None,
    hlim: int = 64,
    ext: tuple[tuple[int, bytes], ...] = (),
    flow: int = 0,
) -> bytes:
    """An IPv6 header. ``ext`` is a chain of (header type, body) extension headers placed before
    the payload; each body is padded to the 8-byte units the header's length field needs."""
    last = _guess_proto(payload) if nh is None else nh
    chain = b""
    types = [t for t, _ in ext]
    for i, (_kind, body) in enumerate(ext):
        following = types[i + 1] if i + 1 < len(types) else last
        body += b"\0" * (-(len(body) + 2) % 8)
        if _kind == 44:  # fragment header: fixed 8 bytes, reserved length byte
            chain += struct.pack("!BB", following, 0) + body[:6]
        else:
            chain += struct.pack("!BB", following, (len(body) + 2) // 8 - 1) + body
    first = types[0] if types else last
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    header = struct.pack(
        "!IHBB16s16s", 0x60000000 | flow, len(chain) + len(payload), first, hlim, s, d
    )
    if ext:
        return header + chain + payload
    return _fix_l4_checksum(header + payload, last, s, d, 40, v6=True)


def tcp(
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    flags: str = "S",
    seq: int = 1000,
    ack: int = 0,
    win: int = 65535,
    options: bytes = b"",
    urg: int = 0,
) -> bytes:
    """A TCP header (checksum filled in by ipv4/ipv6). ``flags`` letters: F S R P A U E C."""
    bits = 0
    for letter in flags:
        bits |= _TCP_FLAG_BITS[letter]
    options += b"\0" * (-len(options) % 4)
    offset = (5 + len(options) // 4) << 4
    return _Marked(
        struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset, bits, win, 0, urg)
        + options
        + payload,
        IPPROTO_TCP,
    )


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    """A UDP header and payload (checksum filled in by ipv4/ipv6)."""
    return _Marked(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, IPPROTO_UDP)


def sctp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    """An SCTP common header (no chunks unless given)."""
    return _Marked(struct.pack("!HHII", sport, dport, 0, 0) + payload, IPPROTO_SCTP)


def icmp(kind: int = 8, code: int = 0, ident: int = 1, seq: int = 1, payload: bytes = b"") -> bytes:
    """An ICMP message (echo request by default) with its checksum."""
    body = struct.pack("!BBHHH", kind, code, 0, ident, seq) + payload
    return _Marked(body[:2] + struct.pack("!H", checksum(body)) + body[4:], IPPROTO_ICMP)


def icmp6(
    kind: int = 128, code: int = 0, ident: int = 1, seq: int = 1, payload: bytes = b""
) -> bytes:
    """An ICMPv6 message (echo request by default; checksum filled in by ipv6)."""
    return _Marked(struct.pack("!BBHHH", kind, code, 0, ident, seq) + payload, IPPROTO_ICMPV6)


def arp(op: int, sha: str, spa: str, tha: str, tpa: str) -> bytes:
    """An ARP packet for Ethernet/IPv4 (op 1 request, 2 reply); wrap with ether(..., ETH_ARP)."""
    return struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_IP,
        6,
        4,
        op,
        mac(sha),
        socket.inet_aton(spa),
        mac(tha),
        socket.inet_aton(tpa),
    )


def sll(
    payload: bytes,
    *,
    pkttype: int = 0,
    protocol: int | None = None,
    addr: str = MAC_A,
    hatype: int = 1,
) -> bytes:
    """A Linux cooked v1 header (LINKTYPE_LINUX_SLL) in front of ``payload``."""
    if protocol is None:
        protocol = ETH_IP6 if payload[:1] and payload[0] >> 4 == 6 else ETH_IP
    return struct.pack("!HHH8sH", pkttype, hatype, 6, mac(addr) + b"\0\0", protocol) + payload


def sll2(
    payload: bytes,
    *,
    pkttype: int = 0,
    protocol: int | None = None,
    ifindex: int = 1,
    addr: str = MAC_A,
    hatype: int = 1,
) -> bytes:
    """A Linux cooked v2 header (LINKTYPE_LINUX_SLL2) in front of ``payload``."""
    if protocol is None:
        protocol = ETH_IP6 if payload[:1] and payload[0] >> 4 == 6 else ETH_IP
    return (
        struct.pack("!HHIHBB8s", protocol, 0, ifindex, hatype, pkttype, 6, mac(addr) + b"\0\0")
        + payload
    )


def null(payload: bytes, *, family: int | None = None, big_endian: bool = False) -> bytes:
    """A BSD loopback header (LINKTYPE_NULL host order, or LOOP with ``big_endian``)."""
    if family is None:
        family = 30 if payload[:1] and payload[0] >> 4 == 6 else 2  # AF_INET6 on BSD is 24/28/30
    return struct.pack("!I" if big_endian else "<I", family) + payload


class _Marked(bytes):
    """Bytes that remember which IP protocol they carry (so ipv4/ipv6 can guess)."""

    proto: int

    def __new__(cls, data: bytes, proto: int) -> _Marked:
        obj = super().__new__(cls, data)
        obj.proto = proto
        return obj


def _guess_proto(payload: bytes) -> int:
    return getattr(payload, "proto", 253)  # 253: reserved for experimentation


def _fix_l4_checksum(
    packet: bytes, proto: int, src: bytes, dst: bytes, l4: int, *, v6: bool
) -> bytes:
    segment = packet[l4:]
    pos = {IPPROTO_TCP: 16, IPPROTO_UDP: 6, IPPROTO_ICMPV6: 2}.get(proto)
    if pos is None or len(segment) < pos + 2:
        return packet
    if v6:
        pseudo = src + dst + struct.pack("!IxxxB", len(segment), proto)
    else:
        pseudo = src + dst + struct.pack("!xBH", proto, len(segment))
    zeroed = segment[:pos] + b"\0\0" + segment[pos + 2 :]
    value = checksum(pseudo + zeroed)
    if proto == IPPROTO_UDP and value == 0:
        value = 0xFFFF
    return packet[:l4] + zeroed[:pos] + struct.pack("!H", value) + zeroed[pos + 2 :]


def ip_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an address (shorthand for the tests)."""
    return ipaddress.ip_address(text)


class CountingStream(io.BytesIO):
    """A BytesIO that counts write() calls and fails the first ``fail`` of them with ``error``
    (disk full by default)."""

    def __init__(self, fail: int = 0, error: OSError | None = None) -> None:
        super().__init__()
        self.writes = 0
        self.fail = fail
        self.error = error or OSError(28, "No space left on device")

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        if self.fail:
            self.fail -= 1
            raise self.error
        return super().write(data)


def descriptors_of(path: Path) -> list[int]:
    """This process's descriptors open on ``path`` (read from /proc/self/fd)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                found.append(int(name))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
    return found
