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

__all__ = [
    "CONSTANTS",
    "ETHER_PROTO_NAMES",
    "ETHER_WORDS",
    "IP_PROTO_NAMES",
    "IP_WORDS",
    "ISIS_WORDS",
    "ISO_PROTOS",
    "LLC_KINDS",
    "LOAD_PROTOS",
    "PROTO_WORDS",
    "WLAN_DIRS",
    "WLAN_SUBTYPES",
    "WLAN_TYPES",
]

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
    "icmp6-routerrenum": 138,
    "icmp6-nodeinformationquery": 139,
    "icmp6-nodeinformationresponse": 140,
    "icmp6-ineighbordiscoverysolicit": 141,
    "icmp6-ineighbordiscoveryadvert": 142,
    "icmp6-multicastlistenerreportv2": 143,
    "icmp6-homeagentdiscoveryrequest": 144,
    "icmp6-homeagentdiscoveryreply": 145,
    "icmp6-mobileprefixsolicit": 146,
    "icmp6-mobileprefixadvert": 147,
    "icmp6-certpathsolicit": 148,
    "icmp6-certpathadvert": 149,
    "icmp6-multicastrouteradvert": 151,
    "icmp6-multicastroutersolicit": 152,
    "icmp6-multicastrouterterm": 153,
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

#: Headers ``PROTO[...]`` can index; fddi, tr, ppp, slip and wlan are other names of ``link``.
LOAD_PROTOS = frozenset(PROTO_WORDS | {"ether", "link", "fddi", "tr", "ppp", "slip", "wlan"})
LINK_WORDS = frozenset({"ether", "link", "fddi", "tr", "ppp", "slip", "wlan"})

#: Protocol words that stand for an IP protocol: (number, "ip" when IPv4 only, else "").
IP_WORDS: dict[str, tuple[int, str]] = {
    "ah": (51, ""),
    "esp": (50, ""),
    "pim": (103, ""),
    "vrrp": (112, "ip"),
    "carp": (112, "ip"),
    "igrp": (9, "ip"),
}

#: Protocol words that stand for a link-layer protocol (``ether proto \\NAME``): ethertypes
#: above 1500, 802.2 SAPs at or below.
ETHER_WORDS: dict[str, int] = {
    "atalk": 0x809B,
    "aarp": 0x80F3,
    "decnet": 0x6003,
    "lat": 0x6004,
    "sca": 0x6007,
    "mopdl": 0x6001,
    "moprc": 0x6002,
    "iso": 0xFE,
    "stp": 0x42,
    "ipx": 0xE0,
    "netbeui": 0xF0,
}

#: OSI network-layer protocol ids (``iso proto NAME``, and the words standing for them).
ISO_PROTOS: dict[str, int] = {
    "clnp": 0x81,
    "esis": 0x82,
    "es-is": 0x82,
    "isis": 0x83,
    "is-is": 0x83,
}
#: Words standing for sets of IS-IS PDU types (``isis proto N or ...``).
ISIS_WORDS: dict[str, tuple[int, ...]] = {
    "l1": (0x1A, 0x18, 0x12, 0x0F, 0x11),
    "l2": (0x1B, 0x19, 0x14, 0x10, 0x11),
    "iih": (0x11, 0x0F, 0x10),
    "lsp": (0x12, 0x14),
    "snp": (0x1B, 0x1A, 0x18, 0x19),
    "csnp": (0x18, 0x19),
    "psnp": (0x1A, 0x1B),
}

#: ``llc KIND``: (mask, value) of the LLC control byte.
LLC_KINDS: dict[str, tuple[int, int]] = {
    "i": (0x01, 0x00),
    "s": (0x03, 0x01),
    "u": (0x03, 0x03),
    "rr": (0x0F, 0x01),
    "rnr": (0x0F, 0x05),
    "rej": (0x0F, 0x09),
    "ui": (0xEF, 0x03),
    "ua": (0xEF, 0x63),
    "disc": (0xEF, 0x43),
    "dm": (0xEF, 0x0F),
    "sabme": (0xEF, 0x6F),
    "test": (0xEF, 0xE3),
    "xid": (0xEF, 0xAF),
    "frmr": (0xEF, 0x87),
}

#: 802.11 frame types (frame control bits 2-3) by name.
WLAN_TYPES: dict[str, int] = {
    "mgt": 0x00,
    "management": 0x00,
    "ctl": 0x04,
    "control": 0x04,
    "data": 0x08,
}
#: 802.11 subtypes (frame control bits 4-7) by name, per type, in libpcap's order.
WLAN_SUBTYPES: dict[int, dict[str, int]] = {
    0x00: {
        "assoc-req": 0x00,
        "assocreq": 0x00,
        "assoc-resp": 0x10,
        "assocresp": 0x10,
        "reassoc-req": 0x20,
        "reassocreq": 0x20,
        "reassoc-resp": 0x30,
        "reassocresp": 0x30,
        "probe-req": 0x40,
        "probereq": 0x40,
        "probe-resp": 0x50,
        "proberesp": 0x50,
        "beacon": 0x80,
        "atim": 0x90,
        "disassoc": 0xA0,
        "disassociation": 0xA0,
        "auth": 0xB0,
        "authentication": 0xB0,
        "deauth": 0xC0,
        "deauthentication": 0xC0,
    },
    0x04: {
        "bar": 0x80,
        "ba": 0x90,
        "ps-poll": 0xA0,
        "rts": 0xB0,
        "cts": 0xC0,
        "ack": 0xD0,
        "cf-end": 0xE0,
        "cf-end-ack": 0xF0,
    },
    0x08: {
        "data": 0x00,
        "data-cf-ack": 0x10,
        "data-cf-poll": 0x20,
        "data-cf-ack-poll": 0x30,
        "null": 0x40,
        "cf-ack": 0x50,
        "cf-poll": 0x60,
        "cf-ack-poll": 0x70,
        "qos-data": 0x80,
        "qos-data-cf-ack": 0x90,
        "qos-data-cf-poll": 0xA0,
        "qos-data-cf-ack-poll": 0xB0,
        "qos": 0xC0,
        "qos-cf-poll": 0xE0,
        "qos-cf-ack-poll": 0xF0,
    },
}
#: ``wlan dir NAME``: the To DS / From DS bits.
WLAN_DIRS: dict[str, int] = {"nods": 0, "tods": 1, "fromds": 2, "dstods": 3}

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
    **ETHER_WORDS,
    "loopback": 0x9000,
    "lldp": 0x88CC,
    "slow": 0x8809,
}
