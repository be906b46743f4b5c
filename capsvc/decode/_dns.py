"""DNS message summaries for the text log, in tcpdump's style.

Pure module. The rule it keeps: a message that is cut short or malformed yields a shorter summary
(what was read whole, the answers before the cut included, then ``[|domain]``), never an
exception; name compression is followed at most 32 hops so a pointer loop ends.

Queries read ``1a2b+ A? example.com. (29)``: the id in hex, ``+`` when recursion is desired, the
question type and name, the message length. Responses read
``1a2b* q: A? example.com. 2/0/1 A 93.184.216.34, A 93.184.216.35 (77)``: the id, ``*`` for an
authoritative answer, ``|`` when truncated, ``-`` when recursion is not available, the response code
when it is not NoError, the question, answer/authority/additional counts, then the answers.
"""

from __future__ import annotations

import struct
from socket import AF_INET6, inet_ntop

__all__ = ["DNS_HEADER", "DNS_PORTS", "DnsError", "dns_summary", "read_name"]

#: struct dns_header: id, flags, qdcount, ancount, nscount, arcount.
DNS_HEADER = struct.Struct("!HHHHHH")
#: UDP ports whose payload is summarised as DNS: DNS, mDNS, LLMNR.
DNS_PORTS = frozenset((53, 5353, 5355))
_RR_FIXED = struct.Struct("!HHIH")
_unpack_header = DNS_HEADER.unpack_from
_unpack_rr = _RR_FIXED.unpack_from

_MAX_HOPS = 32
_MAX_ANSWERS = 16

QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    41: "OPT",
    43: "DS",
    46: "RRSIG",
    47: "NSEC",
    48: "DNSKEY",
    50: "NSEC3",
    64: "SVCB",
    65: "HTTPS",
    99: "SPF",
    252: "AXFR",
    255: "ANY",
    257: "CAA",
}
RCODES = {
    1: "FormErr",
    2: "ServFail",
    3: "NXDomain",
    4: "NotImp",
    5: "Refused",
    6: "YXDomain",
    7: "YXRRSet",
    8: "NXRRSet",
    9: "NotAuth",
    10: "NotZone",
}
OPCODES = {1: "inv_q", 2: "stat", 4: "notify", 5: "update"}


#: Label bytes printed as they are: printable ASCII except space, "." and backslash.
_PLAIN = bytes(b for b in range(33, 127) if b not in b".\\")
#: Every other byte prints as a backslash and its three-digit decimal value, as tcpdump does.
_ESCAPES = {b: f"\\{b:03d}" for b in range(256) if b not in _PLAIN}


class _Malformed(Exception):
    """Reading ran past the message or met something no DNS message contains."""


#: What ``read_name`` raises for a name it cannot read.
DnsError = _Malformed


def _qtype(value: int) -> str:
    name = QTYPES.get(value)
    return name if name is not None else f"TYPE{value}"


def _label(raw: bytes) -> str:
    return raw.decode("latin-1").translate(_ESCAPES)


def read_name(data: bytes, pos: int, start: int, end: int) -> tuple[str, int]:
    """Read a (possibly compressed) domain name.

    Args:
        data: the buffer holding the message.
        pos: where the name starts.
        start: where the DNS message starts (compression offsets count from here).
        end: where the message (or the captured part of it) ends.

    Returns:
        ``(name, next)``: the name with a trailing dot (``.`` for the root), and the position just
        after the name where it started (after the first pointer if it was compressed).

    Raises:
        _Malformed: the name runs past ``end``, uses a reserved label type, loops or is too long.
    """
    labels: list[bytes] = []
    after = -1
    hops = 0
    size = 0
    while True:
        if pos >= end:
            raise _Malformed
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n >= 0xC0:
            if pos + 1 >= end or hops >= _MAX_HOPS:
                raise _Malformed
            if after < 0:
                after = pos + 2
            pos = start + ((n & 0x3F) << 8 | data[pos + 1])
            hops += 1
            continue
        if n > 63:
            raise _Malformed
        pos += 1
        size += n + 1
        if pos + n > end or size > 255:
            raise _Malformed
        labels.append(data[pos : pos + n])
        pos += n
    if not labels:
        return ".", (after if after >= 0 else pos)
    joined = b".".join(labels)
    # Only the separators left once plain bytes are deleted: nothing needs escaping.
    if len(joined.translate(None, _PLAIN)) == len(labels) - 1:
        name = joined.decode("ascii")
    else:
        name = ".".join([_label(raw) for raw in labels])
    return name + ".", (after if after >= 0 else pos)


def _rdata(data: bytes, rtype: int, pos: int, rdlen: int, start: int, end: int) -> str:
    if rtype == 1 and rdlen == 4:
        b = data[pos : pos + 4]
        return f"A {b[0]}.{b[1]}.{b[2]}.{b[3]}"
    if rtype == 28 and rdlen == 16:
        return "AAAA " + inet_ntop(AF_INET6, data[pos : pos + 16])
    if rtype in (2, 5, 12):
        return f"{QTYPES[rtype]} {read_name(data, pos, start, end)[0]}"
    if rtype == 15 and rdlen >= 3:
        pref = data[pos] << 8 | data[pos + 1]
        return f"MX {read_name(data, pos + 2, start, end)[0]} {pref}"
    return _qtype(rtype)


def dns_summary(data: bytes, start: int, end: int, length: int) -> str | None:
    """Summarise the DNS message in ``data[start:end]``.

    Args:
        data: the buffer (usually the whole frame, so nothing is copied).
        start: where the DNS message starts.
        end: where the captured part of it ends (may be short of ``length``).
        length: the message length the transport header gives, printed as ``(N)``.

    Returns:
        The summary, or None when not even the 12-byte header is there.
    """
    if end - start < 12:
        return None
    ident, flags, qd, an, ns, ar = _unpack_header(data, start)
    parts = [f"{ident:04x}"]
    response = flags & 0x8000
    opcode = flags >> 11 & 0xF
    if response:
        if flags & 0x0400:
            parts.append("*")
        if flags & 0x0200:
            parts.append("|")
        if not flags & 0x0080:
            parts.append("-")
    elif flags & 0x0100:
        parts.append("+")
    if opcode:
        parts.append(" " + OPCODES.get(opcode, f"op{opcode}"))
    if response and flags & 0xF:
        parts.append(" " + RCODES.get(flags & 0xF, f"rcode{flags & 0xF}"))
    pos = start + 12
    try:
        if qd:
            if qd != 1:
                parts.append(f" [{qd}q]")
            name, pos = read_name(data, pos, start, end)
            if pos + 4 > end:
                raise _Malformed
            qtype = data[pos] << 8 | data[pos + 1]
            pos += 4
            parts.append(
                f" q: {_qtype(qtype)}? {name}" if response else f" {_qtype(qtype)}? {name}"
            )
        if response:
            for _ in range(min(qd - 1, _MAX_HOPS)):  # only the answers need what follows
                pos = read_name(data, pos, start, end)[1] + 4
            parts.append(f" {an}/{ns}/{ar}")
            for i in range(min(an, _MAX_ANSWERS)):
                pos = read_name(data, pos, start, end)[1]
                if pos + 10 > end:
                    raise _Malformed
                rtype, _cls, _ttl, rdlen = _unpack_rr(data, pos)
                pos += 10
                if pos + rdlen > end:
                    raise _Malformed
                # Each answer is kept once read whole: a cut later still shows it, as tcpdump.
                parts.append(("," if i else "") + " " + _rdata(data, rtype, pos, rdlen, start, end))
                pos += rdlen
            if an > _MAX_ANSWERS:
                parts.append(", ...")
        elif an or ns or ar:
            parts.append(f" [{an}a]" if an else "")
            parts.append(f" [{ns}n]" if ns else "")
            parts.append(f" [{ar}au]" if ar else "")
    except _Malformed:
        parts.append(" [|domain]")
    parts.append(f" ({length})")
    return "".join(parts)
