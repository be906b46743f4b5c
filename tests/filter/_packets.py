"""Generated frames for the filter tests: every link type, with the awkward cases included.

Deterministic (seeded). Covers TCP/UDP/SCTP/ICMP/ICMPv6/IGMP/other protocols over IPv4 and IPv6,
IPv4 options and fragments (first and later), IPv6 extension headers (including a fragment
header), ARP and RARP, 802.3/LLC and other non-IP frames, 802.1Q/802.1ad tags, and truncated
copies of all of them. After the random frames of each link type come the same few header
chains (``CHAINS``: AH on IPv4 and IPv6, runs of IPv6 extension headers, no next header,
Geneve over IPv4 and IPv6 carrying Ethernet or IP, with options, nested, and VXLAN over IPv4 and
IPv6 with other flags, a reserved byte set, from its port only, nested, inside Geneve), whole
and cut, for ``protochain``'s walk and the tunnels' offsets.
"""

from __future__ import annotations

import random
import struct

from _helpers import (
    ETH_ARP,
    ETH_IP,
    ETH_IP6,
    arp,
    ether,
    icmp,
    icmp6,
    ipv4,
    ipv6,
    mac,
    null,
    sctp,
    sll,
    sll2,
    tcp,
    udp,
)

from capsvc._packet import LinkType

V4 = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.1", "172.16.0.5", "10.200.0.2"]
V6 = ["::1", "fe80::1", "2001:db8::1", "2001:db8::2", "::ffff:10.0.0.1", "fe80::abcd"]
MACS = ["02:00:00:00:00:0a", "02:00:00:00:00:0b", "ff:ff:ff:ff:ff:ff", "00:11:22:33:44:55"]
PORTS = [80, 443, 22, 53, 10, 15, 20, 21, 8080, 65535, 1, 1024]


def _l4(rng: random.Random, v6: bool) -> bytes:
    kind = rng.choice(["tcp", "tcp", "udp", "sctp", "icmp", "other", "igmp"])
    sport, dport = rng.choice(PORTS), rng.choice(PORTS)
    if kind == "tcp":
        flags = rng.choice(["S", "SA", "A", "PA", "F", "R", "FA", "U", "EC"])
        return tcp(
            sport,
            dport,
            b"x" * rng.randrange(0, 20),
            flags=flags,
            options=rng.choice([b"", b"\x02\x04\x05\xb4"]),
        )
    if kind == "udp":
        return udp(sport, dport, b"q" * rng.randrange(0, 20))
    if kind == "sctp":
        return sctp(sport, dport)
    if kind == "icmp":
        if v6:
            return icmp6(rng.choice([128, 129, 135, 1]), 0)
        return icmp(rng.choice([0, 8, 3, 11]), rng.choice([0, 1]))
    if kind == "igmp":
        return b"\x11\x64\x00\x00" + bytes(4)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24)))


def _proto_of(payload: bytes, kind_hint: int) -> int | None:
    return None if hasattr(payload, "proto") else kind_hint


def ip_packet(rng: random.Random) -> bytes:
    """An IPv4 or IPv6 packet with one of the interesting shapes."""
    return _ip_packet(rng)


def _ip_packet(rng: random.Random) -> bytes:
    if rng.random() < 0.55:
        src, dst = rng.choice(V4), rng.choice(V4)
        body = _l4(rng, False)
        proto = None if hasattr(body, "proto") else rng.choice([2, 47, 89, 253])
        shape = rng.random()
        if shape < 0.15:  # IPv4 options
            return ipv4(
                src, dst, body, proto=proto, options=b"\x94\x04\x00\x00" * rng.randint(1, 3)
            )
        if shape < 0.25:  # first fragment
            return ipv4(src, dst, body, proto=proto, flags_frag=0x2000)
        if shape < 0.35:  # later fragment
            return ipv4(
                src, dst, body, proto=proto, flags_frag=rng.choice([0x2001, 0x0010, 0x1FFF])
            )
        return ipv4(src, dst, body, proto=proto)
    src, dst = rng.choice(V6), rng.choice(V6)
    body = _l4(rng, True)
    nh = None if hasattr(body, "proto") else rng.choice([2, 47, 253, 59])
    shape = rng.random()
    if shape < 0.3:
        chain = rng.choice(
            [
                ((0, b"\x01\x04\x00\x00\x00\x00"),),
                ((44, b"\x00\x00\x00\x00\x00\x01"),),
                ((0, b""), (60, b"")),
                ((43, b"\x00\x00\x00\x00\x00\x00"),),
                ((44, b"\x00\x08\x00\x00\x00\x01"),),
            ]
        )
        return ipv6(src, dst, body, nh=nh, ext=chain)
    return ipv6(src, dst, body, nh=nh)


def network_packet(rng: random.Random) -> tuple[int, bytes]:
    """(ethertype, payload): mostly IP, some ARP/RARP and other protocols."""
    r = rng.random()
    if r < 0.8:
        data = ip_packet(rng)
        return (ETH_IP6 if data[0] >> 4 == 6 else ETH_IP), data
    if r < 0.9:
        body = arp(
            rng.choice([1, 2]), rng.choice(MACS), rng.choice(V4), rng.choice(MACS), rng.choice(V4)
        )
        return rng.choice([ETH_ARP, ETH_ARP, 0x8035]), body
    return rng.choice([0x88CC, 0x9000, 0x0842, 0x88E5]), bytes(
        rng.randrange(256) for _ in range(30)
    )


def _ah(following: int, icv: int = 12) -> bytes:
    """An IPsec AH header: next header, payload length (in 32-bit words, minus 2), SPI, seq."""
    return struct.pack("!BBHII", following, (12 + icv) // 4 - 2, 0, 0x100, 1) + b"\xaa" * icv


def _chains() -> list[bytes]:
    t, u = bytes(tcp(1000, 80)), bytes(udp(53, 5353))
    a, b = "10.0.0.1", "10.0.0.2"
    a6, b6 = "2001:db8::1", "2001:db8::2"
    hop, dst = (0, b"\x01\x04\x00\x00\x00\x00"), (60, b"\x01\x04\x00\x00\x00\x00")
    routing, fragment = (43, b"\x00\x00\x00\x00\x00\x00"), (44, b"\x00\x00\x00\x00\x00\x01")
    return [
        ipv4(a, b, _ah(6) + t, proto=51),
        ipv4(a, b, _ah(17) + u, proto=51),
        ipv4(a, b, _ah(51) + _ah(6) + t, proto=51),
        ipv4(a, b, _ah(6, icv=0) + t, proto=51, options=b"\x94\x04\x00\x00"),
        ipv6(a6, b6, t, nh=6, ext=(hop, dst, routing, fragment)),
        ipv6(a6, b6, u, nh=17, ext=(hop, routing)),
        ipv6(a6, b6, b"", nh=59, ext=(hop, dst)),
        ipv6(a6, b6, _ah(6) + t, nh=51),
        ipv6(a6, b6, _ah(58) + bytes(icmp6(128)), nh=51, ext=(hop,)),
        ipv6(a6, b6, _ah(0) + b"\x06\x00" + b"\0" * 6 + t, nh=51),
    ]


def _geneve(vni: int, proto: int, inner: bytes, options: bytes = b"", version: int = 0) -> bytes:
    """A Geneve header (version, options length, protocol type, VNI) and what it carries."""
    first = version << 6 | len(options) // 4
    return struct.pack("!BBHI", first, 0, proto, vni << 8) + options + inner


def _tunnels() -> list[bytes]:
    inner4 = bytes(ipv4("10.9.0.1", "10.9.0.2", tcp(1000, 80)))
    inner6 = bytes(ipv6("2001:db8::9", "2001:db8::a", udp(53, 53)))
    frame = bytes(ether(inner4, src=MACS[0], dst=MACS[1]))
    opts = b"\x01\x02\x03\x04" * 2
    bodies = [
        _geneve(12345, 0x6558, frame),
        _geneve(12345, 0x6558, frame, opts),
        _geneve(5, 0x0800, inner4),
        _geneve(5, 0x86DD, inner6, opts),
        _geneve(12345, 0x6558, frame, version=1),
        _geneve(7, 0x6558, bytes(ether(inner6))),
    ]
    nested = _geneve(
        9,
        0x6558,
        bytes(ether(ipv4("10.8.0.1", "10.8.0.2", udp(4000, 6081, _geneve(12345, 0x0800, inner4))))),
    )
    out = []
    for body in [*bodies, nested]:
        out.append(ipv4("10.0.0.1", "10.0.0.2", udp(4000, 6081, body)))
        out.append(ipv6("2001:db8::1", "2001:db8::2", udp(4000, 6081, body)))
    out.append(ipv4("10.0.0.1", "10.0.0.2", udp(6081, 4000, bodies[0])))  # the source port
    out.append(ipv4("10.0.0.1", "10.0.0.2", udp(4000, 6081, bodies[0]), flags_frag=0x2001))
    return out


def vxlan(vni: int, inner: bytes, flags: int = 0x08, reserved: int = 0) -> bytes:
    """A VXLAN header (RFC 7348: flags, 24 reserved bits, the VNI, 8 reserved bits, the last
    ``reserved``) and the Ethernet frame it carries."""
    return struct.pack("!B3xI", flags, vni << 8 | reserved) + inner


def _vxlans() -> list[bytes]:
    inner4 = bytes(ipv4("10.9.0.1", "10.9.0.2", tcp(1000, 80)))
    inner6 = bytes(ipv6("2001:db8::9", "2001:db8::a", udp(53, 53)))
    frame = bytes(ether(inner4, src=MACS[0], dst=MACS[1]))
    bodies = [
        vxlan(12345, frame),
        vxlan(5, bytes(ether(inner6, dst=MACS[2]))),
        vxlan(12345, frame, flags=0x0C),  # another flag set as well: not libpcap's VXLAN
        vxlan(12345, frame, reserved=0x77),  # the byte after the VNI is not compared
        vxlan(12345, bytes(ether(bytes(30), ethertype=0x88CC))),
    ]
    nested = vxlan(9, bytes(ether(ipv4("10.8.0.1", "10.8.0.2", udp(4000, 4789, bodies[0])))))
    out = []
    for body in [*bodies, nested]:
        out.append(ipv4("10.0.0.1", "10.0.0.2", udp(40000, 4789, body)))
        out.append(ipv6("2001:db8::1", "2001:db8::2", udp(40000, 4789, body)))
    out.append(ipv4("10.0.0.1", "10.0.0.2", udp(4789, 40000, bodies[0])))  # the source port
    out.append(ipv4("10.0.0.1", "10.0.0.2", udp(40000, 4789, bodies[0]), flags_frag=0x2001))
    out.append(ipv4("10.0.0.1", "10.0.0.2", udp(40000, 4789, bodies[0]), options=bytes(8)))
    carried = bytes(ether(ipv4("10.8.0.1", "10.8.0.2", udp(4000, 4789, bodies[0]))))
    out.append(ipv6("2001:db8::1", "2001:db8::2", udp(4000, 6081, _geneve(3, 0x6558, carried))))
    geneve = bytes(ipv4("10.8.0.1", "10.8.0.2", udp(4000, 6081, _geneve(5, 0x0800, inner4))))
    out.append(ipv4("10.0.0.1", "10.0.0.2", udp(40000, 4789, vxlan(77, bytes(ether(geneve))))))
    return out


#: IP packets whose header chains ``protochain`` walks, and Geneve and VXLAN packets of every
#: layout ``geneve`` and ``vxlan`` know (see the module docstring).
CHAINS = _chains() + _tunnels() + _vxlans()

_PPP_TYPES = {ETH_IP: 0x0021, ETH_IP6: 0x0057, 0x8847: 0x0281}


def _wlan(rng: random.Random, ethertype: int, payload: bytes) -> bytes:
    """An 802.11 frame: management, control or data (QoS or not, every DS combination), data
    frames carrying LLC/SNAP (sometimes a VLAN tag inside) or a bare 802.2 SAP."""
    kind = rng.random()
    addrs = [mac(rng.choice([*MACS, "12:34:56:78:9a:bc"])) for _ in range(4)]
    fc1 = rng.randrange(4) | rng.choice([0, 0, 0x40, 0x10])
    if kind < 0.15:  # management
        fc0 = rng.choice([0x80, 0x40, 0x50, 0x00, 0xB0, 0xC0])
        return bytes([fc0, fc1 & 0xFC]) + b"\0\0" + b"".join(addrs[:3]) + b"\0\0" + b"x" * 12
    if kind < 0.3:  # control
        fc0 = rng.choice([0xD4, 0xC4, 0xB4, 0xA4, 0x84, 0x94])
        body = addrs[0] if fc0 in (0xD4, 0xC4) else addrs[0] + addrs[1]
        return bytes([fc0, fc1 & 0xFC]) + b"\0\0" + body
    qos = rng.random() < 0.4
    fc0 = rng.choice([0x88, 0xC8]) if qos else rng.choice([0x08, 0x08, 0x48, 0x28])
    head = bytes([fc0, fc1]) + b"\0\0" + b"".join(addrs[:3]) + b"\0\0"
    if fc1 & 3 == 3 and rng.random() < 0.5:
        head += addrs[3]
    if qos:
        head += b"\0\0"
    r = rng.random()
    if r < 0.1:
        llc = bytes([rng.choice([0x42, 0x06, 0xFE, 0xE0]), 0x42, 0x03])
        return head + llc + payload[:20]
    if r < 0.18:
        vid = rng.choice([5, 100])
        llc = b"\xaa\xaa\x03\0\0\0" + struct.pack("!HHH", 0x8100, vid, ethertype)
        return head + llc + payload
    return head + b"\xaa\xaa\x03\0\0\0" + struct.pack("!H", ethertype) + payload


def _radiotap(rng: random.Random, inner: bytes) -> bytes:
    """A radiotap header (some with TSFT, flags with or without data padding, an extended
    bitmap) in front of an 802.11 frame, padding the frame body when the flags say so."""
    shape = rng.choice(["none", "flags", "tsft", "rate", "ext"])
    pad = rng.random() < 0.4
    flags = 0x20 if pad else 0x00
    if shape == "none":
        present, fields = 0, b""
    elif shape == "flags":
        present, fields = 0x02, bytes([flags])
    elif shape == "tsft":
        present, fields = 0x03, bytes(8) + bytes([flags])
    elif shape == "rate":
        present, fields = 0x06, bytes([flags, 0x16])
    else:
        present, fields = 0x80000002, struct.pack("<I", 0x20) + bytes([flags, 0])
    header = struct.pack("<BBHI", 0, 0, 8 + len(fields), present) + fields
    data = len(inner) > 1 and inner[0] & 0x0C == 0x08
    if pad and data and shape in ("flags", "tsft", "rate"):
        # The frame body starts at the next multiple of 4 of the packet (as libpcap reads it).
        hdrlen = 26 if inner[0] & 0x80 else 24
        end = len(header) + hdrlen
        inner = inner[:hdrlen] + b"\0" * (-end % 4) + inner[hdrlen:]
    return header + inner


def _build(rng: random.Random, linktype: LinkType, packet: bytes | None = None) -> bytes:
    """One whole frame of ``linktype`` (carrying ``packet``, an IP packet, when given)."""
    if packet is None:
        ethertype, payload = network_packet(rng)
    else:
        ethertype, payload = (ETH_IP6 if packet[0] >> 4 == 6 else ETH_IP), packet
    ip_packet = (lambda _rng: payload) if packet is not None else _ip_packet
    if linktype in (LinkType.PPP, LinkType.PPP_HDLC):
        proto = _PPP_TYPES.get(ethertype, rng.choice([0xC021, 0x8021, 0x0023, ethertype]))
        out = b"\xff\x03" + struct.pack("!H", proto) + payload
    elif linktype == LinkType.C_HDLC:
        proto = rng.choice([ethertype, ethertype, 0xFEFE, 0x8847, 0x8035])
        out = bytes([rng.choice([0x0F, 0x8F]), 0]) + struct.pack("!H", proto) + payload
    elif linktype == LinkType.SLIP:
        out = bytes([rng.randrange(2)]) + bytes(15) + ip_packet(rng)
    elif linktype == LinkType.NFLOG:
        out = bytes([rng.choice([2, 10]), 0, 0, 0]) + struct.pack("<HH", 8, 9) + payload
    elif linktype in (LinkType.IEEE802_11, LinkType.IEEE802_11_RADIO):
        out = _wlan(rng, ethertype, payload)
        if linktype == LinkType.IEEE802_11_RADIO:
            out = _radiotap(rng, out)
    elif linktype == LinkType.ETHERNET:
        r = rng.random()
        src, dst = rng.choice(MACS), rng.choice(MACS)
        if r < 0.05:  # 802.3 length + LLC
            llc = bytes([rng.choice([0x42, 0x06, 0xAA, 0xF0]), 0x42, 0x03]) + b"\0" * 30
            out = mac(dst) + mac(src) + struct.pack("!H", len(llc)) + llc
        elif r < 0.25:
            vlans = rng.choice([(100,), (200,), (100, 200), (4095,), (0,)])
            out = ether(payload, src=src, dst=dst, ethertype=ethertype, vlans=vlans)
            if rng.random() < 0.3:  # 802.1ad outer tag
                out = out[:12] + b"\x88\xa8" + out[14:]
        else:
            out = ether(payload, src=src, dst=dst, ethertype=ethertype)
    elif linktype == LinkType.LINUX_SLL:
        out = sll(
            payload, protocol=ethertype if rng.random() < 0.95 else 4, pkttype=rng.randrange(5)
        )
    elif linktype == LinkType.LINUX_SLL2:
        out = sll2(payload, protocol=ethertype, pkttype=rng.randrange(5))
    elif linktype in (LinkType.NULL, LinkType.LOOP):
        if ethertype not in (ETH_IP, ETH_IP6):
            ethertype, payload = ETH_IP, ip_packet(rng)
            ethertype = ETH_IP6 if payload[0] >> 4 == 6 else ETH_IP
        family = 2 if ethertype == ETH_IP else rng.choice([10, 30, 24])
        out = null(payload, family=family, big_endian=linktype == LinkType.LOOP)
    else:
        out = ip_packet(rng)
        if linktype == LinkType.IPV4 and out[0] >> 4 == 6 and rng.random() < 0.8:
            out = ip_packet(rng)
        if linktype == LinkType.IPV6 and out[0] >> 4 == 4 and rng.random() < 0.8:
            out = ip_packet(rng)
    return bytes(out)


def frame(rng: random.Random, linktype: LinkType) -> tuple[bytes, bool]:
    """One frame of ``linktype`` and whether it was cut short."""
    out = _build(rng, linktype)
    if rng.random() < 0.15:
        cut = rng.randrange(0, len(out))
        return out[:cut], True
    return out, False


def frames(linktype: LinkType, count: int, seed: int = 1) -> tuple[list[bytes], set[int]]:
    """``count`` frames of ``linktype`` (the same for the same seed) and the indexes of the
    truncated ones."""
    made, cut, _ = captured(linktype, count, seed)
    return made, cut


def captured(
    linktype: LinkType, count: int, seed: int = 1
) -> tuple[list[bytes], set[int], list[int]]:
    """As ``frames``, with each frame's length on the wire: half of the truncated frames were
    cut by a snapshot length (their wire length is the whole frame's), the others are
    malformed (the wire length is what was captured)."""
    rng = random.Random(f"{seed}-{int(linktype)}")
    snap = random.Random(f"snap-{seed}-{int(linktype)}")
    made, cut, wire = [], set(), []
    for i in range(count):
        whole = _build(rng, linktype)
        data = whole
        if rng.random() < 0.15:
            data = whole[: rng.randrange(0, len(whole))]
            cut.add(i)
        made.append(data)
        wire.append(len(whole) if i in cut and snap.random() < 0.5 else len(data))
    chains = random.Random(f"chains-{seed}-{int(linktype)}")
    for packet in CHAINS:
        whole = _build(chains, linktype, packet)
        for data in (whole, whole[: chains.randrange(len(whole) - len(packet), len(whole))]):
            if len(data) < len(whole):
                cut.add(len(made))
            made.append(data)
            wire.append(len(whole))
    return made, cut, wire
