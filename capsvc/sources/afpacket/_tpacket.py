"""TPACKET_V3 ring layout and the packet socket's settings: headers, geometry, block parsing,
the BPF direction prefix and cooked-socket rewrite, fanout arguments.

Pure module: no sockets, no mmap calls, no event loop. Everything here works on a buffer (the
mapped ring, or ``bytes`` built by hand in the tests) and an offset, or on plain values. The rule it
keeps: a block is read only while its status says it belongs to userspace, every packet is copied
out of the buffer (the ring is reused by the kernel as soon as the block is returned), and nothing
is decoded beyond the ring's own headers.

C names keep their C spelling here (``TP_STATUS_USER``, ``PACKET_OUTGOING``).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..._accel import speedups
from ..._bpf import (
    BPF_ABS,
    BPF_B,
    BPF_H,
    BPF_IND,
    BPF_JEQ,
    BPF_JMP,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_MSH,
    BPF_RET,
    BPF_W,
    BpfInstruction,
)
from ..._errors import OptionError
from ..._packet import Direction, Packet, PacketBatch
from ...decode._const import (
    ETHERTYPE_8021Q,
    SKF_AD_HATYPE,
    SKF_AD_IFINDEX,
    SKF_AD_PKTTYPE,
    SKF_AD_PROTOCOL,
    skf_ad,
)

__all__ = [
    "FANOUT_FLAGS",
    "FANOUT_MODES",
    "PACKET_OUTGOING",
    "SLL2_HDR",
    "SLL2_LEN",
    "SOCKADDR_LL",
    "TPACKET3_HDR",
    "TPACKET3_HDRLEN",
    "TPACKET_ALIGNMENT",
    "TPACKET_BLOCK_DESC",
    "TPACKET_REQ3",
    "TP_STATUS_KERNEL",
    "TP_STATUS_USER",
    "TP_STATUS_VLAN_TPID_VALID",
    "TP_STATUS_VLAN_VALID",
    "Instruction",
    "RingGeometry",
    "block_records",
    "block_status",
    "bpf_direction_prefix",
    "fanout_arg",
    "parse_block",
    "ring_geometry",
    "sll2_header",
    "tpacket_align",
    "uncook_program",
]

# -- C constants (linux/if_packet.h) -------------------------------------------------------

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TP_STATUS_COPY = 1 << 1
TP_STATUS_LOSING = 1 << 2
TP_STATUS_CSUMNOTREADY = 1 << 3
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_BLK_TMO = 1 << 5
TP_STATUS_VLAN_TPID_VALID = 1 << 6

PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4

TPACKET_ALIGNMENT = 16

BPF_LD_B_ABS = BPF_LD | BPF_B | BPF_ABS
BPF_LD_W_ABS = BPF_LD | BPF_W | BPF_ABS
BPF_JMP_JEQ_K = BPF_JMP | BPF_JEQ | BPF_K
BPF_RET_K = BPF_RET | BPF_K

#: Fanout modes by name (PACKET_FANOUT_*).
FANOUT_MODES = {"hash": 0, "lb": 1, "cpu": 2, "rollover": 3, "random": 4, "qm": 5}
#: Fanout flags by name (PACKET_FANOUT_FLAG_*).
FANOUT_FLAGS = {"rollover": 0x1000, "defrag": 0x8000}

#: Bytes the SLL2 header adds in front of a cooked frame.
SLL2_LEN = 20

#: One classic BPF instruction: a BpfInstruction, or any (code, jt, jf, k) of ints.
Instruction = BpfInstruction | Sequence[int]

# -- C structs ------------------------------------------------------------------------------

#: struct tpacket_block_desc with its tpacket_hdr_v1: version, offset_to_priv, block_status,
#: num_pkts, offset_to_first_pkt, blk_len, seq_num, ts_first_pkt {sec, nsec},
#: ts_last_pkt {sec, nsec}.
TPACKET_BLOCK_DESC = struct.Struct("<IIIIIIQIIII")
#: struct tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status, tp_mac,
#: tp_net, hv1 {tp_rxhash, tp_vlan_tci, tp_vlan_tpid, tp_padding}, tp_padding[8].
TPACKET3_HDR = struct.Struct("<IIIIIIHHIIHH8x")
#: struct sockaddr_ll: sll_family, sll_protocol (network order, kept as 2 raw bytes), sll_ifindex,
#: sll_hatype, sll_pkttype, sll_halen, sll_addr[8].
SOCKADDR_LL = struct.Struct("<H2siHBB8s")
#: struct tpacket_req3: tp_block_size, tp_block_nr, tp_frame_size, tp_frame_nr,
#: tp_retire_blk_tov, tp_sizeof_priv, tp_feature_req_word.
TPACKET_REQ3 = struct.Struct("<IIIIIII")
#: The LINKTYPE_LINUX_SLL2 header: protocol (raw network-order bytes), reserved, interface index,
#: ARPHRD type, packet type, address length, address (8 bytes).
SLL2_HDR = struct.Struct(">2s2xIHBB8s")


def tpacket_align(value: int) -> int:
    """TPACKET_ALIGN(): round ``value`` up to a multiple of 16."""
    return (value + TPACKET_ALIGNMENT - 1) & ~(TPACKET_ALIGNMENT - 1)


#: Where the sockaddr_ll sits behind each tpacket3_hdr.
SOCKADDR_LL_OFFSET = tpacket_align(TPACKET3_HDR.size)
#: TPACKET3_HDRLEN: the smallest frame, headers only.
TPACKET3_HDRLEN = SOCKADDR_LL_OFFSET + SOCKADDR_LL.size

# The hot loop reads the header and the few sockaddr_ll fields it needs with one call:
# tpacket3_hdr fields up to tp_mac, then sll_ifindex and sll_pkttype.
#: The C block parser, when built.
_C = speedups()
_HDR_AND_SLL = struct.Struct("<6IH26xi2xB")
assert _HDR_AND_SLL.size == SOCKADDR_LL_OFFSET + 11
_VLAN_FIELDS = struct.Struct("<IH")  # hv1.tp_vlan_tci, hv1.tp_vlan_tpid
_VLAN_FIELDS_OFFSET = 32
_BLOCK_FIELDS = struct.Struct("<III")  # block_status, num_pkts, offset_to_first_pkt
_VLAN_TAG = struct.Struct(">HH")
_U32 = struct.Struct("<I")
_new = tuple.__new__
_INBOUND = Direction.INBOUND
_OUTBOUND = Direction.OUTBOUND

#: A buffer the parser reads: slicing must give ``bytes`` (the mapped ring, or bytes in tests).
RingBuffer = bytes | mmap.mmap


class RingGeometry(NamedTuple):
    """The sizes handed to PACKET_RX_RING (a tpacket_req3) and to mmap.

    Attributes:
        block_size: bytes per block, a multiple of the page size.
        block_nr: number of blocks.
        frame_size: nominal frame size (TPACKET_V3 packs packets densely; used for checks only).
        frame_nr: block_nr * (block_size // frame_size), as the kernel requires.
        retire_blk_tov: block timeout in milliseconds.
    """

    block_size: int
    block_nr: int
    frame_size: int
    frame_nr: int
    retire_blk_tov: int

    @property
    def ring_size(self) -> int:
        """Bytes to map."""
        return self.block_size * self.block_nr

    def pack(self) -> bytes:
        """The tpacket_req3 bytes (no private area, no feature requests)."""
        return TPACKET_REQ3.pack(
            self.block_size,
            self.block_nr,
            self.frame_size,
            self.frame_nr,
            self.retire_blk_tov,
            0,
            0,
        )


def ring_geometry(
    ring_size: int, block_size: int, block_timeout_ms: int, *, page_size: int = 4096
) -> RingGeometry:
    """Work out the ring's blocks from the requested sizes.

    Args:
        ring_size: total bytes wanted; rounded down to whole blocks, at least 2 blocks.
        block_size: bytes per block; must be a positive multiple of ``page_size``.
        block_timeout_ms: how long the kernel keeps a partly filled block before handing it over
            (1..65535 ms; 0 would let the kernel pick one from the link speed).
        page_size: the system page size (default 4096).

    Returns:
        The geometry to request.

    Raises:
        ValueError: a size is not positive, not page aligned, the ring has more frames than
            the kernel can count, or the timeout is out of range.
    """
    if block_size <= 0 or block_size % page_size:
        raise OptionError(
            f"block_size must be a positive multiple of the page size {page_size}: {block_size}"
        )
    if ring_size < block_size:
        raise OptionError(f"ring_size {ring_size} is smaller than block_size {block_size}")
    if not 1 <= block_timeout_ms <= 0xFFFF:
        raise OptionError(f"block_timeout_ms must be 1..65535: {block_timeout_ms}")
    block_nr = max(2, ring_size // block_size)
    frame_size = 2048
    frame_nr = block_nr * (block_size // frame_size)
    if block_size > 0xFFFFFFFF or frame_nr > 0xFFFFFFFF:
        raise OptionError(f"ring_size {ring_size} is too large for a TPACKET_V3 ring")
    return RingGeometry(block_size, block_nr, frame_size, frame_nr, block_timeout_ms)


def block_status(buf: RingBuffer, base: int) -> int:
    """The block_status of the block starting at ``base`` (TP_STATUS_USER: ours to read)."""
    value: int = _U32.unpack_from(buf, base + 8)[0]
    return value


def sll2_header(
    protocol: bytes, ifindex: int, hatype: int, pkttype: int, addr: bytes, halen: int
) -> bytes:
    """Build a LINKTYPE_LINUX_SLL2 header from sockaddr_ll fields.

    Args:
        protocol: sll_protocol as its 2 network-order bytes.
        ifindex: the interface index.
        hatype: the ARPHRD type.
        pkttype: PACKET_HOST, PACKET_OUTGOING, ...
        addr: the link-layer address (up to 8 bytes; padded with zeros).
        halen: the address length (capped at 8).

    Returns:
        The 20-byte header.
    """
    return SLL2_HDR.pack(protocol, ifindex, hatype, pkttype, min(halen, 8), addr[:8])


def parse_block(
    buf: RingBuffer,
    base: int = 0,
    *,
    cooked: bool = False,
    restore_vlan: bool = False,
    out: PacketBatch | None = None,
) -> PacketBatch:
    """Copy every packet of one TPACKET_V3 block out of ``buf``.

    The block status is not checked here; the caller reads a block only while it is
    TP_STATUS_USER, and returns it afterwards. A header pointing outside the buffer ends the block
    (the packets before it are kept): a malformed block never raises.

    Args:
        buf: the ring (or a hand-built block); slicing it must give ``bytes``.
        base: offset of the block descriptor in ``buf``.
        cooked: the socket is SOCK_DGRAM (frames start at the network header): put a
            LINKTYPE_LINUX_SLL2 header built from each packet's sockaddr_ll in front.
        restore_vlan: Ethernet frames: put back the 802.1Q tag the kernel took off
            (TP_STATUS_VLAN_VALID; TPID 0x8100 unless TP_STATUS_VLAN_TPID_VALID says otherwise).
        out: a batch to append to; None makes a new one.

    Returns:
        The batch the packets were appended to, in ring order. Each packet's direction is
        OUTBOUND for PACKET_OUTGOING and INBOUND otherwise; its wire length includes a restored
        tag or the cooked header.

    Runs the C version (``capsvc._accel``) when it is built; ``parse_block_py`` is the same in
    Python.
    """
    batch: PacketBatch = [] if out is None else out
    if _C is not None:
        result: PacketBatch = _C.parse_block(
            buf, base, cooked, restore_vlan, batch, Packet, _INBOUND, _OUTBOUND
        )
        return result
    return parse_block_py(buf, base, cooked=cooked, restore_vlan=restore_vlan, out=batch)


def block_records(
    buf: RingBuffer, base: int = 0, *, cooked: bool = False, restore_vlan: bool = False
) -> tuple[bytes, int, int]:
    """The packets of the block at ``base`` as ``parse_block`` reads them, as one bytes object
    of records (``capsvc._records``) instead of Packets: ``(records, count, wire_total)``.

    C only: call it where ``capsvc._records.available()`` is true.
    """
    assert _C is not None
    result: tuple[bytes, int, int] = _C.block_records(buf, base, cooked, restore_vlan)
    return result


def parse_block_py(
    buf: RingBuffer,
    base: int = 0,
    *,
    cooked: bool = False,
    restore_vlan: bool = False,
    out: PacketBatch | None = None,
) -> PacketBatch:
    """``parse_block`` in pure Python (the reference the C version is tested against)."""
    batch: PacketBatch = [] if out is None else out
    append = batch.append
    unpack = _HDR_AND_SLL.unpack_from
    end = len(buf)
    if base < 0 or base + 20 > end:
        return batch  # no block descriptor here
    _status, num, off = _BLOCK_FIELDS.unpack_from(buf, base + 8)
    off += base
    if cooked:
        header = SOCKADDR_LL_OFFSET + SOCKADDR_LL.size  # the whole sockaddr_ll is read
        sll_at = SOCKADDR_LL_OFFSET
        sll_unpack = SOCKADDR_LL.unpack_from
        sll2_pack = SLL2_HDR.pack
        for _ in range(num):
            if off + header > end:
                break
            nxt, sec, nsec, snap, wire, _st, mac, ifindex, pkttype = unpack(buf, off)
            start = off + mac
            if start + snap > end:
                break
            _fam, proto, _ifi, hatype, _pt, halen, addr = sll_unpack(buf, off + sll_at)
            head = sll2_pack(
                proto, ifindex & 0xFFFFFFFF, hatype, pkttype, halen if halen < 8 else 8, addr
            )
            append(
                _new(
                    Packet,
                    (
                        sec * 1_000_000_000 + nsec,
                        head + buf[start : start + snap],
                        wire + 20,
                        _OUTBOUND if pkttype == 4 else _INBOUND,
                        ifindex,
                    ),
                )
            )
            if not nxt:
                break
            off += nxt
        return batch
    # The hot loop: locals only, one unpack per packet; the VLAN fields are read only when the
    # kernel says a tag was taken off. A header beyond the buffer ends the block (struct.error).
    new, packet_type, inbound, outbound = _new, Packet, _INBOUND, _OUTBOUND
    vlan_valid = TP_STATUS_VLAN_VALID if restore_vlan else 0
    try:
        for _ in range(num):
            nxt, sec, nsec, snap, wire, st, mac, ifindex, pkttype = unpack(buf, off)
            start = off + mac
            stop = start + snap
            if stop > end:
                break
            if st & vlan_valid and snap >= 12:
                data = buf[start : start + 12] + _vlan_tag(buf, off, st) + buf[start + 12 : stop]
                wire += 4
            else:
                data = buf[start:stop]
            append(
                new(
                    packet_type,
                    (
                        sec * 1_000_000_000 + nsec,
                        data,
                        wire,
                        outbound if pkttype == 4 else inbound,
                        ifindex,
                    ),
                )
            )
            if not nxt:
                break
            off += nxt
    except struct.error:
        pass
    return batch


def _vlan_tag(buf: RingBuffer, off: int, status: int) -> bytes:
    """The 802.1Q tag the kernel took off the packet whose tpacket3_hdr is at ``off``."""
    tci, tpid = _VLAN_FIELDS.unpack_from(buf, off + _VLAN_FIELDS_OFFSET)
    if not status & TP_STATUS_VLAN_TPID_VALID:
        tpid = ETHERTYPE_8021Q
    return _VLAN_TAG.pack(tpid, tci & 0xFFFF)


# LINUX_SLL2 header fields a cooked socket's filter reads from the kernel's ancillary data
# instead: (offset, load size) -> SKF_AD_* field.
_SLL2_ANCILLARY = {
    (0, BPF_H): SKF_AD_PROTOCOL,
    (4, BPF_W): SKF_AD_IFINDEX,
    (8, BPF_H): SKF_AD_HATYPE,
    (10, BPF_B): SKF_AD_PKTTYPE,
}


def uncook_program(program: Iterable[Instruction]) -> list[tuple[int, int, int, int]] | None:
    """Rewrite a program compiled for LINUX_SLL2 frames for a SOCK_DGRAM packet socket.

    The kernel runs a cooked socket's filter on the packet from its network header on, with no
    SLL2 header in front: packet offsets move back by 20 bytes, and the header's protocol,
    interface index, ARPHRD type and packet type become ancillary loads (as libpcap does).

    Args:
        program: the instructions, each (code, jt, jf, k).

    Returns:
        The rewritten program, or None when it reads a header field the kernel cannot supply
        (the link-layer address): such a filter has to run in userspace.
    """
    result: list[tuple[int, int, int, int]] = []
    for code, jt, jf, k in program:
        klass, mode = code & 0x07, code & 0xE0
        if (klass == BPF_LD and mode in (BPF_ABS, BPF_IND)) or (
            klass == BPF_LDX and mode == BPF_MSH
        ):
            if k >= SLL2_LEN:
                k -= SLL2_LEN
            elif klass == BPF_LD and mode == BPF_ABS and (k, code & 0x18) in _SLL2_ANCILLARY:
                k = skf_ad(_SLL2_ANCILLARY[k, code & 0x18])
            else:
                return None
        result.append((code, jt, jf, k))
    return result


def bpf_direction_prefix(direction: Direction) -> list[tuple[int, int, int, int]]:
    """Classic BPF instructions that drop packets of the other direction, to run first.

    Args:
        direction: INBOUND keeps everything but PACKET_OUTGOING, OUTBOUND keeps only it,
            UNKNOWN keeps both (no instructions).

    Returns:
        Instructions ending with a fall-through into the program that follows them.
    """
    if direction == Direction.UNKNOWN:
        return []
    load = (BPF_LD_B_ABS, 0, 0, skf_ad(SKF_AD_PKTTYPE))
    if direction == Direction.OUTBOUND:
        test = (BPF_JMP_JEQ_K, 1, 0, PACKET_OUTGOING)
    else:
        test = (BPF_JMP_JEQ_K, 0, 1, PACKET_OUTGOING)
    return [load, test, (BPF_RET_K, 0, 0, 0)]


def bpf_loopback_outgoing_prefix(ifindexes: list[int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF instructions that drop the outgoing copy of packets on loopback interfaces.

    A socket on every interface ("any") sees each loopback packet twice, going out and coming
    back in; libpcap keeps the incoming copy only, and so does this prefix, to run first.

    Args:
        ifindexes: the interface indexes of the namespace's loopback interfaces.

    Returns:
        Instructions ending with a fall-through into the program that follows them (none for
        an empty list).
    """
    n = len(ifindexes)
    if not n:
        return []
    out = [
        (BPF_LD_B_ABS, 0, 0, skf_ad(SKF_AD_PKTTYPE)),
        (BPF_JMP_JEQ_K, 0, n + 2, PACKET_OUTGOING),
        (BPF_LD_W_ABS, 0, 0, skf_ad(SKF_AD_IFINDEX)),
    ]
    for i, ifindex in enumerate(ifindexes, 1):
        out.append((BPF_JMP_JEQ_K, n - i, 1 if i == n else 0, ifindex))
    out.append((BPF_RET_K, 0, 0, 0))
    return out


def fanout_arg(fanout: tuple[int, str] | None) -> int | None:
    """The PACKET_FANOUT argument for ``(group_id, "mode[+flag...]")`` (None for None).

    Raises:
        ValueError: the group id is not 0..65535, or an unknown mode or flag.
    """
    if fanout is None:
        return None
    group, spec = fanout
    if not 0 <= group <= 0xFFFF:
        raise OptionError(f"fanout group id must be 0..65535: {group}")
    words = [w for w in spec.replace(",", "+").lower().split("+") if w]
    if not words or words[0] not in FANOUT_MODES:
        raise OptionError(f"fanout mode must be one of {', '.join(FANOUT_MODES)} (got {spec!r})")
    value = FANOUT_MODES[words[0]]
    for flag in words[1:]:
        if flag not in FANOUT_FLAGS:
            raise OptionError(f"unknown fanout flag {flag!r} (one of: defrag, rollover)")
        value |= FANOUT_FLAGS[flag]
    return group | value << 16
