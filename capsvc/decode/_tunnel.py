"""Encapsulations: VXLAN and Geneve (over UDP), GRE (with ERSPAN), IPsec ESP and AH.

Pure module (no IO). Each reader takes ``data[pos:end]`` (``end`` the captured end of the outer
payload), returns a NamedTuple of the header's fields with ``inner``, the offset of what it
carries, and ``inner_type``: ``INNER_ETHER`` for an Ethernet frame, else the ethertype of a
network-layer packet (-1: nothing capsvc follows). None means the header is not all there
(the caller prints a ``[|proto]`` marker); nothing here raises.
"""

from __future__ import annotations

from typing import NamedTuple

from ._const import ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_TEB

__all__ = [
    "ERSPAN_II",
    "ERSPAN_III",
    "INNER_ETHER",
    "AhHeader",
    "EspHeader",
    "GeneveHeader",
    "GreHeader",
    "VxlanHeader",
    "ah_header",
    "esp_header",
    "geneve_header",
    "gre_header",
    "vxlan_header",
]

#: ``inner_type`` of an Ethernet frame inside.
INNER_ETHER = -10
ERSPAN_II = 0x88BE
ERSPAN_III = 0x22EB
_GRE_C, _GRE_R, _GRE_K, _GRE_S, _GRE_A = 0x8000, 0x4000, 0x2000, 0x1000, 0x0080
#: What GRE's and Geneve's protocol field may carry that capsvc follows.
_FOLLOWED = frozenset((ETHERTYPE_IP, ETHERTYPE_IPV6))


class VxlanHeader(NamedTuple):
    """A VXLAN header (RFC 7348): ``flags`` (0x08: the VNI is valid) and the 24-bit VNI."""

    flags: int
    vni: int
    inner: int
    inner_type: int


class GeneveHeader(NamedTuple):
    """A Geneve header (RFC 8926): version, options length in bytes, the O (control) and C
    (critical options) bits, the protocol of the payload and the 24-bit VNI."""

    version: int
    options_len: int
    control: bool
    critical: bool
    protocol: int
    vni: int
    inner: int
    inner_type: int


class GreHeader(NamedTuple):
    """A GRE header (RFC 2784/2890, and version 1 of PPTP, RFC 2637). ``key``, ``seq`` and
    ``ack`` are None when absent; ``erspan`` is the ERSPAN version (1-3) or 0, with
    ``session`` its session ID."""

    version: int
    protocol: int
    checksum: bool
    key: int | None
    seq: int | None
    ack: int | None
    erspan: int
    session: int | None
    inner: int
    inner_type: int


class EspHeader(NamedTuple):
    """An ESP header (RFC 4303): the security parameters index and the sequence number."""

    spi: int
    seq: int


class AhHeader(NamedTuple):
    """An AH header (RFC 4302): what it protects, its length in bytes, SPI and sequence."""

    next_header: int
    length: int
    spi: int
    seq: int


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


def vxlan_header(data: bytes, pos: int, end: int) -> VxlanHeader | None:
    """Read the 8-byte VXLAN header at ``pos``; an Ethernet frame follows."""
    if end - pos < 8:
        return None
    vni = data[pos + 4] << 16 | data[pos + 5] << 8 | data[pos + 6]
    return VxlanHeader(data[pos], vni, pos + 8, INNER_ETHER)


def geneve_header(data: bytes, pos: int, end: int) -> GeneveHeader | None:
    """Read the Geneve header at ``pos`` (8 bytes and its options)."""
    if end - pos < 8:
        return None
    first, flags = data[pos], data[pos + 1]
    options = (first & 0x3F) * 4
    protocol = data[pos + 2] << 8 | data[pos + 3]
    vni = data[pos + 4] << 16 | data[pos + 5] << 8 | data[pos + 6]
    inner = pos + 8 + options
    if inner > end:
        return None
    kind = INNER_ETHER if protocol == ETHERTYPE_TEB else protocol
    if kind != INNER_ETHER and kind not in _FOLLOWED:
        kind = -1
    return GeneveHeader(first >> 6, options, bool(flags & 0x80), bool(flags & 0x40), protocol,
                        vni, inner, kind)  # fmt: skip


def gre_header(data: bytes, pos: int, end: int) -> GreHeader | None:
    """Read the GRE header at ``pos`` (4 bytes and the optional fields its flags announce), and
    an ERSPAN header after it (type II 8 bytes, type III 12 and an optional 8-byte subheader;
    type I, ERSPAN without a sequence number, has none; type III is named, not followed)."""
    if end - pos < 4:
        return None
    flags = data[pos] << 8 | data[pos + 1]
    version = flags & 7
    protocol = data[pos + 2] << 8 | data[pos + 3]
    off = pos + 4
    key = seq = ack = None
    if flags & (_GRE_C | _GRE_R):
        off += 4
    if flags & _GRE_K:
        if off + 4 > end:
            return None
        key = _u32(data, off)
        off += 4
    if flags & _GRE_S:
        if off + 4 > end:
            return None
        seq = _u32(data, off)
        off += 4
    if version == 1 and flags & _GRE_A:
        if off + 4 > end:
            return None
        ack = _u32(data, off)
        off += 4
    if off > end:
        return None
    erspan, session = 0, None
    kind = protocol if protocol in _FOLLOWED else -1
    if protocol == ETHERTYPE_TEB:
        kind = INNER_ETHER
    elif protocol == ETHERTYPE_MPLS:
        kind = -1
    elif protocol == ERSPAN_II and seq is None:
        erspan, kind = 1, INNER_ETHER
    elif protocol == ERSPAN_II:
        if off + 8 > end:
            return None
        erspan = 2
        session = (data[off + 2] << 8 | data[off + 3]) & 0x3FF
        off += 8
        kind = INNER_ETHER
    return GreHeader(version, protocol, bool(flags & _GRE_C), key, seq, ack, erspan, session,
                     off, kind)  # fmt: skip


def esp_header(data: bytes, pos: int, end: int) -> EspHeader | None:
    """Read the SPI and sequence number at the start of an ESP packet."""
    if end - pos < 8:
        return None
    return EspHeader(_u32(data, pos), _u32(data, pos + 4))


def ah_header(data: bytes, pos: int, end: int) -> AhHeader | None:
    """Read an AH header's fixed 12 bytes."""
    if end - pos < 12:
        return None
    return AhHeader(data[pos], (data[pos + 1] + 2) * 4, _u32(data, pos + 4), _u32(data, pos + 8))
