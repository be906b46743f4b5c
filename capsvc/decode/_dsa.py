"""Switch tags on Ethernet: Marvell DSA and EDSA, Broadcom (after the source MAC or prepended).

Pure module (no IO). Two kinds of function live here: the link decoders (``decode_*``: frame ->
``(ethertype, offset)`` of the network layer, never raising, as in ``_ether``) and the field
readers (``dsa_tag``, ``brcm_tag``: the tag's fields as a NamedTuple, or None when the frame is
too short to hold it), which the text formats render.

Layouts (big-endian bit numbering of the 4-byte tag, as the Linux DSA drivers document them):
DSA ``mode(2) tagged(1) dev(5) | port(5) b18 b17 cfi | prio(3) b12 vid[11:8] | vid[7:0]``, where
b18 is the trunk flag of Forward tags, the receive-sniff flag of To_Sniffer tags and, with b17 and
b12, the To_CPU code. EDSA is a 2-byte ethertype (0xdada by default), 2 reserved bytes, then a DSA
tag. Broadcom's tag: ``opcode(3)`` first; egress (0) ``... | cid(8) | rc(8) | tc(3) port(5)``,
ingress (1) ``... tc(3) te(2) | ts(1) dstmap(9)``.
"""

from __future__ import annotations

from typing import NamedTuple

from ._ether import LINK_TRUNCATED, ethertype_at

__all__ = [
    "BRCM_TAG_LEN",
    "DSA_MODES",
    "BrcmTag",
    "DsaTag",
    "brcm_tag",
    "decode_brcm",
    "decode_brcm_prepend",
    "decode_dsa",
    "decode_edsa",
    "dsa_tag",
]

BRCM_TAG_LEN = 4
_DSA_LEN = 4
_EDSA_LEN = 8
_CUT = (LINK_TRUNCATED, 0)

#: DSA tag modes by their 2-bit code.
DSA_MODES = ("To_CPU", "From_CPU", "To_Sniffer", "Forward")
MODE_TO_CPU, MODE_FROM_CPU, MODE_TO_SNIFFER, MODE_FORWARD = 0, 1, 2, 3


class DsaTag(NamedTuple):
    """A Marvell DSA tag (``edsa_ethertype`` None) or the DSA part of an EDSA tag.

    ``flag`` is bit 18: the trunk flag of Forward tags, the receive-sniff flag of To_Sniffer
    tags; ``code`` the 3-bit To_CPU code (0 for the other modes).
    """

    edsa_ethertype: int | None
    mode: int
    tagged: bool
    dev: int
    port: int
    flag: bool
    cfi: bool
    priority: int
    vid: int
    code: int


class BrcmTag(NamedTuple):
    """A Broadcom switch tag. Egress tags (``opcode`` 0) fill ``cid``, ``rc``, ``tc``, ``port``;
    ingress tags (``opcode`` 1) fill ``tc``, ``te``, ``ts``, ``dst_map``; the rest are 0."""

    opcode: int
    tc: int
    cid: int
    rc: int
    port: int
    te: int
    ts: int
    dst_map: int


def dsa_tag(data: bytes, off: int, *, edsa: bool = False) -> DsaTag | None:
    """Read the DSA (or, with ``edsa``, EDSA) tag at ``off`` (12 for the link types); None when
    the frame ends inside it."""
    size = _EDSA_LEN if edsa else _DSA_LEN
    if len(data) < off + size:
        return None
    ethertype = None
    if edsa:
        ethertype = data[off] << 8 | data[off + 1]
        off += 4
    b0, b1, b2, b3 = data[off], data[off + 1], data[off + 2], data[off + 3]
    mode = b0 >> 6
    return DsaTag(
        edsa_ethertype=ethertype,
        mode=mode,
        tagged=bool(b0 & 0x20),
        dev=b0 & 0x1F,
        port=b1 >> 3,
        flag=bool(b1 & 0x04),
        cfi=bool(b1 & 0x01),
        priority=b2 >> 5,
        vid=(b2 & 0x0F) << 8 | b3,
        code=((b1 >> 1 & 3) << 1 | (b2 >> 4 & 1)) if mode == MODE_TO_CPU else 0,
    )


def brcm_tag(data: bytes, off: int) -> BrcmTag | None:
    """Read the Broadcom tag at ``off`` (12 after the MACs, 0 when prepended); None when the
    frame ends inside it."""
    if len(data) < off + BRCM_TAG_LEN:
        return None
    b0, b1, b2, b3 = data[off], data[off + 1], data[off + 2], data[off + 3]
    opcode = b0 >> 5
    if opcode == 1:
        return BrcmTag(opcode, b1 >> 2 & 7, 0, 0, 0, b1 & 3, b2 >> 7, (b2 << 8 | b3) & 0x1FF)
    return BrcmTag(opcode, b3 >> 5, b1, b2, b3 & 0x1F, 0, 0, 0)


def decode_dsa(data: bytes) -> tuple[int, int]:
    """LINKTYPE_DSA_TAG_DSA: Ethernet with a 4-byte Marvell DSA tag after the source MAC."""
    if len(data) < 16:
        return _CUT
    return ethertype_at(data, 16)


def decode_edsa(data: bytes) -> tuple[int, int]:
    """LINKTYPE_DSA_TAG_EDSA: Ethernet with an 8-byte Marvell EDSA tag after the source MAC."""
    if len(data) < 20:
        return _CUT
    return ethertype_at(data, 20)


def decode_brcm(data: bytes) -> tuple[int, int]:
    """LINKTYPE_DSA_TAG_BRCM: Ethernet with a 4-byte Broadcom tag after the source MAC."""
    if len(data) < 16:
        return _CUT
    return ethertype_at(data, 16)


def decode_brcm_prepend(data: bytes) -> tuple[int, int]:
    """LINKTYPE_DSA_TAG_BRCM_PREPEND: a 4-byte Broadcom tag, then an Ethernet frame."""
    if len(data) < 16:
        return _CUT
    return ethertype_at(data, 16)
