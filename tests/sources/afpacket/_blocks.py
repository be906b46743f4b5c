"""Hand-built TPACKET_V3 blocks, laid out as the kernel lays them out, for the parser tests."""

from __future__ import annotations

import itertools
import struct
from typing import Any

from capsvc.sources.afpacket._tpacket import (
    SOCKADDR_LL,
    TP_STATUS_USER,
    TPACKET3_HDR,
    TPACKET3_HDRLEN,
    TPACKET_BLOCK_DESC,
    tpacket_align,
)


def build_block(
    packets: list[dict[str, Any]], *, status: int = TP_STATUS_USER, lead: int = 0
) -> bytes:
    """A block as the kernel lays it out: descriptor, then tpacket3_hdr + sockaddr_ll + frame."""
    first = tpacket_align(TPACKET_BLOCK_DESC.size)
    body = bytearray()
    offsets = []
    for pkt in packets:
        data = bytes(pkt["data"])
        mac = tpacket_align(TPACKET3_HDRLEN)
        offsets.append(len(body))
        hdr_at = len(body)
        size = tpacket_align(mac + len(data))
        body += bytes(size)
        wire = int(pkt.get("wire", len(data)))
        TPACKET3_HDR.pack_into(
            body,
            hdr_at,
            0,
            pkt.get("sec", 1),
            pkt.get("nsec", 0),
            len(data),
            wire,
            pkt.get("status", 0),
            mac,
            mac,
            0,
            pkt.get("tci", 0),
            pkt.get("tpid", 0),
            0,
        )
        SOCKADDR_LL.pack_into(
            body,
            hdr_at + tpacket_align(TPACKET3_HDR.size),
            17,
            pkt.get("proto", b"\x08\x00"),
            pkt.get("ifindex", 3),
            pkt.get("hatype", 1),
            pkt.get("pkttype", 0),
            6,
            pkt.get("addr", b"\x02\0\0\0\0\x0a\0\0"),
        )
        body[hdr_at + mac : hdr_at + mac + len(data)] = data
    for here, nxt in itertools.pairwise(offsets):
        struct.pack_into("<I", body, here, nxt - here)
    desc = TPACKET_BLOCK_DESC.pack(
        3, 0, status, len(packets), first, first + len(body), 1, 0, 0, 0, 0
    )
    return bytes(lead) + desc + bytes(first - len(desc)) + bytes(body)
