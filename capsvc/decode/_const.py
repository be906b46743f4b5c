"""Protocol numbers: the one home of ethertypes, VLAN TPIDs, IP protocols and SKF_AD offsets.

Pure module of constants. Plain ints (not enums) because the decoders compare them per packet;
names follow the C headers (<net/ethernet.h>, <netinet/in.h>, <linux/filter.h>). Every module that
needs one of these numbers imports it from here.
"""

from __future__ import annotations

__all__ = [
    "ETHERTYPE_8021AD",
    "ETHERTYPE_8021Q",
    "ETHERTYPE_ARP",
    "ETHERTYPE_IP",
    "ETHERTYPE_IPV6",
    "ETHERTYPE_MPLS",
    "ETHERTYPE_MPLS_MULTI",
    "ETHERTYPE_QINQ",
    "ETHERTYPE_REVARP",
    "ETH_P_802_2",
    "ETH_P_ALL",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_IGMP",
    "IPPROTO_SCTP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "LINUX_AF_INET",
    "LINUX_AF_INET6",
    "SKF_AD_HATYPE",
    "SKF_AD_IFINDEX",
    "SKF_AD_OFF",
    "SKF_AD_PKTTYPE",
    "SKF_AD_PROTOCOL",
    "SKF_AD_VLAN_TAG",
    "SKF_AD_VLAN_TAG_PRESENT",
    "VLAN_TPIDS",
    "skf_ad",
]

ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_REVARP = 0x8035
ETHERTYPE_8021Q = 0x8100
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_MPLS = 0x8847
ETHERTYPE_MPLS_MULTI = 0x8848
ETHERTYPE_8021AD = 0x88A8
#: The pre-standard QinQ outer tag some switches still send.
ETHERTYPE_QINQ = 0x9100
#: The tag protocol identifiers of a VLAN tag, outermost first in order of frequency.
VLAN_TPIDS = (ETHERTYPE_8021Q, ETHERTYPE_8021AD, ETHERTYPE_QINQ)

#: Linux's pseudo ethertype of an 802.3 frame carrying LLC (cooked headers use it).
ETH_P_802_2 = 0x0004
#: Linux's "every protocol" for packet sockets.
ETH_P_ALL = 0x0003

IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132

#: Address families as Linux numbers them (NULL/LOOP headers of Linux captures, SLL2, filters).
LINUX_AF_INET = 2
LINUX_AF_INET6 = 10

#: Start of the kernel's ancillary data in a socket filter's absolute loads (signed, as in C).
SKF_AD_OFF = -0x1000
SKF_AD_PROTOCOL = 0
SKF_AD_PKTTYPE = 4
SKF_AD_IFINDEX = 8
SKF_AD_HATYPE = 28
SKF_AD_VLAN_TAG = 44
SKF_AD_VLAN_TAG_PRESENT = 48


def skf_ad(field: int) -> int:
    """The ``k`` of an absolute load reading ancillary field ``field`` (``SKF_AD_OFF + field`` as
    the unsigned 32-bit value a ``sock_filter`` holds)."""
    return (SKF_AD_OFF + field) & 0xFFFFFFFF
