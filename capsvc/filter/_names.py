"""Named constants and protocol tables of the filter language (libpcap's spellings)."""

from __future__ import annotations

from ..decode._const import (
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    ETHERTYPE_REVARP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IGMP,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
)

__all__ = ["CONSTANTS", "ETHER_PROTO_NAMES", "IP_PROTO_NAMES", "LOAD_PROTOS", "PROTO_WORDS"]

#: Constants usable in arithmetic: field offsets and values, as tcpdump names them.
CONSTANTS: dict[str, int] = {
    "icmptype": 0,
    "icmpcode": 1,
    "icmp-echoreply": 0,
    "icmp-unreach": 3,
    "icmp-sourcequench": 4,
    "icmp-redirect": 5,
    "icmp-echo": 8,
    "icmp-routeradvert": 9,
    "icmp-routersolicit": 10,
    "icmp-timxceed": 11,
    "icmp-paramprob": 12,
    "icmp-tstamp": 13,
    "icmp-tstampreply": 14,
    "icmp-ireq": 15,
    "icmp-ireqreply": 16,
    "icmp-maskreq": 17,
    "icmp-maskreply": 18,
    "icmp6type": 0,
    "icmp6code": 1,
    "icmp6-destinationunreach": 1,
    "icmp6-packettoobig": 2,
    "icmp6-timeexceeded": 3,
    "icmp6-parameterproblem": 4,
    "icmp6-echo": 128,
    "icmp6-echoreply": 129,
    "icmp6-multicastlistenerquery": 130,
    "icmp6-multicastlistenerreportv1": 131,
    "icmp6-multicastlistenerdone": 132,
    "icmp6-routersolicit": 133,
    "icmp6-routeradvert": 134,
    "icmp6-neighborsolicit": 135,
    "icmp6-neighboradvert": 136,
    "icmp6-redirect": 137,
    "tcpflags": 13,
    "tcp-fin": 0x01,
    "tcp-syn": 0x02,
    "tcp-rst": 0x04,
    "tcp-push": 0x08,
    "tcp-ack": 0x10,
    "tcp-urg": 0x20,
    "tcp-ece": 0x40,
    "tcp-cwr": 0x80,
}

#: Protocol abbreviations that stand alone as primitives.
PROTO_WORDS = frozenset({"ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp"})

#: Headers ``PROTO[...]`` can index.
LOAD_PROTOS = frozenset(PROTO_WORDS | {"ether", "link"})

#: Names accepted after ``proto`` / ``ip proto`` / ``ip6 proto``.
IP_PROTO_NAMES: dict[str, int] = {
    "icmp": IPPROTO_ICMP,
    "igmp": IPPROTO_IGMP,
    "tcp": IPPROTO_TCP,
    "udp": IPPROTO_UDP,
    "icmp6": IPPROTO_ICMPV6,
    "sctp": IPPROTO_SCTP,
}

#: Names accepted after ``ether proto``.
ETHER_PROTO_NAMES: dict[str, int] = {
    "ip": ETHERTYPE_IP,
    "ip6": ETHERTYPE_IPV6,
    "arp": ETHERTYPE_ARP,
    "rarp": ETHERTYPE_REVARP,
}
