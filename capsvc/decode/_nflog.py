"""Linux netfilter log messages (LINKTYPE_NFLOG): a 4-byte header, then TLVs, one of which is
the logged packet.

Pure module (no IO). Layout: ``family(1) version(1) resource_id(2, big-endian)``, then TLVs of
``length(2) type(2) value``, each padded to 4 bytes; length and type are in the byte order of
the host that logged (little-endian on nearly every host: both orders are tried, the one whose
lengths walk the message exactly wins). The values themselves are big-endian. The packet is
the ``NFULA_PAYLOAD`` (9) value, an IPv4 or IPv6 packet as ``family`` (2 or 10) says.

``decode_nflog`` is the link decoder (never raises); ``nflog_fields`` reads the TLVs into
``NflogFields`` for the text formats.
"""

from __future__ import annotations

from typing import NamedTuple

from ._const import ETHERTYPE_IP, ETHERTYPE_IPV6, LINK_MESSAGE, LINUX_AF_INET, LINUX_AF_INET6
from ._ether import LINK_TRUNCATED

__all__ = ["NFULA_NAMES", "NflogFields", "decode_nflog", "nflog_fields", "nflog_tlvs"]

NFULA_PACKET_HDR = 1
NFULA_MARK = 2
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NFULA_UID = 11
NFULA_GID = 14
#: TLV type -> name (linux/netfilter/nfnetlink_log.h, without the NFULA_ prefix).
NFULA_NAMES = {
    1: "PACKET_HDR",
    2: "MARK",
    3: "TIMESTAMP",
    4: "IFINDEX_INDEV",
    5: "IFINDEX_OUTDEV",
    6: "IFINDEX_PHYSINDEV",
    7: "IFINDEX_PHYSOUTDEV",
    8: "HWADDR",
    9: "PAYLOAD",
    10: "PREFIX",
    11: "UID",
    12: "SEQ",
    13: "SEQ_GLOBAL",
    14: "GID",
    15: "HWTYPE",
    16: "HWHEADER",
    17: "HWLEN",
    18: "CT",
    19: "CT_INFO",
    20: "VLAN",
    21: "L2HDR",
}
#: At most this many TLVs are walked (a crafted message cannot loop long).
_TLV_LIMIT = 64
_CUT = (LINK_TRUNCATED, 0)


class NflogFields(NamedTuple):
    """What an NFLOG message says. ``payload`` is the offset of the logged packet (-1 when there
    is none) and ``payload_len`` its length as the TLV gives it; ``truncated`` is True when the
    TLVs run past the captured bytes."""

    family: int
    version: int
    resource_id: int
    hw_protocol: int | None
    hook: int | None
    prefix: str | None
    mark: int | None
    indev: int | None
    outdev: int | None
    uid: int | None
    gid: int | None
    payload: int
    payload_len: int
    truncated: bool


def _walk(data: bytes, little: bool) -> tuple[list[tuple[int, int, int]], bool] | None:
    """The ``(type, value offset, value length)`` of each TLV and whether the captured bytes
    ended inside one; None when a length is impossible in this byte order."""
    n = len(data)
    pos = 4
    tlvs: list[tuple[int, int, int]] = []
    for _ in range(_TLV_LIMIT):
        if pos + 4 > n:
            return tlvs, pos < n
        if little:
            size, kind = data[pos] | data[pos + 1] << 8, data[pos + 2] | data[pos + 3] << 8
        else:
            size, kind = data[pos] << 8 | data[pos + 1], data[pos + 2] << 8 | data[pos + 3]
        if size < 4:
            return None
        # The kernel's NLA_F_NESTED / NLA_F_NET_BYTEORDER flags live in the type's top bits.
        tlvs.append((kind & 0x3FFF, pos + 4, size - 4))
        if pos + size > n:
            return tlvs, True
        pos += (size + 3) & ~3
    return tlvs, False


def nflog_tlvs(data: bytes) -> tuple[list[tuple[int, int, int]], bool] | None:
    """The TLVs of an NFLOG message, in whichever byte order walks it; None when neither does
    or the 4-byte header is not all there."""
    if len(data) < 4:
        return None
    little = _walk(data, True)
    if little is not None and not little[1]:
        return little
    big = _walk(data, False)
    if big is not None and (little is None or not big[1]):
        return big
    return little


def decode_nflog(data: bytes) -> tuple[int, int]:
    """LINKTYPE_NFLOG: ``(ethertype, offset)`` of the logged packet; ``LINK_MESSAGE`` for a
    message without one (or of another family), ``LINK_TRUNCATED`` when cut before it."""
    found = nflog_tlvs(data)
    if found is None:
        return _CUT if len(data) < 4 else (-1, 0)
    tlvs, cut = found
    for kind, pos, _size in tlvs:
        if kind == NFULA_PAYLOAD:
            family = data[0]
            if family == LINUX_AF_INET:
                return ETHERTYPE_IP, pos
            if family == LINUX_AF_INET6:
                return ETHERTYPE_IPV6, pos
            return LINK_MESSAGE, 0
    # Cut before any TLV, or inside one: the packet may be in what is missing.
    return _CUT if cut or not tlvs else (LINK_MESSAGE, 0)


def _u32(data: bytes, pos: int, size: int) -> int | None:
    if size < 4 or pos + 4 > len(data):
        return None
    return int.from_bytes(data[pos : pos + 4], "big")


def nflog_fields(data: bytes) -> NflogFields | None:
    """Read an NFLOG message's header and the TLVs the text formats show; None when not even
    the header is there or no byte order walks the TLVs."""
    found = nflog_tlvs(data)
    if found is None:
        return None
    tlvs, cut = found
    values: dict[int, tuple[int, int]] = {}
    for kind, pos, size in tlvs:
        values.setdefault(kind, (pos, size))
    hw_protocol = hook = None
    if NFULA_PACKET_HDR in values:
        pos, size = values[NFULA_PACKET_HDR]
        if size >= 3 and pos + 3 <= len(data):
            hw_protocol, hook = data[pos] << 8 | data[pos + 1], data[pos + 2]
    prefix = None
    if NFULA_PREFIX in values:
        pos, size = values[NFULA_PREFIX]
        raw = data[pos : pos + size].split(b"\0", 1)[0]
        prefix = raw.decode("ascii", "replace")

    def number(kind: int) -> int | None:
        got = values.get(kind)
        return None if got is None else _u32(data, got[0], got[1])

    payload, payload_len = values.get(NFULA_PAYLOAD, (-1, 0))
    return NflogFields(
        family=data[0],
        version=data[1],
        resource_id=data[2] << 8 | data[3],
        hw_protocol=hw_protocol,
        hook=hook,
        prefix=prefix,
        mark=number(NFULA_MARK),
        indev=number(NFULA_IFINDEX_INDEV),
        outdev=number(NFULA_IFINDEX_OUTDEV),
        uid=number(NFULA_UID),
        gid=number(NFULA_GID),
        payload=payload,
        payload_len=payload_len,
        truncated=cut,
    )
