"""Cooking Ethernet frames here, as a cooked (SOCK_DGRAM) packet socket would.

Used when a cooked capture's filter needs the Ethernet header, which a cooked socket's kernel
filter cannot see: the socket reads raw frames, filters them with the Ethernet program, and the
LINUX_SLL2 frames are built by ``cook``. Pure apart from ``mac_of``, which reads /sys.
"""

from __future__ import annotations

from ..._packet import Direction, Packet, PacketBatch
from .._ifaces import SYS_NET
from ._tpacket import (
    PACKET_BROADCAST,
    PACKET_HOST,
    PACKET_MULTICAST,
    PACKET_OTHERHOST,
    PACKET_OUTGOING,
    SLL2_HDR,
    SLL2_LEN,
)

__all__ = ["ETH_LEN", "cook", "mac_of"]

#: Ethernet header length, and the least EtherType value (smaller ones are 802.3 lengths).
ETH_LEN = 14
_ETH_P_802_3_MIN = 0x0600
_ETH_P_802_3 = b"\x00\x01"
_ETH_P_802_2 = b"\x00\x04"


def mac_of(interface: str) -> bytes:
    """The interface's hardware address (for telling PACKET_HOST from PACKET_OTHERHOST)."""
    try:
        with open(f"{SYS_NET}/{interface}/address", encoding="ascii") as f:
            return bytes.fromhex(f.read().strip().replace(":", ""))
    except (OSError, ValueError):
        return b""


def cook(batch: PacketBatch, hatype: int, own_mac: bytes) -> PacketBatch:
    """Ethernet frames as a cooked socket gives them: a LINUX_SLL2 header (protocol, interface,
    ARPHRD type, the packet type the kernel's eth_type_trans gives, the source address) in
    place of the Ethernet header. The wire length changes by as much as the header does."""
    out: PacketBatch = []
    pack = SLL2_HDR.pack
    grow = SLL2_LEN - ETH_LEN
    for ts, data, wire, direction, ifindex in batch:
        if len(data) < ETH_LEN:
            continue  # a runt a cooked socket would not deliver either
        dst, src, proto = data[:6], data[6:12], data[12:14]
        if int.from_bytes(proto, "big") < _ETH_P_802_3_MIN:
            proto = _ETH_P_802_3 if data[14:16] == b"\xff\xff" else _ETH_P_802_2
        if direction == Direction.OUTBOUND:
            pkttype = PACKET_OUTGOING
        elif dst[0] & 1:
            pkttype = PACKET_BROADCAST if dst == b"\xff" * 6 else PACKET_MULTICAST
        elif own_mac and dst != own_mac:
            pkttype = PACKET_OTHERHOST
        else:
            pkttype = PACKET_HOST
        head = pack(proto, ifindex, hatype, pkttype, 6, src)
        out.append(Packet(ts, head + data[ETH_LEN:], wire + grow, direction, ifindex))
    return out
