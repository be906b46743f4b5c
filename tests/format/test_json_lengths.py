"""The JSON format's transport layer where the IP header gives no length: an IPv6 jumbogram
(payload length 0, RFC 2675) and an IPv4 segment offloaded with total length 0. The datagram
then runs to the frame's wire end, so a payload is counted from the wire length and a capture
cut inside a message says ``truncated``."""

from __future__ import annotations

import json
import struct
from typing import Any

from _helpers import ether, icmp6, ipv4, ipv6, tcp

from capsvc.format._json import JsonFormatter

T0 = 1_700_000_000 * 10**9
ICMP6_AT = 14 + 40 + 8  # Ethernet, IPv6, the hop-by-hop header with the jumbo option


def layers(frame: bytes, wire: int) -> dict[str, Any]:
    record = json.loads(JsonFormatter(1).format(T0, frame, wire))
    assert record["caplen"] == len(frame) and record["len"] == wire
    out: dict[str, Any] = record["layers"]
    return out


def jumbogram(payload: bytes) -> bytes:
    """An IPv6 jumbogram: payload length 0, the length in a hop-by-hop jumbo option."""
    option = b"\xc2\x04" + struct.pack("!I", 8 + len(payload))
    frame = bytearray(ether(ipv6("2001:db8::1", "2001:db8::2", payload, ext=((0, option),))))
    frame[18:20] = b"\0\0"
    return bytes(frame)


def test_an_echo_of_a_jumbogram_cut_inside_its_id_says_truncated() -> None:
    frame = jumbogram(icmp6(128, 0, 0x1234, 7, b"p" * 32))
    whole = layers(frame, len(frame))
    assert whole["icmp6"] == {"type": 128, "code": 0, "id": 0x1234, "seq": 7}
    assert "truncated" not in whole
    for cut in range(ICMP6_AT + 4, ICMP6_AT + 8):  # type, code, checksum kept; id/seq cut
        got = layers(frame[:cut], len(frame))
        assert got["icmp6"] == {"type": 128, "code": 0}, cut
        assert got.get("truncated") is True, cut


def test_a_tcp_jumbogram_counts_its_payload_from_the_wire_length() -> None:
    frame = jumbogram(tcp(40000, 80, b"j" * 1000))
    assert layers(frame, len(frame))["tcp"]["payload_len"] == 1000
    assert layers(frame[:200], len(frame))["tcp"]["payload_len"] == 1000
    # A record claiming a wire length shorter than it holds: the captured bytes count.
    record = json.loads(JsonFormatter(1).format(T0, frame, 60))
    assert record["layers"]["tcp"]["payload_len"] == 1000


def test_an_offloaded_ipv4_segment_counts_its_payload_from_the_wire_length() -> None:
    frame = bytearray(ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, b"o" * 500))))
    frame[16:18] = b"\0\0"  # total length 0, as a capture of a TSO segment shows it
    got = layers(bytes(frame[:120]), len(frame))
    assert got["ip"]["len"] == 0
    assert got["tcp"]["payload_len"] == 500
