"""Expressions of libpcap's own test suite (testprogs/TESTrun), with the link type each is
compiled for there: the ones that need no name service (no host, network or Ethernet names).

Data for the differential test; the 802.11 type and subtype names are generated from the
tables (every spelling TESTrun lists: with and without ``wlan``, by name and by number).
"""

from __future__ import annotations

from capsvc._packet import LinkType
from capsvc.filter._names import CONSTANTS, WLAN_DIRS, WLAN_SUBTYPES, WLAN_TYPES

_ROWS = r"""
ETHERNET|
RAW|greater 100
RAW|len >= 100
RAW|length >= 100
RAW|less 200
RAW|len <= 200
RAW|length <= 200
ETHERNET|link[5] == 0x12
ETHERNET|ether[5] == 0x12
ETHERNET|fddi[5] == 0x12
ETHERNET|ppp[5] == 0x12
ETHERNET|slip[5] == 0x12
ETHERNET|tr[5] == 0x12
ETHERNET|wlan[5] == 0x12
ETHERNET|ether[5:1] == 0x12
ETHERNET|fddi[5:1] == 0x12
ETHERNET|ppp[5:1] == 0x12
ETHERNET|slip[5:1] == 0x12
ETHERNET|tr[5:1] == 0x12
ETHERNET|wlan[5:1] == 0x12
ETHERNET|link[7:2] == 0x1234
ETHERNET|ether[7:2] == 0x1234
ETHERNET|fddi[7:2] == 0x1234
ETHERNET|ppp[7:2] == 0x1234
ETHERNET|slip[7:2] == 0x1234
ETHERNET|tr[7:2] == 0x1234
ETHERNET|wlan[7:2] == 0x1234
ETHERNET|link[10:4] == 0x12345678
ETHERNET|ether[10:4] == 0x12345678
ETHERNET|fddi[10:4] == 0x12345678
ETHERNET|ppp[10:4] == 0x12345678
ETHERNET|slip[10:4] == 0x12345678
ETHERNET|tr[10:4] == 0x12345678
ETHERNET|wlan[10:4] == 0x12345678
ETHERNET|icmp[icmptype] != 0xff
ETHERNET|icmp[0] != 0xff
ETHERNET|icmp[icmpcode] != 0xff
ETHERNET|icmp[1] != 0xff
IPV6|icmp6[icmp6type] != 0xff
IPV6|icmp6[0] != 0xff
IPV6|icmp6[icmp6code] != 0xff
IPV6|icmp6[1] != 0xff
RAW|udp[8:2] == 0xabcd
RAW|tcp[tcpflags] == 0xFF
RAW|tcp[13] == 0xFF
LINUX_SLL|inbound
LINUX_SLL|outbound
LINUX_SLL2|inbound
LINUX_SLL2|outbound
LINUX_SLL2|ifindex 7
SLIP|inbound
SLIP|outbound
ETHERNET|inbound
ETHERNET|outbound
ETHERNET|ifindex 10
IEEE802_11|broadcast
IEEE802_11|wlan broadcast
IEEE802_11|ether broadcast
IEEE802_11|link broadcast
IEEE802_11|multicast
IEEE802_11|wlan multicast
IEEE802_11|ether multicast
IEEE802_11|link multicast
ETHERNET|broadcast
ETHERNET|ether broadcast
ETHERNET|link broadcast
ETHERNET|multicast
ETHERNET|ether multicast
ETHERNET|link multicast
ETHERNET|ether host ab:cd:ef:0:0:1
ETHERNET|ether src or dst host ab.CD.ef.0.0.1
ETHERNET|ether src or dst Ab.cD.ef.00.0.01
ETHERNET|ether src host ab-cd-ef-00-00-02
ETHERNET|ether src ab.cd.ef.00.00.02
ETHERNET|ether dst host abcd.ef00.0003
ETHERNET|ether dst abcdef000003
ETHERNET|ether proto \aarp
ETHERNET|aarp
ETHERNET|ether proto \arp
ETHERNET|arp
ETHERNET|ether proto \atalk
ETHERNET|atalk
ETHERNET|ether proto \decnet
ETHERNET|decnet
ETHERNET|ether proto \ip
ETHERNET|ip
ETHERNET|ether proto 6
ETHERNET|ether proto \ip6
ETHERNET|ip6
ETHERNET|ether proto \ipx
ETHERNET|ipx
ETHERNET|ether proto \iso
ETHERNET|iso
ETHERNET|ether proto \lat
ETHERNET|lat
ETHERNET|ether proto lldp
ETHERNET|ether proto loopback
ETHERNET|ether proto \mopdl
ETHERNET|mopdl
ETHERNET|ether proto \moprc
ETHERNET|moprc
ETHERNET|ether proto \netbeui
ETHERNET|netbeui
ETHERNET|ether proto \rarp
ETHERNET|rarp
ETHERNET|ether proto \sca
ETHERNET|sca
ETHERNET|ether proto slow
ETHERNET|ether proto \stp
ETHERNET|stp
C_HDLC|link proto \ip
C_HDLC|link proto \iso
IEEE802_11|link proto \ip
IEEE802_11_RADIO|link proto \ip
LINUX_SLL|link proto \ip
LINUX_SLL2|link proto \ip
LINUX_SLL|link proto \ip6
LINUX_SLL|link proto 6
LINUX_SLL|link proto \iso
LINUX_SLL|link proto \netbeui
LINUX_SLL|link proto \ipx
LINUX_SLL|link proto \atalk
LINUX_SLL|link proto \aarp
SLIP|link proto \ip
RAW|link proto \ip
RAW|link proto \ip6
RAW|link proto \stp
IPV4|link proto \ip
IPV4|link proto \ip6
IPV6|link proto \ip6
IPV6|link proto \ip
PPP|link proto \ip
PPP|link proto \ip6
PPP|link proto \decnet
PPP|link proto \atalk
PPP|link proto 0x0600
PPP|link proto \iso
PPP|link proto \stp
PPP|link proto \lat
PPP|link proto \ipx
PPP_HDLC|link proto \ip
NULL|link proto \ip
NULL|link proto \ip6
NULL|link proto \stp
LOOP|link proto \ip
LOOP|link proto \ip6
FRELAY|link proto \ip
FRELAY|link proto \ip6
FRELAY|link proto \iso
FRELAY|link proto \stp
ETHERNET|link proto 0
ETHERNET|link proto 255
ETHERNET|link proto 1501
ETHERNET|link proto 65535
ETHERNET|arp host 1.2.3.4
ETHERNET|arp src or dst 1.2.3.4
ETHERNET|arp src or dst host 1.2.3.4
ETHERNET|rarp host 1.2.3.4
ETHERNET|rarp src or dst 1.2.3.4
ETHERNET|rarp src or dst host 1.2.3.4
ETHERNET|arp src 1.2.3.4
ETHERNET|arp src host 1.2.3.4
ETHERNET|rarp src 1.2.3.4
ETHERNET|rarp src host 1.2.3.4
ETHERNET|arp dst 1.2.3.4
ETHERNET|arp dst host 1.2.3.4
ETHERNET|rarp dst 1.2.3.4
ETHERNET|rarp dst host 1.2.3.4
C_HDLC|arp host 1.2.3.4
C_HDLC|rarp host 1.2.3.4
IEEE802_11|arp host 1.2.3.4
IEEE802_11|rarp host 1.2.3.4
LINUX_SLL|arp host 1.2.3.4
LINUX_SLL|rarp host 1.2.3.4
RAW|arp host 1.2.3.4
PPP|arp host 1.2.3.4
PPP|rarp host 1.2.3.4
LINUX_SLL2|arp host 1.2.3.4
LINUX_SLL2|rarp host 1.2.3.4
ETHERNET|arp net 192.168.0.0/16
ETHERNET|arp src or dst net 192.168.0.0/16
ETHERNET|arp net 192.168/16
ETHERNET|arp src or dst net 192.168/16
ETHERNET|arp net 192.168.0.0 mask 255.255.0.0
ETHERNET|arp src or dst net 192.168.0.0 mask 255.255.0.0
ETHERNET|arp net 192.168.0.0 mask 255.255
ETHERNET|arp src or dst net 192.168.0.0 mask 255.255
ETHERNET|arp net 192.168 mask 255.255.0.0
ETHERNET|arp src or dst net 192.168 mask 255.255.0.0
ETHERNET|arp net 192.168 mask 255.255
ETHERNET|arp src or dst net 192.168 mask 255.255
ETHERNET|arp net 192.168
ETHERNET|arp src or dst net 192.168
LINUX_SLL2|rarp net 192.168.0.0/16
LINUX_SLL2|rarp src or dst net 192.168.0.0/16
LINUX_SLL2|rarp net 192.168/16
LINUX_SLL2|rarp src or dst net 192.168/16
LINUX_SLL2|rarp net 192.168.0.0 mask 255.255.0.0
LINUX_SLL2|rarp src or dst net 192.168.0.0 mask 255.255.0.0
LINUX_SLL2|rarp net 192.168.0.0 mask 255.255
LINUX_SLL2|rarp src or dst net 192.168.0.0 mask 255.255
LINUX_SLL2|rarp net 192.168 mask 255.255.0.0
LINUX_SLL2|rarp src or dst net 192.168 mask 255.255.0.0
LINUX_SLL2|rarp net 192.168 mask 255.255
LINUX_SLL2|rarp src or dst net 192.168 mask 255.255
LINUX_SLL2|rarp net 192.168
LINUX_SLL2|rarp src or dst net 192.168
ETHERNET|vlan
ETHERNET|vlan 4095
ETHERNET|vlan and vlan
ETHERNET|mpls
ETHERNET|mpls 100
ETHERNET|mpls and mpls
PPP|mpls 100
ETHERNET|pppoes and mpls 123
ETHERNET|vxlan
ETHERNET|vxlan 12345
ETHERNET|vxlan and vxlan
ETHERNET|geneve
ETHERNET|geneve 12345
ETHERNET|geneve and geneve
IEEE802_11|wlan host 12:34:56:78:9a:bc
IEEE802_11|wlan src or dst host 12:34:56:78:9a:bc
IEEE802_11|wlan src or dst 12:34:56:78:9a:bc
IEEE802_11|wlan src host 12:34:56:78:9a:bc
IEEE802_11|wlan src 12:34:56:78:9a:bc
IEEE802_11|wlan dst host 12:34:56:78:9a:bc
IEEE802_11|wlan dst 12:34:56:78:9a:bc
IEEE802_11|wlan ra 12:34:56:78:9a:bc
IEEE802_11|wlan ta 12:34:56:78:9a:bc
IEEE802_11|wlan addr1 12:34:56:78:9a:bc
IEEE802_11|wlan address1 12:34:56:78:9a:bc
IEEE802_11|wlan addr2 12:34:56:78:9a:bc
IEEE802_11|wlan address2 12:34:56:78:9a:bc
IEEE802_11|wlan addr3 12:34:56:78:9a:bc
IEEE802_11|wlan address3 12:34:56:78:9a:bc
IEEE802_11|wlan addr4 12:34:56:78:9a:bc
IEEE802_11|wlan address4 12:34:56:78:9a:bc
IEEE802_11|wlan type 12
IEEE802_11|type 12
IEEE802_11_RADIO|wlan dir fromds
ETHERNET|pppoed
ETHERNET|pppoes
ETHERNET|pppoes 1234
ETHERNET|llc
ETHERNET|llc i
ETHERNET|llc s
ETHERNET|llc u
ETHERNET|llc rr
ETHERNET|llc rnr
ETHERNET|llc rej
ETHERNET|llc ui
ETHERNET|llc ua
ETHERNET|llc disc
ETHERNET|llc dm
ETHERNET|llc sabme
ETHERNET|llc test
ETHERNET|llc xid
ETHERNET|llc frmr
IEEE802_11|llc
IEEE802_11|wlan type data
IEEE802_11_RADIO|llc
IEEE802_11_RADIO|wlan type data
ETHERNET|decnet host 50.764
ETHERNET|decnet src host 50.764
ETHERNET|decnet src 50.764
ETHERNET|decnet dst host 50.764
ETHERNET|decnet dst 50.764
ETHERNET|iso proto \clnp
ETHERNET|clnp
ETHERNET|iso proto 0x81
ETHERNET|iso proto \esis
ETHERNET|esis
ETHERNET|es-is
ETHERNET|iso proto 0x82
ETHERNET|iso proto \isis
ETHERNET|isis
ETHERNET|is-is
ETHERNET|iso proto 0x83
FRELAY|iso proto \clnp
C_HDLC|iso proto \clnp
ETHERNET|l1
ETHERNET|isis proto 0x1a or 0x18 or 0x12 or 0x0f or 0x11
ETHERNET|l2
ETHERNET|isis proto 0x1b or 0x19 or 0x14 or 0x10 or 0x11
ETHERNET|iih
ETHERNET|isis proto 0x11 or 0x0f or 0x10
ETHERNET|lsp
ETHERNET|isis proto 0x12 or 0x14
C_HDLC|lsp
ETHERNET|snp
ETHERNET|isis proto 0x1b or 0x1a or 0x18 or 0x19
ETHERNET|csnp
ETHERNET|isis proto 0x18 or 0x19
ETHERNET|psnp
ETHERNET|isis proto 0x1a or 0x1b
IPV4|ip multicast
IPV4|ip broadcast
RAW|ip broadcast
ETHERNET|ip proto \tcp
ETHERNET|ip proto 6
ETHERNET|ip6 proto \tcp
ETHERNET|ip6 proto 6
ETHERNET|proto \tcp
ETHERNET|proto 6
RAW|ip protochain \udp
RAW|ip protochain 17
RAW|ip6 protochain \udp
RAW|ip6 protochain 17
RAW|protochain \udp
RAW|protochain 17
RAW|ip host 192.168.170.211
RAW|ip src or dst 192.168.170.211
RAW|ip src or dst host 192.168.170.211
RAW|host 192.168.170.211
RAW|src or dst 192.168.170.211
RAW|src or dst host 192.168.170.211
RAW|ip host 0xc0a8aad3
RAW|ip src or dst 0xc0a8aad3
RAW|ip src or dst host 0xc0a8aad3
RAW|host 0xc0a8aad3
RAW|src or dst 0xc0a8aad3
RAW|src or dst host 0xc0a8aad3
RAW|ip host 3232279251
RAW|ip src or dst 3232279251
RAW|ip src or dst host 3232279251
RAW|host 3232279251
RAW|src or dst 3232279251
RAW|src or dst host 3232279251
RAW|ip net 192.168.170.211/32
RAW|ip src or dst net 192.168.170.211/ 32
RAW|net 192.168.170.211 /32
RAW|src or dst net 192.168.170.211 / 32
RAW|ip net 192.168.170.211
RAW|ip src or dst net 192.168.170.211
RAW|net 192.168.170.211
RAW|src or dst net 192.168.170.211
RAW|ip net 0xc0a8aad3
RAW|ip src or dst net 0xc0a8aad3
RAW|net 0xc0a8aad3
RAW|src or dst net 0xc0a8aad3
RAW|ip net 3232279251
RAW|ip src or dst net 3232279251
RAW|net 3232279251
RAW|src or dst net 3232279251
RAW|ip src host 10.0.0.2
RAW|ip src 10.0.0.2
RAW|src host 10.0.0.2
RAW|src 10.0.0.2
RAW|ip src host 0x0a000002
RAW|ip src 0x0A000002
RAW|src host 0X0a000002
RAW|src 0X0A000002
RAW|ip src host 0xa000002
RAW|ip src 0xA000002
RAW|src host 0Xa000002
RAW|src 0XA000002
RAW|ip src host 167772162
RAW|ip src 167772162
RAW|src host 167772162
RAW|src 167772162
RAW|ip src host 01200000002
RAW|ip src 01200000002
RAW|src host 01200000002
RAW|src 01200000002
RAW|ip src net 10.0.0.2/  32
RAW|src net 10.0.0.2  /32
RAW|ip src net 10.0.0.2
RAW|src net 10.0.0.2
RAW|ip src net 0x0a000002
RAW|src net 0X0a000002
RAW|ip src net 0xa000002
RAW|src net 0Xa000002
RAW|ip src net 167772162
RAW|src net 167772162
RAW|ip src net 01200000002
RAW|src net 01200000002
RAW|ip dst host 172.17.89.30
RAW|ip dst 172.17.89.30
RAW|dst host 172.17.89.30
RAW|dst 172.17.89.30
RAW|ip dst host 0xac11591e
RAW|ip dst 0xAC11591E
RAW|dst host 0Xac11591e
RAW|dst 0XAC11591E
RAW|ip dst host 2886818078
RAW|ip dst 2886818078
RAW|dst host 2886818078
RAW|dst 2886818078
RAW|ip dst net 172.17.89.30 /  32
RAW|dst net 172.17.89.30  / 32
RAW|ip dst net 172.17.89.30
RAW|dst net 172.17.89.30
RAW|ip dst net 0xac11591e
RAW|dst net 0Xac11591e
RAW|ip dst net 2886818078
RAW|dst net 2886818078
RAW|ip net 192.168.0.0/16
RAW|ip src or dst net 192.168.0.0/16
RAW|net 192.168.0.0/16
RAW|src or dst net 192.168.0.0/16
RAW|ip net 192.168/16
RAW|ip src or dst net 192.168/16
RAW|net 192.168/16
RAW|src or dst net 192.168/16
RAW|ip net 192.168.0.0 mask 255.255.0.0
RAW|ip src or dst net 192.168.0.0 mask 255.255.0.0
RAW|net 192.168.0.0 mask 255.255.0.0
RAW|src or dst net 192.168.0.0 mask 255.255.0.0
RAW|ip net 192.168.0.0 mask 255.255
RAW|ip src or dst net 192.168.0.0 mask 255.255
RAW|net 192.168.0.0 mask 255.255
RAW|src or dst net 192.168.0.0 mask 255.255
RAW|ip net 192.168 mask 255.255.0.0
RAW|ip src or dst net 192.168 mask 255.255.0.0
RAW|net 192.168 mask 255.255.0.0
RAW|src or dst net 192.168 mask 255.255.0.0
RAW|ip net 192.168 mask 255.255
RAW|ip src or dst net 192.168 mask 255.255
RAW|net 192.168 mask 255.255
RAW|src or dst net 192.168 mask 255.255
RAW|ip net 192.168
RAW|ip src or dst net 192.168
RAW|net 192.168
RAW|src or dst net 192.168
RAW|ip src net 10.0.1.0/24
RAW|src net 10.0.1.0/24
RAW|ip src net 10.0.1/24
RAW|src net 10.0.1/24
RAW|ip src net 10.0.1.0 mask 255.255.255.0
RAW|src net 10.0.1.0 mask 255.255.255.0
RAW|ip src net 10.0.1.0 mask 255.255.255
RAW|src net 10.0.1.0 mask 255.255.255
RAW|ip src net 10.0.1 mask 255.255.255.0
RAW|src net 10.0.1 mask 255.255.255.0
RAW|ip src net 10.0.1 mask 255.255.255
RAW|src net 10.0.1 mask 255.255.255
RAW|ip src net 10.0.1
RAW|src net 10.0.1
RAW|ip dst net 0.0.0.0/0
RAW|ip dst net 10.0.0.0/8
RAW|dst net 10.0.0.0/8
RAW|ip dst net 10.0.0.0 mask 255.0.0.0
RAW|dst net 10.0.0.0 mask 255.0.0.0
RAW|ip dst net 10
RAW|dst net 10
RAW|ah
RAW|proto 51
RAW|esp
RAW|proto 50
RAW|pim
RAW|proto 103
RAW|sctp
RAW|proto 132
RAW|tcp
RAW|proto 6
RAW|udp
RAW|proto 17
RAW|ip6 host ::1
RAW|ip6 src or dst host ::1
RAW|ip6 src or dst ::1
RAW|host ::1
RAW|src or dst host ::1
RAW|src or dst ::1
RAW|ip6 net ::1/128
RAW|ip6 src or dst net ::1/128
RAW|net ::1/128
RAW|src or dst net ::1/128
RAW|ip6 net ::1
RAW|ip6 src or dst net ::1
RAW|net ::1
RAW|src or dst net ::1
RAW|ip6 host ::1/128
RAW|ip6 src or dst host ::1/128
RAW|ip6 src or dst ::1/128
RAW|host ::1/128
RAW|src or dst host ::1/128
RAW|src or dst ::1/128
RAW|ip6 host ::0.0.0.1
RAW|host ::0.0.0.1
RAW|net ::0.0.0.1/128
RAW|src or dst ::0.0.0.1/128
RAW|ip6 src host fe80::1122:33ff:fe44:5566
RAW|ip6 src fe80::1122:33ff:fe44:5566
RAW|src host fe80::1122:33ff:fe44:5566
RAW|src fe80::1122:33ff:fe44:5566
RAW|ip6 src host fe80::1122:33ff:fe44:5566/128
RAW|src fe80::1122:33ff:fe44:5566/128
RAW|ip6 src host fe80::1122:33ff:254.68.85.102
RAW|src fe80::1122:33ff:254.68.85.102/128
RAW|ip6 dst host fe80::7788:99ff:feaa:bbcc
RAW|ip6 dst fe80::7788:99ff:feaa:bbcc
RAW|dst host fe80::7788:99ff:feaa:bbcc/128
RAW|dst fe80::7788:99ff:254.170.187.204
RAW|ip6 net fe80::/10
RAW|net fe80::/10
RAW|src or dst net fe80::/10
RAW|ip6 src or dst net fe80::/10
RAW|ip6 net fe80::0.0.0.0/10
RAW|net fe80::0.0.0.0/10
RAW|ip6 src net 2000::/3
RAW|src net 2000::/3
RAW|ip6 src net 2000::0.0.0.0/3
RAW|ip6 dst net ::/0
RAW|ip6 dst net ::0.0.0.0/0
RAW|ip6 dst net ff00::/8
RAW|ip6 dst net ff11:2233:4400::/40
RAW|ip6 dst net ff11:2233:4455:6677:8899::/80
RAW|ip6 dst net ff11:2233:4455:6677:8899:aabb:ccdd:ee00/120
RAW|ip6 dst net ff11:2233:4455:6677:8899:aabb:204.221.238.0/120
IPV6|ip6 multicast
ETHERNET|icmptype == 0 && icmpcode == 1 && icmp6type == 0 && icmp6code == 1 && tcpflags == 13
ETHERNET|tcp port 25
ETHERNET|tcp port smtp
ETHERNET|tcp src or dst port 25
ETHERNET|tcp src or dst port smtp
ETHERNET|tcp portrange 25-25
ETHERNET|tcp portrange 25-smtp
ETHERNET|tcp portrange smtp-25
ETHERNET|tcp portrange smtp-smtp
ETHERNET|tcp portrange 25
ETHERNET|tcp src or dst portrange 25-25
ETHERNET|tcp src or dst portrange 25-smtp
ETHERNET|tcp src or dst portrange smtp-25
ETHERNET|tcp src or dst portrange smtp-smtp
ETHERNET|tcp src or dst portrange 25
ETHERNET|tcp src port 25
ETHERNET|tcp src port smtp
ETHERNET|tcp src portrange 25-25
ETHERNET|tcp src portrange 25-smtp
ETHERNET|tcp src portrange smtp-25
ETHERNET|tcp src portrange smtp-smtp
ETHERNET|tcp src portrange 25
ETHERNET|tcp dst port 25
ETHERNET|tcp dst port smtp
ETHERNET|tcp dst portrange 25-25
ETHERNET|tcp dst portrange 25-smtp
ETHERNET|tcp dst portrange smtp-25
ETHERNET|tcp dst portrange smtp-smtp
ETHERNET|tcp dst portrange 25
ETHERNET|tcp portrange 25-53
ETHERNET|tcp portrange 25-domain
ETHERNET|tcp portrange smtp-53
ETHERNET|tcp portrange smtp-domain
ETHERNET|tcp portrange 53-25
ETHERNET|tcp portrange domain-25
ETHERNET|tcp portrange 53-smtp
ETHERNET|tcp portrange domain-smtp
ETHERNET|tcp src or dst portrange 25-53
ETHERNET|tcp src or dst portrange domain-smtp
ETHERNET|carp
ETHERNET|vrrp
ETHERNET|ip proto 112
ETHERNET|icmp
ETHERNET|ip proto 1
ETHERNET|igmp
ETHERNET|ip proto 2
ETHERNET|igrp
ETHERNET|ip proto 9
ETHERNET|icmp6
ETHERNET|ip6 proto 58
ETHERNET|tcp dst portrange 25-53
ETHERNET|tcp dst portrange domain-smtp
ETHERNET|udp port 53
ETHERNET|udp port domain
ETHERNET|udp src or dst port domain
ETHERNET|udp portrange 53-domain
ETHERNET|udp portrange domain-domain
ETHERNET|udp portrange 53
ETHERNET|udp src port domain
ETHERNET|udp src portrange domain-53
ETHERNET|udp dst port domain
ETHERNET|udp dst portrange 53
ETHERNET|udp portrange 67-68
ETHERNET|udp portrange 67-bootpc
ETHERNET|udp portrange bootps-68
ETHERNET|udp portrange bootps-bootpc
ETHERNET|udp portrange bootpc-bootps
ETHERNET|udp src or dst portrange 68-bootps
ETHERNET|udp src portrange bootps-bootpc
ETHERNET|udp dst portrange bootpc-67
ETHERNET|sctp port 5672
ETHERNET|sctp src or dst port 5672
ETHERNET|sctp portrange 5672-5672
ETHERNET|sctp portrange 5672
ETHERNET|sctp src port 5672
ETHERNET|sctp src portrange 5672
ETHERNET|port 7
ETHERNET|portrange 7-7
ETHERNET|portrange 7
ETHERNET|src port 7
ETHERNET|src portrange 7
ETHERNET|dst port 7
ETHERNET|dst portrange 7-7
ETHERNET|dst portrange 7
ETHERNET|portrange 1-1023
ETHERNET|portrange 1023-1
ETHERNET|src portrange 1-1023
ETHERNET|src portrange 1023-1
ETHERNET|dst portrange 1-1023
ETHERNET|dst portrange 1023-1
IPV4|byte 8 = 5
IPV4|byte 8 == 5
IPV4|byte 8 < 5
IPV4|byte 8 > 5
IPV4|byte 8 | 5
IPV4|byte 8 & 5
"""


def _wlan() -> list[tuple[LinkType, str]]:
    out = []
    for prefix in ("wlan ", ""):
        for name, value in WLAN_TYPES.items():
            for spelling in (name, str(value)):
                out.append(f"{prefix}type {spelling}")
                for sub, bits in WLAN_SUBTYPES[value].items():
                    out.append(f"{prefix}type {spelling} subtype {sub}")
                    out.append(f"{prefix}type {spelling} subtype {bits:#04x}")
        for sub in (s for subs in WLAN_SUBTYPES.values() for s in subs):
            out.append(f"{prefix}subtype {sub}")
        for word in ("dir", "direction"):
            for name, value in WLAN_DIRS.items():
                out += [f"{prefix}{word} {name}", f"{prefix}{word} {value}"]
    return [(LinkType.IEEE802_11, e) for e in dict.fromkeys(out)]


def _named_constants() -> list[tuple[LinkType, str]]:
    """TESTrun's checks that every named constant has its value: one long conjunction each
    for the ICMP types, ICMPv6 types, TCP flags and named offsets."""
    icmp = [f"{v} == {k}" for k, v in CONSTANTS.items() if k.startswith("icmp-")]
    icmp6 = [f"{v} == {k}" for k, v in CONSTANTS.items() if k.startswith("icmp6-")]
    flags = [f"{v:#04x} == {k}" for k, v in CONSTANTS.items() if k.startswith("tcp-")]
    offsets = [f"{k} == {v}" for k in ("icmptype", "icmpcode", "icmp6type", "icmp6code",
               "tcpflags") for v in (CONSTANTS[k],)]  # fmt: skip
    return [
        (LinkType.ETHERNET, " && ".join(icmp)),
        (LinkType.IPV6, " && ".join(icmp6)),
        (LinkType.ETHERNET, " && ".join(flags)),
        (LinkType.ETHERNET, " && ".join(offsets)),
    ]


#: (link type, expression) pairs.
TESTRUN: list[tuple[LinkType, str]] = (
    [(LinkType[lt], expr) for lt, expr in (row.split("|", 1) for row in _ROWS.split("\n") if row)]
    + _wlan()
    + _named_constants()
)
