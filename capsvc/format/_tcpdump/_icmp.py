"""ICMP and ICMPv6 in tcpdump's words (print-icmp.c, print-icmp6.c).

Pure module. ``ICMP echo request, id 1, seq 1, length 64``; errors name what the quoted packet
was sent to (``ICMP 10.0.0.2 udp port 53 unreachable, length 36``) and with ``-v`` print the
quoted IP header on a line of its own. ``ICMP6, echo request, id 1, seq 1, length 64``.
"""

from __future__ import annotations

from ._hex import hex_dump, hex_dump_indent
from ._nd import PRINTERS, Nd
from ._sum import checksum, should_be
from ._udp import transport_checksum

__all__ = ["icmp6_print", "icmp_print"]

_UNREACH = {
    0: "net {} unreachable",
    1: "host {} unreachable",
    5: "{} unreachable - source route failed",
    6: "net {} unreachable - unknown",
    7: "host {} unreachable - unknown",
    8: "{} unreachable - source host isolated",
    9: "net {} unreachable - admin prohibited",
    10: "host {} unreachable - admin prohibited",
    11: "net {} unreachable - tos prohibited",
    12: "host {} unreachable - tos prohibited",
    13: "host {} unreachable - admin prohibited filter",
    14: "host {} unreachable - host precedence violation",
    15: "host {} unreachable - precedence cutoff",
}
_REDIRECT = {
    0: "redirect {} to net {}",
    1: "redirect {} to host {}",
    2: "redirect-tos {} to net {}",
    3: "redirect-tos {} to host {}",
}
_NAMES = {
    0: "echo reply",
    4: "source quench",
    8: "echo request",
    10: "router solicitation",
    13: "time stamp request",
    14: "time stamp reply",
    15: "information request",
    16: "information reply",
    17: "address mask request",
}
_ERRORS = frozenset((3, 4, 5, 11, 12))


def _stamp(ms: int) -> str:
    sec, msec = divmod(ms, 1000)
    minutes, sec = divmod(sec, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{sec:02d}.{msec:03d}"


def _lifetime(value: int) -> str:
    if value < 60:
        return str(value)
    if value < 3600:
        return f"{value // 60}:{value % 60:02d}"
    return f"{value // 3600}:{value % 3600 // 60:02d}:{value % 60:02d}"


def _icmp_text(nd: Nd, pos: int, kind: int, code: int) -> str:
    inner = pos + 8
    if kind in (0, 8):
        word = "request" if kind == 8 else "reply"
        return f"echo {word}, id {nd.u16(pos + 4)}, seq {nd.u16(pos + 6)}"
    if kind == 3:
        if code == 2:
            return f"{nd.ip4(inner + 16)} protocol {nd.u8(inner + 9)} unreachable"
        if code == 3:
            proto = nd.u8(inner + 9)
            hlen = (nd.u8(inner) & 15) * 4
            dport = nd.u16(inner + hlen + 2)
            dst = nd.ip4(inner + 16)
            if proto == 6:
                return f"{dst} tcp port {dport} unreachable"
            if proto == 17:
                return f"{dst} udp port {dport} unreachable"
            return f"{dst} protocol {proto} port {dport} unreachable"
        if code == 4:
            mtu = nd.u16(pos + 6)
            dst = nd.ip4(inner + 16)
            if mtu:
                return f"{dst} unreachable - need to frag (mtu {mtu})"
            return f"{dst} unreachable - need to frag"
        return _UNREACH.get(code, f"#{code} {{}} unreachable").format(nd.ip4(inner + 16))
    if kind == 5:
        form = _REDIRECT.get(code, f"redirect-#{code} {{}} to net {{}}")
        return form.format(nd.ip4(inner + 16), nd.ip4(pos + 4))
    if kind == 9:
        text = f"router advertisement lifetime {_lifetime(nd.u16(pos + 6))}"
        num, size = nd.u8(pos + 4), nd.u8(pos + 5)
        text += f" {num}:"
        if size != 2:
            return text + f" [size {size}]"
        at = pos + 8
        for _ in range(num):
            nd.need(at, 8)
            text += f" {{{nd.ip4(at)} {nd.u32(at + 4)}}}"
            at += 8
        return text[:127]
    if kind == 11:
        nd.need(inner + 16, 4)
        if code == 0:
            return "time exceeded in-transit"
        if code == 1:
            return "ip reassembly time exceeded"
        return f"time exceeded-#{code}"
    if kind == 12:
        if code:
            return f"parameter problem - code {code}"
        return f"parameter problem - octet {nd.u8(pos + 4)}"
    if kind == 18:
        return f"address mask is 0x{nd.u32(pos + 12):08x}"
    if kind == 13:
        return f"time stamp query id {nd.u16(pos + 4)} seq {nd.u16(pos + 6)}"
    if kind == 14:
        nd.need(pos + 16, 4)
        return (
            f"time stamp reply id {nd.u16(pos + 4)} seq {nd.u16(pos + 6)}: "
            f"org {_stamp(nd.u32(pos + 8))}, recv {_stamp(nd.u32(pos + 12))}, "
            f"xmit {_stamp(nd.u32(pos + 16))}"
        )[:127]
    return _NAMES.get(kind, f"type-#{kind}")


def icmp_print(nd: Nd, pos: int, length: int, ip: int, fragmented: bool) -> None:
    """The ICMP message at ``pos`` (``length`` from the IP header)."""
    nd.proto = "icmp"
    kind, code = nd.u8(pos), nd.u8(pos + 1)
    text = _icmp_text(nd, pos, kind, code)
    nd.put(f"ICMP {text}, length {length}")
    if nd.opts.verbose and not fragmented and nd.has(pos, length):
        sum_ = checksum(nd.data[pos : pos + length])
        if sum_:
            value = nd.u16(pos + 2)
            nd.put(f" (wrong icmp cksum {value:x} (->{should_be(value, sum_):x})!)")
    if nd.opts.verbose and kind in _ERRORS:
        inner = pos + 8
        nd.put("\n\t")
        saved = nd.end
        nd.end = min(inner + 128, nd.end)
        try:
            PRINTERS.ip(nd, inner, nd.u16(inner + 2))
        finally:
            nd.end = saved


_ICMP6_NAMES = {
    1: "destination unreachable", 2: "packet too big", 3: "time exceeded in-transit",
    4: "parameter problem", 128: "echo request", 129: "echo reply",
    130: "multicast listener query", 131: "multicast listener report",
    132: "multicast listener done", 133: "router solicitation", 134: "router advertisement",
    135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect",
    138: "router renumbering", 141: "inverse neighbor solicitation",
    142: "inverse neighbor advertisement", 143: "multicast listener report v2",
    144: "ha discovery request", 145: "ha discovery reply", 146: "mobile router solicitation",
    147: "mobile router advertisement", 139: "who-are-you request", 140: "who-are-you reply",
    201: "mtrace message", 200: "mtrace response", 155: "RPL",
}  # fmt: skip
_UNREACH6 = {
    0: "unreachable route",
    1: " unreachable prohibited",
    2: "beyond scope",
    3: "unreachable address",
    4: "unreachable port",
}
_PARAM6 = {
    0: "erroneous",
    1: "next header",
    2: "option",
    3: "incomplete header chain",
}
#: Types whose line carries its length only in ``-v`` (the options printer adds it).
_ND_TYPES = frozenset((133, 134, 135, 136, 137, 145, 147))
#: Types printed without details (their printers are not implemented here).
_PLAIN6 = frozenset((138, 140, 141, 142, 145, 147, 200, 201))


def _upper(nd: Nd, pos: int) -> tuple[int, int]:
    """The transport the IPv6 packet quoted at ``pos`` carries, past its extension headers:
    ``(protocol, where its header starts)``."""
    nh = nd.u8(pos + 6)
    at = pos + 40
    for _ in range(8):
        if nh in (0, 43, 60):
            size = (nd.u8(at + 1) + 1) * 8
        elif nh == 44:
            if nd.u16(at + 2) & 0xFFF8:
                return nh, at
            size = 8
        elif nh == 51:
            size = (nd.u8(at + 1) + 2) * 4
        else:
            break
        nh = nd.u8(at)
        at += size
    return nh, at


def icmp6_print(nd: Nd, pos: int, length: int, ip: int, fragmented: bool) -> None:
    """The ICMPv6 message at ``pos`` (``length`` from the IP header)."""
    nd.proto = "icmp6"
    verbose = nd.opts.verbose
    if length == 0:
        nd.put("ICMP6, length 0 (invalid)")
        return
    if verbose and not fragmented and nd.has(pos, length):
        sum_ = transport_checksum(nd, ip, pos, length, 58)
        value = nd.u16(pos + 2)
        if sum_:
            nd.put(f"[bad icmp6 cksum 0x{value:04x} -> 0x{should_be(value, sum_):04x}!] ")
        elif sum_ is not None:
            nd.put("[icmp6 sum ok] ")
    kind = nd.u8(pos)
    code = nd.u8(pos + 1)
    nd.put(f"ICMP6, {_ICMP6_NAMES.get(kind, f'unknown icmp6 type ({kind})')}")
    if verbose and kind in _ND_TYPES:
        nd.put(f", length {length}")
    inner = pos + 8
    if kind == 1:
        nd.put(f", {_UNREACH6.get(code, f'unknown unreach code ({code})')}")
        if code in (0, 1, 3):
            nd.put(f" {nd.ip6(inner + 24)}")
        elif code == 2:
            nd.put(f" {nd.ip6(inner + 24)}, source address {nd.ip6(inner + 8)}")
        elif code == 4:
            proto, at = _upper(nd, inner)
            dport = nd.u16(at + 2)
            dst = nd.ip6(inner + 24)
            if proto == 6:
                nd.put(f", {dst} tcp port {dport}")
            elif proto == 17:
                nd.put(f", {dst} udp port {dport}")
            else:
                nd.put(f", {dst} protocol {proto} port {dport} unreachable")
        elif verbose <= 1:
            hex_dump(nd, pos, length)
            return
    elif kind == 2:
        nd.put(f", mtu {nd.u32(pos + 4)}")
    elif kind == 3:
        if code == 0:
            nd.put(f" for {nd.ip6(inner + 24)}")
        elif code == 1:
            nd.put(" (reassembly)")
        else:
            nd.put(f", unknown code ({code})")
    elif kind == 4:
        nd.need(inner + 24, 16)
        name = _PARAM6.get(code)
        if name is None:
            nd.put(f", code-#{code}")
        else:
            nd.put(f", {name} - octet {nd.u32(pos + 4)}")
    elif kind in (128, 129):
        nd.put(f", id {nd.u16(pos + 4)}, seq {nd.u16(pos + 6)}")
    elif kind == 130:
        if length == 24:
            _mld(nd, pos)
        elif length >= 28:
            nd.put(" v2")
            _mld2_query(nd, pos, length)
        else:
            nd.put(f" unknown-version (len {length}) ")
    elif kind in (131, 132):
        _mld(nd, pos)
    elif kind == 133:
        if verbose:
            _nd_options(nd, pos + 8, length - 8)
    elif kind == 134:
        if verbose:
            ra = nd.u8(pos + 5)
            flags = ", ".join(n for b, n in _RA_FLAGS if ra & b) or "none"
            nd.put(
                f"\n\thop limit {nd.u8(pos + 4)}, Flags [{flags}], "
                f"pref {_PREFS[(ra & 0x18) >> 3]}, router lifetime {nd.u16(pos + 6)}s, "
                f"reachable time {nd.u32(pos + 8)}ms, retrans timer {nd.u32(pos + 12)}ms"
            )
            _nd_options(nd, pos + 16, length - 16)
    elif kind == 135:
        nd.put(f", who has {nd.ip6(pos + 8)}")
        if verbose:
            _nd_options(nd, pos + 24, length - 24)
    elif kind == 136:
        nd.put(f", tgt is {nd.ip6(pos + 8)}")
        if verbose:
            na = nd.u32(pos + 4)
            flags = ", ".join(n for b, n in _NA_FLAGS if na & b) or "none"
            nd.put(f", Flags [{flags}]")
            _nd_options(nd, pos + 24, length - 24)
    elif kind == 137:
        nd.put(f", {nd.ip6(pos + 8)} to {nd.ip6(pos + 24)}")
        if verbose:
            _nd_options(nd, pos + 40, length - 40)
    elif kind == 143:
        if length < 8:
            nd.put(f" [invalid len {length}]")
        else:
            nd.put(f", {nd.u16(pos + 6)} group record(s)")
            if verbose:
                _mld2_groups(nd, pos, length, nd.u16(pos + 6))
    elif kind == 139:
        _ni_query(nd, pos, code)
    elif kind == 155:
        _rpl(nd, code)
    elif kind in (144, 146):
        nd.put(f", id 0x{nd.u16(pos + 4):04x}")
    elif kind not in _PLAIN6:
        nd.put(f", length {length}")
        if verbose <= 1:
            hex_dump(nd, pos, length)
        return
    if not verbose:
        nd.put(f", length {length}")


def _mld(nd: Nd, pos: int) -> None:
    if not nd.has(pos, 24):
        return
    nd.put(f"max resp delay: {nd.u16(pos + 4)} addr: {nd.ip6(pos + 8)}")


def _mld2_query(nd: Nd, pos: int, length: int) -> None:
    mrc = nd.u16(pos + 4)
    mrt = mrc if mrc < 32768 else ((mrc & 0x0FFF) | 0x1000) << (((mrc & 0x7000) >> 12) + 3)
    verbose = nd.opts.verbose
    if verbose:
        nd.put(f" [max resp delay={mrt}]")
    nd.put(f" [gaddr {nd.ip6(pos + 8)}")
    if verbose:
        flags = nd.u8(pos + 24)
        if flags & 0x08:
            nd.put(" sflag")
        qqi = nd.u8(pos + 25)
        if qqi >= 128:
            qqi = ((qqi & 0x0F) | 0x10) << (((qqi & 0x70) >> 4) + 3)
        nd.put(f" robustness={flags & 7} qqi={qqi}")
    nsrcs = nd.u16(pos + 26)
    if nsrcs:
        if length < 28 + nsrcs * 16:
            nd.put(" [invalid number of sources]")
        elif verbose > 1:
            nd.put(" {")
            for i in range(nsrcs):
                nd.put(f" {nd.ip6(pos + 28 + i * 16)}")
            nd.put(" }")
        else:
            nd.put(f", {nsrcs} source(s)")
    nd.put("]")


_RPL_CODES = {
    0: "DODAG Information Solicitation",
    1: "DODAG Information Object",
    2: "Destination Advertisement Object",
    3: "Destination Advertisement Object Ack",
}
#: Node information query flags (RFC 4620) in tcpdump's order of printing.
_NI_FLAGS = ((0x40, "a"), (0x20, "G"), (0x10, "S"), (0x08, "L"), (0x04, "C"), (0x02, "A"))


def _rpl(nd: Nd, code: int) -> None:
    """An RPL control message (RFC 6550): its kind, as tcpdump prints it without ``-v``."""
    if code & 0x80:
        nd.put(", (SEC) [worktodo]")
        return
    nd.put(", (CLR)" + _RPL_CODES.get(code & 0x7F, f"RPL message, unknown code {code}"))


def _ni_query(nd: Nd, pos: int, code: int) -> None:
    """A node information query (RFC 4620) as tcpdump prints it."""
    size = nd.end - pos
    if size == 12:
        nd.put(" who-are-you request")
        return
    nd.put(" node information query")
    nd.need(pos, 16)
    qtype, flags = nd.u16(pos + 4), nd.u16(pos + 6)
    nd.put(" (")
    if qtype == 0:
        nd.put("noop")
    elif qtype == 1:
        nd.put("supported qtypes")
        if flags:
            nd.put(f" [{'C' if flags & 1 else ''}]")
    elif qtype == 2:
        nd.put("DNS name")
    elif qtype == 3:
        nd.put("node addresses")
        if flags:
            nd.put(" [" + "".join(n for b, n in _NI_FLAGS if flags & b) + "]")
    else:
        nd.put("unknown")
    verbose = nd.opts.verbose
    if qtype in (0, 1):
        if size != 16 and verbose:
            nd.put(", invalid len")
        nd.put(")")
        return
    if size == 16:
        nd.put(", 03 draft)")
        return
    subject = pos + 16
    if code == 0:
        if nd.has(pos, 32):
            if size != 32:
                if verbose:
                    nd.put(", invalid subject len")
            else:
                nd.put(f", subject={nd.ip6(subject)}")
    elif code == 2:
        if nd.has(pos, 20):
            if size != 20:
                if verbose:
                    nd.put(", invalid subject len")
            else:
                nd.put(f", subject={nd.ip4(subject)}")
    elif code == 1:
        nd.put(", subject=DNS name")
    else:
        nd.put(", unknown subject")
    nd.put(")")


_MLD2_RECORDS = {1: "is_in", 2: "is_ex", 3: "to_in", 4: "to_ex", 5: "allow", 6: "block"}


def _mld2_groups(nd: Nd, pos: int, length: int, groups: int) -> None:
    """``-v``: the group records of an MLDv2 report (RFC 3810)."""
    group = 8
    for _ in range(groups):
        if length < group + 20:
            nd.put(" [invalid number of groups]")
            return
        nd.put(f" [gaddr {nd.ip6(pos + group + 4)}")
        kind = nd.u8(pos + group)
        nd.put(f" {_MLD2_RECORDS.get(kind, f' [v2-report-#{kind}]')}")
        nsrcs = nd.u16(pos + group + 2)
        if length < group + 20 + nsrcs * 16:
            nd.put(f" [invalid number of sources {nsrcs}]")
            return
        if nd.opts.verbose == 1:
            nd.put(f", {nsrcs} source(s)")
        else:
            nd.put(" {")
            for j in range(nsrcs):
                nd.put(f" {nd.ip6(pos + group + 20 + j * 16)}")
            nd.put(" }")
        group += 20 + nsrcs * 16
        nd.put("]")


_NA_FLAGS = ((0x80000000, "router"), (0x40000000, "solicited"), (0x20000000, "override"))
_RA_FLAGS = ((0x80, "managed"), (0x40, "other stateful"), (0x20, "home agent"))
_PREFS = ("medium", "high", "rsv", "low")
_PI_FLAGS = ((0x80, "onlink"), (0x40, "auto"), (0x20, "router"))
_ND_OPTIONS = {1: "source link-address", 2: "destination link-address", 3: "prefix info",
               4: "redirected header", 5: "mtu", 7: "advertisement interval",
               8: "homeagent information", 24: "route info", 25: "rdnss", 31: "dnssl"}  # fmt: skip


def _lifetime6(value: int) -> str:
    return "infinity" if value == 0xFFFFFFFF else f"{value}s"


def _nd_options(nd: Nd, pos: int, resid: int) -> None:
    """``-v``: neighbour discovery options (RFC 4861), one line each."""
    cp = pos
    while cp < nd.end:
        if resid <= 0:
            return
        kind, size = nd.u8(cp), nd.u8(cp + 1)
        if size == 0 or cp + (size << 3) > nd.end:
            nd.trunc()
            return
        nd.put(
            f"\n\t  {_ND_OPTIONS.get(kind, 'unknown')} option ({kind}), "
            f"length {size << 3} ({size}): "
        )
        if kind in (1, 2):
            nd.put(nd.data[cp + 2 : cp + (size << 3)].hex(":"))
        elif kind == 3:
            flags = ", ".join(n for b, n in _PI_FLAGS if nd.u8(cp + 3) & b) or "none"
            nd.put(
                f"{nd.ip6(cp + 16)}/{nd.u8(cp + 2)}{'badlen' if size != 4 else ''}, "
                f"Flags [{flags}], valid time {_lifetime6(nd.u32(cp + 4))}, "
                f"pref. time {_lifetime6(nd.u32(cp + 8))}"
            )
        elif kind == 5:
            nd.put(f" {nd.u32(cp + 4)}{'bad option length' if size != 1 else ''}")
        elif kind == 7:
            nd.put(f" {nd.u32(cp + 4)}ms")
        elif nd.opts.verbose <= 1:
            hex_dump_indent(nd, cp + 2, (size << 3) - 2, "\n\t  ")
            return
        if nd.opts.verbose > 1:
            hex_dump_indent(nd, cp + 2, (size << 3) - 2, "\n\t    ")
        cp += size << 3
        resid -= size << 3
