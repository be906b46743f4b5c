"""DNS in tcpdump's words (print-domain.c): ``4660+ A? example.com. (29)`` for a query,
``4660 1/0/0 A 93.184.216.34 (45)`` for a response.

Pure module. The id in decimal, tcpdump's flag marks (``+`` recursion desired and ``%``
checking disabled in queries; ``*`` authoritative, ``-`` recursion not available, ``|``
truncated, ``$`` authenticated data in responses), the counts tcpdump shows, the questions of a
query and the answers of a response with their data; ``(N)`` the message length. Names follow
compression pointers (a loop prints ``<LOOP>``); a message the capture cuts ends ``[|domain]``.
"""

from __future__ import annotations

from ._nd import Cut, Nd, print_char

__all__ = ["domain_print"]

_TYPES = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP",
    18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP_PTR", 24: "SIG",
    25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID",
    32: "NIMLOC", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6",
    39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY",
    46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM",
    99: "SPF", 100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC", 104: "UNSPECA",
    249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA",
    255: "ANY", 256: "URI",
}  # fmt: skip
_CLASSES = {1: "IN", 3: "CHAOS", 4: "HS", 255: "ANY"}
_OPS = ("", " inv_q", " stat", " op3", " notify", " update", " op6", " op7", " op8", " updateA",
        " updateD", " updateDA", " updateM", " updateMA", " zoneInit", " zoneRef")  # fmt: skip
_RCODES = ("", " FormErr", " ServFail", " NXDomain", " NotImp", " Refused", " YXDomain",
           " YXRRSet", " NXRRSet", " NotAuth", " NotZone", " Resp11", " Resp12", " Resp13",
           " Resp14", " NoChange", " BadVers", "Resp17", " Resp18", " Resp19", " Resp20",
           " Resp21", " Resp22", " BadCookie")  # fmt: skip


class _Bad(Exception):
    """The message cannot be read on (tcpdump's printers return NULL)."""


def _type(value: int) -> str:
    return _TYPES.get(value, f"Type{value}")


def _skip(nd: Nd, cp: int) -> int:
    """ns_nskip: the position after the name at ``cp`` (raises _Bad where tcpdump gives up)."""
    if not nd.has(cp):
        raise _Bad
    i = nd.data[cp]
    cp += 1
    while i:
        kind = i & 0xC0
        if kind == 0xC0:
            return cp + 1
        if kind == 0x40:
            if i & 0x3F != 0x01 or not nd.has(cp):
                raise _Bad
            bitlen = nd.data[cp] or 256
            cp += 1 + (bitlen + 7) // 8
        elif kind == 0x80:
            raise _Bad
        else:
            cp += i
        if not nd.has(cp):
            raise _Bad
        i = nd.data[cp]
        cp += 1
    return cp


def _name(nd: Nd, cp: int, msg: int) -> int:
    """fqdn_print: print the name at ``cp``; the position after it where it started."""
    max_offset = nd.end - msg
    if not nd.has(cp):
        raise _Bad
    i = nd.data[cp]
    cp += 1
    after = -1
    processed = 1
    if i == 0:
        nd.put(".")
        return cp
    while i:
        if i & 0xC0 == 0xC0:
            if not nd.has(cp):
                raise _Bad
            if after < 0:
                after = cp + 1
            cp = msg + (((i << 8) | nd.data[cp]) & 0x3FFF)
            if not nd.has(cp):
                raise _Bad
            i = nd.data[cp]
            cp += 1
            processed += 1
            if processed >= max_offset:
                nd.put("<LOOP>")
                raise _Bad
            continue
        if i & 0xC0 == 0x40:
            if i & 0x3F != 0x01:
                nd.put(f"<ELT {i & 0x3F}>")
                raise _Bad
            cp = _bitlabel(nd, cp)
        elif i & 0xC0 == 0x80:
            raise _Bad
        else:
            if not nd.has(cp, i):
                nd.put("".join(print_char(c) for c in nd.data[cp : nd.end]))
                raise _Bad
            nd.put("".join(print_char(c) for c in nd.data[cp : cp + i]))
            cp += i
            processed += i
        nd.put(".")
        if not nd.has(cp):
            raise _Bad
        i = nd.data[cp]
        cp += 1
        processed += 1
    return after if after >= 0 else cp


def _bitlabel(nd: Nd, cp: int) -> int:
    bitlen = nd.u8(cp) or 256
    size = (bitlen + 7) // 8
    nd.need(cp + 1, size)
    nd.put("\\[x" + nd.data[cp + 1 : cp + 1 + size].hex() + f"/{bitlen}]")
    return cp + 1 + size


def _question(nd: Nd, cp: int, msg: int, mdns: bool) -> int:
    start = cp
    cp = _skip(nd, cp)
    if not nd.has(cp, 4):
        raise _Bad
    nd.put(f" {_type(nd.u16(cp))}")
    value = nd.u16(cp + 2)
    klass = value & ~0x8000 if mdns else value
    if klass != 1:
        nd.put(f" {_CLASSES.get(klass, f'(Class {klass})')}")
    if mdns:
        nd.put(" (QU)" if value & 0x8000 else " (QM)")
    nd.put("? ")
    _name(nd, start, msg)
    return cp + 4


def _answer(nd: Nd, cp: int, msg: int, mdns: bool) -> int:
    """ns_rprint: one resource record; the position after it."""
    verbose = nd.opts.verbose
    if verbose:
        nd.put(" ")
        cp = _name(nd, cp, msg)
    else:
        try:
            cp = _skip(nd, cp)
        except _Bad:
            return nd.end
    if not nd.has(cp, 10):
        return nd.end
    rtype = nd.u16(cp)
    value = nd.u16(cp + 2)
    klass = value & ~0x8000 if mdns else value
    if klass != 1 and rtype != 41:
        nd.put(f" {_CLASSES.get(klass, f'(Class {klass})')}")
    if mdns and value & 0x8000:
        nd.put(" (Cache flush)")
    opt_flags = nd.u16(cp + 6) if rtype == 41 else 0
    rdlen = nd.u16(cp + 8)
    cp += 10
    end = cp + rdlen
    nd.put(f" {_type(rtype)}")
    if end > nd.end:
        raise _Bad
    if rtype == 1:
        nd.put(f" {nd.ip4(cp)}")
    elif rtype in (2, 5, 12, 39):
        nd.put(" ")
        _name(nd, cp, msg)
    elif rtype == 6:
        if verbose:
            nd.put(" ")
            cp = _name(nd, cp, msg)
            nd.put(" ")
            cp = _name(nd, cp, msg)
            nd.need(cp, 20)
            nd.put("".join(f" {nd.u32(cp + 4 * i)}" for i in range(5)))
    elif rtype == 15:
        nd.put(" ")
        _name(nd, cp + 2, msg)
        nd.put(f" {nd.u16(cp)}")
    elif rtype == 16:
        while cp < end:
            nd.put(' "')
            size = nd.u8(cp)
            nd.need(cp + 1, size)
            nd.put("".join(print_char(c) for c in nd.data[cp + 1 : cp + 1 + size]))
            cp += 1 + size
            nd.put('"')
    elif rtype == 33:
        nd.put(" ")
        _name(nd, cp + 6, msg)
        nd.put(f":{nd.u16(cp + 4)} {nd.u16(cp)} {nd.u16(cp + 2)}")
    elif rtype == 28:
        nd.put(f" {nd.ip6(cp)}")
    elif rtype == 256:
        nd.need(cp, rdlen)
        nd.put(f" {nd.u16(cp)} {nd.u16(cp + 2)} ")
        nd.put("".join(print_char(c) for c in nd.data[cp + 4 : end]))
    elif rtype == 41:
        nd.put(f" UDPsize={klass}")
        if opt_flags & 0x8000:
            nd.put(" DO")
    elif rtype == 104:
        nd.need(cp, rdlen)
        nd.put("".join(print_char(c) for c in nd.data[cp:end]))
    return end


def _section(nd: Nd, cp: int, msg: int, mdns: bool, count: int, label: str) -> int:
    """``-vv``: a section's records after ``label``; the position after them."""
    if count and cp < nd.end:
        nd.put(label)
        cp = _answer(nd, cp, msg, mdns)
        count -= 1
        while cp < nd.end and count:
            nd.put(",")
            cp = _answer(nd, cp, msg, mdns)
            count -= 1
    if count:
        raise _Bad
    return cp


def _extended_rcode(nd: Nd, msg: int, flags: int, counts: tuple[int, int, int, int]) -> int:
    """The response code with the upper bits an OPT record adds (RFC 6891)."""
    rcode = flags & 0xF
    qd, an, ns, ar = counts
    try:
        cp = msg + 12
        for _ in range(qd):
            cp = _skip(nd, cp) + 4
            if cp >= nd.end:
                return rcode
        for _ in range(an + ns):
            cp = _skip(nd, cp) + 8
            if cp + 2 > nd.end:
                return rcode
            cp += 2 + nd.u16(cp)
            if cp >= nd.end:
                return rcode
        for _ in range(ar):
            cp = _skip(nd, cp)
            if cp + 2 > nd.end:
                return rcode
            rtype = nd.u16(cp)
            cp += 4
            if cp + 1 > nd.end:
                return rcode
            if rtype == 41:
                return rcode | nd.u8(cp) << 4
            cp += 4
            if cp + 2 > nd.end:
                return rcode
            cp += 2 + nd.u16(cp)
            if cp >= nd.end:
                return rcode
    except (_Bad, Cut):
        pass
    return rcode


def domain_print(nd: Nd, pos: int, length: int, *, over_tcp: bool, mdns: bool) -> None:
    """The DNS message at ``pos`` of ``length`` bytes (TCP: after its 2-byte length prefix)."""
    nd.proto = "domain"
    if over_tcp:
        if length < 2:
            nd.put(f" [DNS over TCP: length {length} < 2] (invalid)")
            return
        length -= 2
        prefix = nd.u16(pos)
        if prefix != length:
            nd.put(f" [prefix length({prefix}) != length({length})] (invalid)")
            return
        pos += 2
        nd.put(" ")
    if length < 12:
        nd.put(f"domain [length {length} < 12] (invalid)")
        return
    nd.need(pos, 12)
    ident, flags = nd.u16(pos), nd.u16(pos + 2)
    counts = qd, an, ns, ar = (nd.u16(pos + 4), nd.u16(pos + 6), nd.u16(pos + 8), nd.u16(pos + 10))
    rcode = _extended_rcode(nd, pos, flags, counts)
    opcode = flags >> 11 & 0xF
    try:
        if flags & 0x8000:
            rtext = _RCODES[rcode] if rcode < len(_RCODES) else f" Resp{rcode}"
            nd.put(
                f"{ident}{_OPS[opcode]}{rtext}{'*' if flags & 0x0400 else ''}"
                f"{'' if flags & 0x0080 else '-'}{'|' if flags & 0x0200 else ''}"
                f"{'$' if flags & 0x0020 else ''}"
            )
            if qd != 1:
                nd.put(f" [{qd}q]")
            cp = pos + 12
            for i in range(qd):
                if i:
                    nd.put(",")
                if nd.opts.verbose > 1:
                    nd.put(" q:")
                    cp = _question(nd, cp, pos, mdns)
                else:
                    cp = _skip(nd, cp) + 4
            nd.put(f" {an}/{ns}/{ar}")
            if an:
                cp = _answer(nd, cp, pos, mdns)
                an -= 1
                while cp < nd.end and an:
                    nd.put(",")
                    cp = _answer(nd, cp, pos, mdns)
                    an -= 1
            if an:
                raise _Bad
            if nd.opts.verbose > 1:
                cp = _section(nd, cp, pos, mdns, ns, " ns:")
                _section(nd, cp, pos, mdns, ar, " ar:")
        else:
            nd.put(
                f"{ident}{_OPS[opcode]}{'+' if flags & 0x0100 else ''}"
                f"{'%' if flags & 0x0010 else ''}"
            )
            if flags & 0x6CF:
                nd.put(f" [b2&3=0x{flags:x}]")
            if opcode == 1:
                if qd:
                    nd.put(f" [{qd}q]")
                if an != 1:
                    nd.put(f" [{an}a]")
            else:
                if an:
                    nd.put(f" [{an}a]")
                if qd != 1:
                    nd.put(f" [{qd}q]")
            if ns:
                nd.put(f" [{ns}n]")
            if ar:
                nd.put(f" [{ar}au]")
            cp = pos + 12
            if qd:
                cp = _question(nd, cp, pos, mdns)
                qd -= 1
                while cp < nd.end and qd:
                    cp = _question(nd, cp, pos, mdns)
                    qd -= 1
            if qd:
                raise _Bad
            if nd.opts.verbose > 1:
                cp = _section(nd, cp, pos, mdns, an, "")
                cp = _section(nd, cp, pos, mdns, ns, " ns:")
                _section(nd, cp, pos, mdns, ar, " ar:")
    except (_Bad, Cut):
        # tcpdump's DNS printer reports a cut message itself (not through its longjmp).
        nd.trunc()
        return
    nd.put(f" ({length})")
