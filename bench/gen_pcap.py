"""Make a reproducible Ethernet pcap for the benchmarks.

``python bench/gen_pcap.py OUT [--count N] [--seed S] [--profile mixed|heavy]`` writes N packets
(default 1,000,000), with correct IP/TCP/UDP/ICMP checksums. The same seed and profile give the
same bytes. Two profiles:

- ``mixed`` (the default): TCP (port 443 most, port 80 about 10%, a few others), UDP (DNS,
  QUIC), ICMP echo, about 10% IPv6, frames of 60-1500 bytes in an IMIX-like mix (many small,
  some full-size), from a handful of flows.
- ``heavy``: half TCP, each segment carrying 0, 10, 200 or 1400 bytes of payload (a quarter of
  the TCP segments each), half of the TCP on port 80 (so a quarter of all frames match
  ``tcp port 80``) and half on 443; 40% UDP (DNS, QUIC, NTP, syslog); 10% ICMP echo. IPv4 only.

It is fast because frames come from a pool of prebuilt templates (flow x length x client port);
per packet only the timestamp and the record header are packed. Never commit the output.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import time
from pathlib import Path

#: struct pcap_file_header and struct pcap_sf_pkthdr, little-endian, microseconds.
PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")
LINKTYPE_ETHERNET = 1
START_SEC = 1_700_000_000

# (weight, ip version, protocol, server port, name); the weights are shares of packets.
FLOWS = [
    (30, 4, "tcp", 443, "https"),
    (10, 4, "tcp", 80, "http"),
    (8, 4, "tcp", 22, "ssh"),
    (5, 4, "tcp", 5432, "postgres"),
    (12, 4, "udp", 53, "dns"),
    (10, 4, "udp", 443, "quic"),
    (5, 4, "udp", 123, "ntp"),
    (10, 4, "icmp", 0, "ping"),
    (6, 6, "tcp", 443, "https6"),
    (3, 6, "udp", 53, "dns6"),
    (1, 6, "icmp", 0, "ping6"),
]
#: The heavy profile: (weight, protocol, server port, payload bytes or None for the IMIX mix).
HEAVY_FLOWS = [
    *((25 / 4, "tcp", 80, size) for size in (0, 10, 200, 1400)),
    *((25 / 4, "tcp", 443, size) for size in (0, 10, 200, 1400)),
    (12, "udp", 53, None),
    (20, "udp", 443, None),
    (4, "udp", 123, None),
    (4, "udp", 514, None),
    (10, "icmp", 0, None),
]
PROFILES = ("mixed", "heavy")
# Frame lengths (Ethernet, without FCS): (weight, low, high).
SIZES = [(55, 60, 100), (25, 100, 600), (20, 1000, 1500)]
LENGTHS_PER_FLOW = 24
CLIENT_PORTS = 4


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _l4(proto: str, sport: int, dport: int, payload: bytes, seq: int) -> tuple[int, bytes, int]:
    """(IP protocol number, segment with a zero checksum, checksum offset or -1)."""
    if proto == "tcp":
        flags = 0x18 if payload else 0x10  # PSH+ACK with data, else ACK
        seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 7777, 5 << 4, flags, 64240, 0, 0)
        return 6, seg + payload, 16
    if proto == "udp":
        return 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, 6
    return -1, payload, -1


def _dns(ident: int, answer: bool) -> bytes:
    """A DNS query for example.test (A), or the empty answer to it."""
    flags = 0x8180 if answer else 0x0100
    qname = b"\x07example\x04test\x00"
    return struct.pack("!HHHHHH", ident & 0xFFFF, flags, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"


def _frame(
    version: int, proto: str, sport: int, dport: int, length: int, seq: int, inbound: bool
) -> bytes:
    """One Ethernet frame of ``length`` bytes (DNS: its own size) with correct checksums."""
    ip_len = 20 if version == 4 else 40
    l4_len = {"tcp": 20, "udp": 8, "icmp": 8}[proto]
    payload_len = max(0, length - 14 - ip_len - l4_len)
    if proto == "udp" and 53 in (sport, dport):
        payload = _dns(seq, inbound)
    elif proto == "tcp" and dport == 80 and payload_len >= 40:
        text = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n"
        payload = (text * (payload_len // len(text) + 1))[:payload_len]
    else:
        payload = bytes((seq + i) & 0xFF for i in range(payload_len))
    if version == 4:
        src, dst = socket.inet_aton("10.1.0.2"), socket.inet_aton("10.2.0.9")
    else:
        src, dst = (
            socket.inet_pton(socket.AF_INET6, "fd00::2"),
            socket.inet_pton(socket.AF_INET6, "fd00:1::9"),
        )
    if proto == "icmp":
        kind = 8 if version == 4 else 128
        body = struct.pack("!BBHHH", kind, 0, 0, sport, seq & 0xFFFF) + payload
        number = 1 if version == 4 else 58
        if version == 4:
            csum = _checksum(body)
        else:
            csum = _checksum(src + dst + struct.pack("!IxxxB", len(body), number) + body)
        segment = body[:2] + struct.pack("!H", csum) + body[4:]
    else:
        number, seg, at = _l4(proto, sport, dport, payload, seq)
        if version == 4:
            pseudo = src + dst + struct.pack("!xBH", number, len(seg))
        else:
            pseudo = src + dst + struct.pack("!IxxxB", len(seg), number)
        csum = _checksum(pseudo + seg) or 0xFFFF
        segment = seg[:at] + struct.pack("!H", csum) + seg[at + 2 :]
    if version == 4:
        head = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(segment),
            seq & 0xFFFF,
            0x4000,
            64,
            number,
            0,
            src,
            dst,
        )
        ip = head[:10] + struct.pack("!H", _checksum(head)) + head[12:] + segment
        ethertype = 0x0800
    else:
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(segment), number, 64, src, dst) + segment
        ethertype = 0x86DD
    frame = bytes.fromhex("02000000000b02000000000a") + struct.pack("!H", ethertype) + ip
    return frame + bytes(max(0, length - len(frame)))  # Ethernet padding up to 60 bytes


def templates(rng: random.Random) -> tuple[list[bytes], list[float]]:
    """The pool of frames and the weight of each (flows weighted as in FLOWS)."""
    pool: list[bytes] = []
    weights: list[float] = []
    size_weights = [w for w, _, _ in SIZES]
    for weight, version, proto, port, _name in FLOWS:
        for i in range(LENGTHS_PER_FLOW):
            _w, low, high = rng.choices(SIZES, size_weights)[0]
            length = rng.randint(low, high)
            if proto == "udp" and port == 123:
                length = 14 + (20 if version == 4 else 40) + 8 + 48  # an NTP packet is 48 bytes
            for c in range(CLIENT_PORTS):
                client = 40000 + 97 * c + (port % 13)
                inbound = (i + c) % 2 == 1  # half the packets are answers
                sport, dport = (port, client) if inbound and proto != "icmp" else (client, port)
                frame = _frame(version, proto, sport, dport, length, 1000 * i + c, inbound)
                pool.append(frame)
                weights.append(weight / (LENGTHS_PER_FLOW * CLIENT_PORTS))
    return pool, weights


def heavy_templates(rng: random.Random) -> tuple[list[bytes], list[float]]:
    """The heavy profile's pool of frames and the weight of each (see HEAVY_FLOWS)."""
    pool: list[bytes] = []
    weights: list[float] = []
    size_weights = [w for w, _, _ in SIZES]
    headers = {"tcp": 14 + 20 + 20, "udp": 14 + 20 + 8, "icmp": 14 + 20 + 8}
    for weight, proto, port, payload in HEAVY_FLOWS:
        for i in range(LENGTHS_PER_FLOW):
            if payload is not None:
                length = headers[proto] + payload
            elif port == 123:
                length = headers[proto] + 48  # an NTP packet is 48 bytes
            elif proto == "icmp":
                length = headers[proto] + 56  # ping's default payload
            else:
                _w, low, high = rng.choices(SIZES, size_weights)[0]
                length = rng.randint(low, high)
            for c in range(CLIENT_PORTS):
                client = 40000 + 97 * c + (port % 13)
                inbound = (i + c) % 2 == 1
                sport, dport = (port, client) if inbound and proto != "icmp" else (client, port)
                frame = _frame(4, proto, sport, dport, length, 1000 * i + c, inbound)
                pool.append(frame + bytes(max(0, 60 - len(frame))))  # Ethernet's minimum
                weights.append(weight / (LENGTHS_PER_FLOW * CLIENT_PORTS))
    return pool, weights


def generate(
    path: str | Path, count: int = 1_000_000, seed: int = 1, profile: str = "mixed"
) -> None:
    """Write ``count`` packets to ``path`` as a microsecond Ethernet pcap (same seed, same file).

    Args:
        path: the output file (overwritten).
        count: the number of packets.
        seed: the random seed; the output depends only on it, ``count`` and ``profile``.
        profile: "mixed" (the default) or "heavy" (see the module's docstring).

    Raises:
        ValueError: an unknown profile.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}: {profile!r}")
    rng = random.Random(seed)
    pool, weights = templates(rng) if profile == "mixed" else heavy_templates(rng)
    gaps = [1, 2, 3, 5, 8, 13, 40, 150, 900]  # microseconds between packets
    pack = PCAP_RECORD.pack
    usec = 0
    chunk = 65536
    with open(path, "wb") as out:
        out.write(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        done = 0
        while done < count:
            n = min(chunk, count - done)
            frames = rng.choices(pool, weights, k=n)
            steps = rng.choices(gaps, k=n)
            parts: list[bytes] = []
            append = parts.append
            for frame, step in zip(frames, steps, strict=True):
                usec += step
                length = len(frame)
                append(pack(START_SEC + usec // 1_000_000, usec % 1_000_000, length, length))
                append(frame)
            out.write(b"".join(parts))
            done += n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="output pcap file")
    parser.add_argument("--count", type=int, default=1_000_000, help="packets (default 1000000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--profile", choices=PROFILES, default="mixed", help="traffic mix")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    generate(args.out, args.count, args.seed, args.profile)
    elapsed = time.perf_counter() - start
    size = Path(args.out).stat().st_size
    print(
        f"{args.out}: {args.count} packets, {size / 1e6:.1f} MB in {elapsed:.2f} s", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
