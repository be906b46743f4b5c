"""IPv4 and IPv6 in tcpdump's words (print-ip.c, print-ip6.c, ip_demux_print).

Pure module. ``IP src > dst: `` then the transport (TCP and UDP print their ports after the
addresses themselves: ``IP 10.0.0.1.40000 > 10.0.0.2.80: ``); ``-v`` adds tcpdump's
parenthesised header fields and a new line. The IP header's total length bounds every read
of what follows it, as tcpdump's nd_push_snaplen does. A protocol capsvc does not decode
prints as tcpdump prints an unknown one: `` ip-proto-89 40`` (the protocol and the payload
length).
"""

from __future__ import annotations

from . import _gre, _icmp, _ipsec, _tcp, _udp
from ._nd import PRINTERS, Cut, Nd
from ._sum import checksum as _checksum
from ._sum import should_be as _should_be

__all__ = ["IPPROTO_NAMES", "ip6_print", "ip_demux", "ip_print"]

#: tcpdump's names of IP protocols (``proto TCP (6)`` in ``-v``), ipproto.c's table.
IPPROTO_NAMES = {
    0: "Options", 1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 8: "EGP", 9: "IGRP", 17: "UDP",
    33: "DCCP", 41: "IPv6", 43: "Routing", 44: "Fragment", 46: "RSVP", 47: "GRE", 50: "ESP",
    51: "AH", 55: "Mobile IP", 58: "ICMPv6", 59: "NONE", 60: "Dst Options",
    62: "Mobile IP (old)", 77: "ND", 88: "EIGRP", 89: "OSPF", 103: "PIM",
    108: "Compressed IP", 112: "VRRP", 113: "PGM", 132: "SCTP", 135: "Mobility", 143: "Ethernet",
}  # fmt: skip
_PORTED = frozenset((6, 17, 33, 132))
_FRAG_FLAGS = ((0x2000, "+"), (0x4000, "DF"), (0x8000, "rsvd"))
_ECN = ("", ",ECT(1)", ",ECT(0)", ",CE")


def ip_print(nd: Nd, pos: int, length: int) -> None:
    """The IPv4 datagram at ``pos``; ``length`` is what the link layer says is left."""
    nd.proto = "ip"
    version = nd.u8(pos) >> 4
    if version != 4:
        nd.put("IP6, wrong link-layer encapsulation" if version == 6 else f"IP{version}")
        nd.put(" (invalid)")
        return
    if not nd.opts.link:
        nd.put("IP ")
    if not nd.has(pos, 20):
        # tcpdump's own check, not a longjmp: -x still leaves the link header out
        nd.trunc()
        return
    if length < 20:
        nd.put(f"truncated-ip {length}")
        return
    hlen = (nd.u8(pos) & 15) * 4
    if hlen < 20:
        nd.put(f"bad-hlen {hlen}")
        return
    total = nd.u16(pos + 2)
    if length < total:
        nd.put(f"truncated-ip - {total - length} bytes missing! ")
    if total < hlen:
        nd.put(f"bad-len {total}")
        return
    nd.push(pos + total)
    try:
        _ip_body(nd, pos, hlen, total)
    finally:
        nd.pop()


def _ip_body(nd: Nd, pos: int, hlen: int, total: int) -> None:
    length = total - hlen
    off = nd.u16(pos + 6)
    proto = nd.u8(pos + 9)
    data = nd.data
    if nd.opts.verbose:
        tos = nd.u8(pos + 1)
        nd.put(f"(tos 0x{tos:x}{_ECN[tos & 3]}")
        ttl = nd.u8(pos + 8)
        if ttl >= 1:
            nd.put(f", ttl {ttl}")
        flags = ", ".join(name for bit, name in _FRAG_FLAGS if off & bit) or "none"
        name = IPPROTO_NAMES.get(proto, "unknown")
        nd.put(
            f", id {nd.u16(pos + 4)}, offset {(off & 0x1FFF) * 8}, flags [{flags}], "
            f"proto {name} ({proto}), length {total}"
        )
        if hlen > 20:
            nd.put(", options (")
            cut = _ip_options(nd, pos + 20, hlen - 20)
            if cut:
                nd.put(" [truncated-option]")
            nd.put(")")
        else:
            cut = False
        if nd.has(pos, hlen):
            header = data[pos : pos + hlen]
            sum_ = _checksum(header)
            if sum_:
                value = nd.u16(pos + 10)
                nd.put(f", bad cksum {value:x} (->{_should_be(value, sum_):x})!")
        nd.put(")\n    ")
        if cut:
            nd.put(f"{nd.ip4(pos + 12)} > {nd.ip4(pos + 16)}:")
            nd.trunc()
            return
    if off & 0x1FFF == 0:
        if proto not in _PORTED:
            nd.put(f"{nd.ip4(pos + 12)} > {nd.ip4(pos + 16)}: ")
        if not nd.has(pos, hlen):
            nd.put(f" [remaining caplen({nd.left(pos)}) < header length({hlen})]")
            raise Cut
        ip_demux(nd, pos + hlen, length, 4, bool(off & 0x2000), proto, pos)
    else:
        nd.put(f"{nd.ip4(pos + 12)} > {nd.ip4(pos + 16)}: ip-proto-{proto}")


_IPOPT_NAMES = {0: "EOL", 1: "NOP", 7: "RR", 68: "timestamp", 130: "security", 131: "LSRR",
                137: "SSRR", 148: "RA", 82: "traceroute"}  # fmt: skip


def _ip_options(nd: Nd, pos: int, length: int) -> bool:
    """Print IP options (``-v``); True when the capture cut them."""
    sep = ""
    try:
        while length > 0:
            nd.put(sep)
            sep = ","
            code = nd.u8(pos)
            nd.put(_IPOPT_NAMES.get(code, f"unknown {code}"))
            if code in (0, 1):
                size = 1
            else:
                size = nd.u8(pos + 1)
                if size < 2:
                    nd.put(f" [bad length {size}]")
                    return False
            if size > length:
                nd.put(f" [bad length {size}]")
                return False
            nd.need(pos, size)
            if code == 0:
                return False
            if code in (7, 131, 137):
                _ip_route(nd, pos, size)
            elif code == 148:
                if size < 4:
                    nd.put(f" [bad length {size}]")
                elif nd.u16(pos + 2):
                    nd.put(f" value {nd.u16(pos + 2)}")
            pos += size
            length -= size
    except Cut:
        return True
    return False


def _ip_route(nd: Nd, pos: int, size: int) -> None:
    if size < 3:
        nd.put(f" [bad length {size}]")
        return
    if (size + 1) & 3:
        nd.put(f" [bad length {size}]")
    ptr = nd.u8(pos + 2) - 1
    if ptr < 3 or ((ptr + 1) & 3) or ptr > size + 1:
        nd.put(f" [bad ptr {nd.u8(pos + 2)}]")
    for at in range(3, size, 4):
        nd.put(f" {nd.ip4(pos + at)}")
        if ptr > at:
            nd.put(",")


def ip_demux(nd: Nd, pos: int, length: int, version: int, more: bool, proto: int, ip: int) -> None:
    """The payload of an IP datagram by protocol (tcpdump's ip_demux_print).

    Args:
        nd: the packet.
        pos: where the payload starts.
        length: its length from the IP header.
        version: 4 or 6.
        more: whether this is a fragment with more to come (transports skip checksums).
        proto: the IP protocol.
        ip: where the IP header starts.
    """
    while proto == 51:
        if not nd.has(pos):
            nd.proto = "ah"
            raise Cut
        advance = _ipsec.ah_print(nd, pos)
        proto = nd.u8(pos)
        pos += advance
        length -= advance
    if proto == 6:
        _tcp.tcp_print(nd, pos, length, ip, more)
    elif proto == 17:
        _udp.udp_print(nd, pos, length, ip, more)
    elif proto == 1:
        if version == 4:
            _icmp.icmp_print(nd, pos, length, ip, more)
        else:
            nd.put("[ICMP requires IPv4] (invalid)")
    elif proto == 58:
        if version == 6:
            _icmp.icmp6_print(nd, pos, length, ip, more)
        else:
            nd.put("[ICMPv6 requires IPv6] (invalid)")
    elif proto == 4:
        ip_print(nd, pos, length)
    elif proto == 41:
        ip6_print(nd, pos, length)
    elif proto == 59:
        nd.put("no next header")
    elif proto == 47:
        _gre.gre_print(nd, pos, length)
    elif proto == 50:
        _ipsec.esp_print(nd, pos, length)
    elif proto == 89:
        _ipsec.ospf_print(nd, pos, length, version)
    elif proto == 88:
        _ipsec.eigrp_print(nd, pos, length)
    else:
        nd.put(f" ip-proto-{proto} {length}")


def ip6_print(nd: Nd, pos: int, length: int) -> None:
    """The IPv6 packet at ``pos``; ``length`` is what the link layer says is left."""
    nd.proto = "ip6"
    if not nd.has(pos, 40):  # tcpdump checks the header was captured before it prints a word
        nd.trunc()
        return
    if not nd.opts.link:
        nd.put("IP6 ")
    if length < 40:
        nd.put(f"[length {length} < 40] (invalid)")
        return
    version = nd.u8(pos) >> 4
    if version != 6:
        nd.put(f"[version {version} != 6] (invalid)")
        return
    plen = nd.u16(pos + 4)
    total = plen + 40
    jumbo = _jumbo(nd, pos) if plen == 0 else None
    if jumbo is not None:
        total = jumbo + 40
    if length < total:
        nd.put(f"truncated-ip6 - {total - length} bytes missing!")
    nh = nd.u8(pos + 6)
    if nd.opts.verbose:
        flow = nd.u32(pos)
        nd.put("(")
        if flow & 0x0FF00000:
            nd.put(f"class 0x{(flow & 0x0FF00000) >> 20:02x}, ")
        if flow & 0x000FFFFF:
            nd.put(f"flowlabel 0x{flow & 0x000FFFFF:05x}, ")
        nd.put(
            f"hlim {nd.u8(pos + 7)}, next-header {IPPROTO_NAMES.get(nh, 'unknown')} ({nh}) "
            f"payload length: {plen}) "
        )
    _ip6_chain(nd, pos, total, nh)


def _jumbo(nd: Nd, pos: int) -> int | None:
    """The jumbo payload length of a hop-by-hop option (RFC 2675), when there is one."""
    if not nd.has(pos, 48) or nd.data[pos + 6] != 0:
        return None
    hbh = pos + 40
    size = (nd.data[hbh + 1] + 1) * 8
    at, stop = hbh + 2, min(hbh + size, nd.end)
    while at < stop:
        kind = nd.data[at]
        if kind == 0:
            at += 1
            continue
        if at + 1 >= stop:
            return None
        if kind == 0xC2 and at + 6 <= stop:
            return int.from_bytes(nd.data[at + 2 : at + 6], "big")
        at += nd.data[at + 1] + 2
    return None


def _ip6_chain(nd: Nd, pos: int, total: int, nh: int) -> None:
    cp = pos
    advance = 40
    length = total
    more = False
    while cp < nd.end and advance > 0:
        if length < advance:
            raise Cut
        cp += advance
        length -= advance
        if cp == pos + 40 and nh not in _PORTED:
            nd.put(f"{nd.ip6(pos + 8)} > {nd.ip6(pos + 24)}: ")
        if nh in (0, 60):
            nd.proto = "hbhopt" if nh == 0 else "dstopt"
            nd.put("HBH " if nh == 0 else "DSTOPT ")
            try:
                advance = (nd.u8(cp + 1) + 1) << 3
                nd.need(cp, advance)
                _ip6_options(nd, cp + 2, advance - 2)
            except Cut:
                nd.trunc()
                return
            if nd.opts.verbose:
                nd.put(" ")
            nh = nd.u8(cp)
        elif nh == 44:
            nd.proto = "frag6"
            offset = nd.u16(cp + 2) & 0xFFF8
            size = (40 + nd.u16(pos + 4) - (cp - pos) - 8) & 0xFFFFFFFFFFFFFFFF
            if nd.opts.verbose:
                nd.put(f"frag (0x{nd.u32(cp + 4):08x}:{offset}|{size})")
            else:
                nd.put(f"frag ({offset}|{size})")
            if offset:
                return
            nd.put(" ")
            advance = 8
            more = True
            if nd.end <= cp + advance:
                return
            nh = nd.u8(cp)
        else:
            # The datagram's end bounds the transport (known only once a jumbo option has
            # been read), as tcpdump pushes its snapshot end just before the demultiplexer.
            nd.push(cp + max(length, 0))
            try:
                ip_demux(nd, cp, length, 6, more, nh, pos)
            finally:
                nd.pop()
            return
        nd.proto = "ip6"


def _ip6_options(nd: Nd, pos: int, length: int) -> None:
    """The options of a hop-by-hop or destination options header: checked always (a bad one
    ends the packet with the header's truncation marker, as tcpdump's), printed with ``-v``."""
    verbose = nd.opts.verbose
    i = 0
    while i < length:
        kind = nd.u8(pos + i)
        if kind == 0:
            if verbose:
                nd.put("(pad1)")
            i += 1
            continue
        if i + 1 >= length:
            raise Cut
        size = nd.u8(pos + i + 1) + 2
        if i + size > length:
            raise Cut
        if kind == 1:
            if verbose:
                nd.put("(padn)")
        elif kind == 5:
            if size != 4:
                nd.put(f"(rtalert: invalid len {size - 2})")
                raise Cut
            if verbose:
                nd.put(f"(rtalert: 0x{nd.u16(pos + i + 2):04x}) ")
        elif kind == 0xC2:
            if size != 6:
                nd.put(f"(jumbo: invalid len {size - 2})")
                raise Cut
            if verbose:
                nd.put(f"(jumbo: {nd.u32(pos + i + 2)}) ")
        elif verbose:
            nd.put(f"(opt_type 0x{kind:02x}: len={size - 2})")
        i += size


PRINTERS.ip = ip_print
PRINTERS.ip6 = ip6_print
