"""Protocol numbers: the one home of ethertypes, VLAN TPIDs, IP protocols and SKF_AD offsets.

Pure module of constants. Plain ints (not enums) because the decoders compare them per packet;
names follow the C headers (<net/ethernet.h>, <netinet/in.h>, <linux/filter.h>). Every module that
needs one of these numbers imports it from here.
"""

from __future__ import annotations

__all__ = [
    "CHDLC_BCAST",
    "CHDLC_CDP",
    "CHDLC_SLARP",
    "CHDLC_UNICAST",
    "ETHERTYPE_8021AD",
    "ETHERTYPE_8021Q",
    "ETHERTYPE_ARP",
    "ETHERTYPE_EDSA",
    "ETHERTYPE_IP",
    "ETHERTYPE_IPV6",
    "ETHERTYPE_IPX",
    "ETHERTYPE_MPLS",
    "ETHERTYPE_MPLS_MULTI",
    "ETHERTYPE_OSI",
    "ETHERTYPE_PPPOE_DISC",
    "ETHERTYPE_PPPOE_SESS",
    "ETHERTYPE_QINQ",
    "ETHERTYPE_REVARP",
    "ETHERTYPE_TEB",
    "ETH_P_802_2",
    "ETH_P_ALL",
    "IPPROTO_AH",
    "IPPROTO_ESP",
    "IPPROTO_GRE",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_IGMP",
    "IPPROTO_IPIP",
    "IPPROTO_IPV6",
    "IPPROTO_OSPF",
    "IPPROTO_PIM",
    "IPPROTO_SCTP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IPPROTO_VRRP",
    "LINK_MESSAGE",
    "LINUX_AF_INET",
    "LINUX_AF_INET6",
    "NLPID_CLNP",
    "NLPID_ESIS",
    "NLPID_IP",
    "NLPID_IPV6",
    "NLPID_ISIS",
    "NLPID_Q933",
    "NLPID_SNAP",
    "PORT_BGP",
    "PORT_BOOTPC",
    "PORT_BOOTPS",
    "PORT_DHCP6_CLIENT",
    "PORT_DHCP6_SERVER",
    "PORT_GENEVE",
    "PORT_HTTPS",
    "PORT_NTP",
    "PORT_VXLAN",
    "PORT_VXLAN_LINUX",
    "PPP_CCP",
    "PPP_CHAP",
    "PPP_IP",
    "PPP_IPCP",
    "PPP_IPV6",
    "PPP_IPV6CP",
    "PPP_IPX",
    "PPP_LCP",
    "PPP_LQR",
    "PPP_MPLS",
    "PPP_OSI",
    "PPP_PAP",
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

#: Pseudo ethertypes the link decoders return for what is no ethertype on the wire.
#: A frame of the link layer's own (802.11 management and control, SLARP, PPP control
#: protocols, NFLOG without payload): the link type's message formatter describes it.
LINK_MESSAGE = -2
#: An OSI network-layer PDU (IS-IS, CLNP, ES-IS): Cisco HDLC's protocol number for it.
ETHERTYPE_OSI = 0xFEFE
#: Transparent Ethernet bridging (an Ethernet frame inside GRE, NVGRE, PPP bridging).
ETHERTYPE_TEB = 0x6558
ETHERTYPE_IPX = 0x8137
ETHERTYPE_PPPOE_DISC = 0x8863
ETHERTYPE_PPPOE_SESS = 0x8864
#: Marvell's EDSA tag ethertype (programmable; this is the default).
ETHERTYPE_EDSA = 0xDADA

#: PPP protocol field values (RFC 1661 and the IANA PPP DLL protocol numbers).
PPP_IP = 0x0021
PPP_OSI = 0x0023
PPP_IPX = 0x002B
PPP_IPV6 = 0x0057
PPP_MPLS = 0x0281
PPP_IPCP = 0x8021
PPP_IPV6CP = 0x8057
PPP_CCP = 0x80FD
PPP_LCP = 0xC021
PPP_PAP = 0xC023
PPP_LQR = 0xC025
PPP_CHAP = 0xC223

#: Cisco HDLC address bytes and its own protocol numbers beside ethertypes.
CHDLC_UNICAST = 0x0F
CHDLC_BCAST = 0x8F
CHDLC_SLARP = 0x8035
CHDLC_CDP = 0x2000

#: Network layer protocol identifiers (ISO/IEC TR 9577), as Frame Relay and OSI use them.
NLPID_Q933 = 0x08
NLPID_SNAP = 0x80
NLPID_CLNP = 0x81
NLPID_ESIS = 0x82
NLPID_ISIS = 0x83
NLPID_IPV6 = 0x8E
NLPID_IP = 0xCC

IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_GRE = 47
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_OSPF = 89
IPPROTO_PIM = 103
IPPROTO_VRRP = 112
IPPROTO_SCTP = 132

#: UDP ports of the protocols the text log decodes by port.
PORT_BOOTPS = 67
PORT_BOOTPC = 68
PORT_NTP = 123
PORT_DHCP6_CLIENT = 546
PORT_DHCP6_SERVER = 547
PORT_GENEVE = 6081
PORT_VXLAN = 4789
#: Linux's VXLAN port before IANA assigned 4789.
PORT_VXLAN_LINUX = 8472
PORT_HTTPS = 443
#: TCP port of BGP.
PORT_BGP = 179

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
