"""Write config/sample.pcap: a small, varied Ethernet capture for the default job and the docs.

Deterministic (fixed timestamps), built from the packet builders in tests/_helpers.py.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from _helpers import (  # noqa: E402
    ETH_ARP,
    arp,
    ether,
    icmp,
    icmp6,
    ipv4,
    ipv6,
    tcp,
    udp,
)

from capsvc import Direction, LinkType, Packet  # noqa: E402
from capsvc.sinks import PcapWriter  # noqa: E402

C, S = "10.0.0.1", "10.0.0.2"
T0 = 1_700_000_000_000_000_000


def _dns_query(ident: int, name: str) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0\x01\0\x01"


def _client_hello(sni: str) -> bytes:
    name = sni.encode()
    ext_sni = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = b"\x03\x03" + b"\x11" * 32 + b"\0" + b"\0\x02\x13\x01" + b"\x01\0"
    body += struct.pack("!H", len(ext_sni)) + ext_sni
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def frames() -> list[bytes]:
    return [
        ether(
            arp(1, "02:00:00:00:00:0a", C, "00:00:00:00:00:00", S),
            ethertype=ETH_ARP,
            dst="ff:ff:ff:ff:ff:ff",
        ),
        ether(ipv4(C, S, tcp(40000, 80, flags="S", seq=1000))),
        ether(ipv4(S, C, tcp(80, 40000, flags="SA", seq=5000, ack=1001))),
        ether(ipv4(C, S, tcp(40000, 80, flags="A", seq=1001, ack=5001))),
        ether(
            ipv4(
                C,
                S,
                tcp(
                    40000,
                    80,
                    b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
                    flags="PA",
                    seq=1001,
                    ack=5001,
                ),
            )
        ),
        ether(
            ipv4(
                S,
                C,
                tcp(
                    80,
                    40000,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                    flags="PA",
                    seq=5001,
                    ack=1039,
                ),
            )
        ),
        ether(ipv4(C, "10.0.0.53", udp(41234, 53, _dns_query(0x1A2B, "example.com")))),
        ether(ipv4(C, S, tcp(40001, 443, _client_hello("example.com"), flags="PA", seq=7))),
        ether(ipv4(C, S, icmp(8, 0, 1, 1, b"\0" * 56))),
        ether(ipv4(S, C, icmp(0, 0, 1, 1, b"\0" * 56))),
        ether(ipv6("fd00::1", "fd00::2", tcp(40002, 22, b"SSH-2.0-OpenSSH_9.2\r\n", flags="PA"))),
        ether(ipv6("fd00::1", "fd00::2", icmp6(128, 0, 7, 1, b"ping"))),
        ether(ipv4(C, S, tcp(40000, 80, flags="FA", seq=1039, ack=5040))),
    ]


def main() -> None:
    out = ROOT / "config" / "sample.pcap"
    with out.open("wb") as f:
        w = PcapWriter(f, 0, LinkType.ETHERNET)
        w.write_batch(
            [
                Packet(T0 + i * 1_250_000, fr, len(fr), Direction.UNKNOWN, 0)
                for i, fr in enumerate(frames())
            ]
        )
    print(out)


if __name__ == "__main__":
    main()
