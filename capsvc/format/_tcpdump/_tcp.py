"""TCP in tcpdump's words (print-tcp.c, print-mptcp.c), and what it prints of HTTP and SSH.

Pure module. ``Flags [P.], seq 1:79, ack 1, win 502, options [nop,nop,TS val 1 ecr 2],
length 78``: flags in tcpdump's order, sequence numbers relative to the connection unless
``-S`` (``capsvc.decode._tcpseq``, tcpdump's arithmetic in a bounded table), options by their
tcpdump names. The payload is decoded on the ports tcpdump decodes it on: HTTP (80, 8080)
prints its first line (``: HTTP: GET / HTTP/1.1``), DNS (53) its message, SSH (22) its version
banner, BGP (179) its name (tcpdump's line without ``-v``); other payloads print nothing more,
as tcpdump does for a port it does not know.
"""

from __future__ import annotations

from ._dns import domain_print
from ._nd import Cut, Nd
from ._sum import should_be
from ._udp import transport_checksum

__all__ = ["TCP_FLAGS", "tcp_print", "txtproto_print"]


def _flags(bits: int) -> str:
    # tcpdump's table order: FIN SYN RST PSH ACK URG ECE CWR.
    bits_order = (1, 2, 4, 8, 16, 32, 64, 128)
    text = "".join(ch for bit, ch in zip(bits_order, "FSRP.UEW", strict=True) if bits & bit)
    return text or "none"


#: TCP flags byte -> tcpdump's text (``S``, ``S.``, ``P.``, ``FP.``, ``none``).
TCP_FLAGS: tuple[str, ...] = tuple(_flags(b) for b in range(256))
_OPTION_NAMES = {
    0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 6: "echo",
    7: "echoreply", 8: "TS", 11: "cc", 12: "ccnew", 13: "", 19: "md5", 20: "scps", 28: "uto",
    29: "tcp-ao", 30: "mptcp", 34: "tfo", 254: "exp",
}  # fmt: skip
_MPTCP_SUBTYPES = ("capable", "join", "dss", "add-addr", "rem-addr", "prio", "fail",
                   "fast-close", "tcprst")  # fmt: skip
_HTTP_PORTS = frozenset((80, 8080))
_HTTP_METHODS = frozenset(
    ("GET", "PUT", "COPY", "HEAD", "LOCK", "MOVE", "POLL", "POST", "BCOPY", "BMOVE", "MKCOL",
     "TRACE", "LABEL", "MERGE", "DELETE", "SEARCH", "UNLOCK", "REPORT", "UPDATE", "NOTIFY",
     "BDELETE", "CONNECT", "OPTIONS", "CHECKIN", "PROPFIND", "CHECKOUT", "SUBSCRIBE",
     "PROPPATCH", "BPROPFIND", "BPROPPATCH", "UNCHECKOUT", "MKACTIVITY", "MKWORKSPACE",
     "UNSUBSCRIBE", "RPC_CONNECT", "VERSION-CONTROL", "BASELINE-CONTROL")
)  # fmt: skip
_SYN, _FIN, _RST, _ACK, _URG = 2, 1, 4, 16, 32


class _BadOpt(Exception):
    """An option whose length is impossible (tcpdump's ``[bad opt]``)."""


def _ports(nd: Nd, ip: int, l4: int, sport: int, dport: int) -> None:
    """``src.port > dst.port: `` (only the ports when extension headers stand between)."""
    if nd.data[ip] >> 4 == 6:
        if nd.u8(ip + 6) == 6:
            nd.put(f"{nd.ip6(ip + 8)}.{sport} > {nd.ip6(ip + 24)}.{dport}: ")
        else:
            nd.put(f"{sport} > {dport}: ")
    else:
        nd.put(f"{nd.ip4(ip + 12)}.{sport} > {nd.ip4(ip + 16)}.{dport}: ")


def _addresses(nd: Nd, ip: int) -> tuple[bytes, bytes]:
    if nd.data[ip] >> 4 == 6:
        return nd.data[ip + 8 : ip + 24], nd.data[ip + 24 : ip + 40]
    return nd.data[ip + 12 : ip + 16], nd.data[ip + 16 : ip + 20]


def tcp_print(nd: Nd, pos: int, length: int, ip: int, fragmented: bool) -> None:
    """The TCP segment at ``pos`` (``length`` from the IP header; ``ip`` the IP header)."""
    nd.proto = "tcp"
    v6 = nd.data[ip] >> 4 == 6
    if not nd.has(pos + 2, 2):
        if v6:
            nd.put(f"{nd.ip6(ip + 8)} > {nd.ip6(ip + 24)}:")
        else:
            nd.put(f"{nd.ip4(ip + 12)} > {nd.ip4(ip + 16)}:")
        nd.trunc()
        return
    sport, dport = nd.u16(pos), nd.u16(pos + 2)
    _ports(nd, ip, pos, sport, dport)
    if not nd.has(pos, 20):
        # tcpdump checks the fixed header here and reports the cut itself (the dump of -x
        # then still leaves out the link header).
        nd.trunc()
        return
    hlen = (nd.u8(pos + 12) >> 4) * 4
    if hlen < 20:
        nd.put(f" tcp {(length - hlen) & 0xFFFFFFFF} [bad hdr length {hlen} - too short, < 20]")
        return
    seq, ack = nd.u32(pos + 4), nd.u32(pos + 8)
    win, urp = nd.u16(pos + 14), nd.u16(pos + 18)
    opts = nd.opts
    if opts.quiet:
        nd.put(f"tcp {(length - hlen) & 0xFFFFFFFF}")
        if hlen > length:
            nd.put(f" [bad hdr length {hlen} - too long, > {length}]")
        return
    flags = nd.u8(pos + 13)
    nd.put(f"Flags [{TCP_FLAGS[flags]}]")
    rev, base_seq, base_ack = False, 0, 0
    if not opts.absolute and flags & _ACK:
        src, dst = _addresses(nd, ip)
        seq, ack, rev, base_seq, base_ack = opts.seqs.relative(
            src, sport, dst, dport, seq, ack, bool(flags & _SYN)
        )
    if hlen > length:
        nd.put(f" [bad hdr length {hlen} - too long, > {length}]")
        return
    if opts.verbose and not fragmented and nd.has(pos, length):
        _checksum(nd, ip, pos, length)
    length -= hlen
    if opts.verbose > 1 or length > 0 or flags & (_SYN | _FIN | _RST):
        nd.put(f", seq {seq}")
        if length > 0:
            nd.put(f":{(seq + length) & 0xFFFFFFFF}")
    if flags & _ACK:
        nd.put(f", ack {ack}")
    nd.put(f", win {win}")
    if flags & _URG:
        nd.put(f", urg {urp}")
    if hlen > 20:
        nd.put(", options [")
        try:
            _options(nd, pos + 20, hlen - 20, flags, rev, base_seq, base_ack)
        except Cut as cut:
            nd.trunc()
            if cut.args and cut.args[0]:
                nd.put(">")  # tcpdump's LENCHECK after the first option closes the list so
            return
        except _BadOpt as bad:
            nd.put("[bad opt]")
            if bad.args[0]:
                nd.put("]")
            return
        nd.put("]")
    nd.put(f", length {length}")
    if length <= 0:
        return
    body = pos + hlen
    if flags & _RST and opts.verbose:
        _rst_data(nd, body, length)
        return
    if sport == 22 or dport == 22:
        _ssh(nd, body, length)
    elif sport in _HTTP_PORTS or dport in _HTTP_PORTS:
        nd.put(": ")
        nd.proto = "http"
        txtproto_print(nd, body, length, "HTTP", True)
    elif sport == 179 or dport == 179:
        nd.proto = "bgp"
        nd.put(": BGP")
    elif sport == 53 or dport == 53:
        domain_print(nd, body, length, over_tcp=True, mdns=False)


def _checksum(nd: Nd, ip: int, pos: int, length: int) -> None:
    value = nd.u16(pos + 16)
    sum_ = transport_checksum(nd, ip, pos, length, 6)
    if sum_ is None:
        return
    nd.put(f", cksum 0x{value:04x}")
    if sum_:
        nd.put(f" (incorrect -> 0x{should_be(value, sum_):04x})")
    else:
        nd.put(" (correct)")


def _options(
    nd: Nd, cp: int, hlen: int, flags: int, rev: bool, base_seq: int, base_ack: int
) -> None:
    started = False
    while hlen > 0:
        if started:
            nd.put(",")
        opt = nd.u8(cp)
        cp += 1
        if opt in (0, 1):
            size = 1
        else:
            size = nd.u8(cp)
            cp += 1
            if size < 2 or size > hlen:
                raise _BadOpt(started)
            hlen -= 1
        hlen -= 1
        datalen = 0

        def check(n: int, hlen: int = hlen, cp: int = cp, started: bool = started) -> None:
            if n > hlen:
                raise _BadOpt(started)
            if not nd.has(cp, n):
                raise Cut(started)

        nd.put(_OPTION_NAMES.get(opt, f"unknown-{opt}"))
        if opt == 2:
            datalen = 2
            check(2)
            nd.put(f" {nd.u16(cp)}")
        elif opt == 3:
            datalen = 1
            check(1)
            nd.put(f" {nd.u8(cp)}")
        elif opt == 5:
            datalen = size - 2
            if datalen % 8:
                nd.put(" invalid sack")
            else:
                nd.put(f" {datalen // 8} ")
                base = base_seq if rev else base_ack
                for i in range(0, datalen, 8):
                    check(i + 4)
                    s = nd.u32(cp + i)
                    check(i + 8)
                    e = nd.u32(cp + i + 4)
                    nd.put(f"{{{(s - base) & 0xFFFFFFFF}:{(e - base) & 0xFFFFFFFF}}}")
        elif opt in (6, 7, 11, 12, 13):
            datalen = 4
            check(4)
            nd.put(f" {nd.u32(cp)}")
        elif opt == 8:
            datalen = 8
            check(8)
            nd.put(f" val {nd.u32(cp)} ecr {nd.u32(cp + 4)}")
        elif opt == 19:
            datalen = 16
            check(16)
            nd.put(
                " shared secret not supplied with -M, can't check - " + nd.data[cp : cp + 16].hex()
            )
        elif opt == 20:
            datalen = 2
            check(2)
            nd.put(f" cap {nd.u8(cp):02x} id {nd.u8(cp + 1)}")
        elif opt == 28:
            datalen = 2
            check(2)
            uto = nd.u16(cp)
            nd.put(f" 0x{uto:x} {(uto >> 1) * 60 if uto & 1 else uto >> 1}")
        elif opt == 30:
            datalen = size - 2
            check(datalen)
            saved = nd.end
            nd.end = min(cp - 2 + size, nd.end)
            try:
                ok = _mptcp(nd, cp - 2, size, flags)
            finally:
                nd.end = saved
            if not ok:
                raise _BadOpt(started)
        elif opt in (0, 1, 4):
            pass
        else:
            datalen = size - 2
            if datalen:
                nd.put(" 0x")
            for i in range(datalen):
                check(i + 1)
                nd.put(f"{nd.u8(cp + i):02x}")
        cp += datalen
        hlen -= datalen
        datalen += 1 if opt in (0, 1) else 2
        if datalen != size:
            nd.put(f"[len {size}]")
        started = True
        if opt == 0:
            break


def _mptcp(nd: Nd, pos: int, size: int, flags: int) -> bool:
    """An MPTCP option (RFC 8684) as print-mptcp.c prints it; False for a malformed one."""
    subtype = min(nd.u8(pos + 2) >> 4, len(_MPTCP_SUBTYPES))
    name = _MPTCP_SUBTYPES[subtype] if subtype < len(_MPTCP_SUBTYPES) else "unknown"
    nd.put(f" {size} {name}")
    if subtype == 0:
        syn_ok = size in (12, 4) and flags & _SYN
        ack_ok = size in (20, 22) and flags & (_SYN | _ACK) == _ACK
        if not (syn_ok or ack_ok):
            return False
        version = nd.u8(pos + 2) & 15
        if version > 1:
            nd.put(f" Unknown Version ({version})")
            return True
        nd.put(f" v{version}")
        mflags = nd.u8(pos + 3)
        if mflags & 0x80:
            nd.put(" csum")
        if size == 12 or size >= 20:
            nd.need(pos + 4, 8)
            nd.put(f" {{0x{int.from_bytes(nd.data[pos + 4 : pos + 12], 'big'):x}")
            if size >= 20:
                nd.need(pos + 12, 8)
                nd.put(f",0x{int.from_bytes(nd.data[pos + 12 : pos + 20], 'big'):x}")
            if size == 22 and mflags & 0x80:
                nd.put(f",data_len={nd.u16(pos + 20)}")
            nd.put("}")
        return True
    if subtype == 2:
        return _mptcp_dss(nd, pos, size, flags)
    if subtype == 1:
        return _mptcp_join(nd, pos, size, flags)
    if subtype == 3:
        return _mptcp_add_addr(nd, pos, size)
    if subtype == 4:
        if size < 4:
            return False
        nd.put(" id" + "".join(f" {nd.u8(pos + 3 + i)}" for i in range(size - 3)))
    elif subtype == 5:
        if size not in (3, 4):
            return False
        nd.put(" backup" if nd.u8(pos + 2) & 1 else " non-backup")
        if size == 4:
            nd.put(f" id {nd.u8(pos + 3)}")
    elif subtype == 6:
        if size != 12:
            return False
        nd.need(pos + 4, 8)
        nd.put(f" seq {int.from_bytes(nd.data[pos + 4 : pos + 12], 'big')}")
    elif subtype == 7:
        if size != 12:
            return False
        nd.need(pos + 4, 8)
        nd.put(f" key 0x{int.from_bytes(nd.data[pos + 4 : pos + 12], 'big'):x}")
    return True


def _u64(nd: Nd, pos: int) -> int:
    nd.need(pos, 8)
    return int.from_bytes(nd.data[pos : pos + 8], "big")


def _mptcp_join(nd: Nd, pos: int, size: int, flags: int) -> bool:
    if not (
        (size == 12 and flags & _SYN)
        or (size == 16 and flags & (_SYN | _ACK) == _SYN | _ACK)
        or (size == 24 and flags & _ACK)
    ):
        return False
    if size != 24:
        if nd.u8(pos + 2) & 1:
            nd.put(" backup")
        nd.put(f" id {nd.u8(pos + 3)}")
    if size == 12:
        nd.put(f" token 0x{nd.u32(pos + 4):x} nonce 0x{nd.u32(pos + 8):x}")
    elif size == 16:
        nd.put(f" hmac 0x{_u64(nd, pos + 4):x} nonce 0x{nd.u32(pos + 12):x}")
    else:
        nd.need(pos + 4, 20)
        nd.put(" hmac 0x" + nd.data[pos + 4 : pos + 24].hex())
    return True


_ADD_ADDR_KINDS = {6: "v0-ip6", 4: "v0-ip4", 1: "v1-echo", 0: "v1"}


def _mptcp_add_addr(nd: Nd, pos: int, size: int) -> bool:
    if size not in (8, 10, 16, 18, 20, 22, 28, 30):
        return False
    nd.put(f" {_ADD_ADDR_KINDS.get(nd.u8(pos + 2) & 15, '[bad version/echo]')}")
    nd.put(f" id {nd.u8(pos + 3)}")
    if size in (8, 10, 16, 18):
        nd.put(f" {nd.ip4(pos + 4)}")
        if size in (10, 18):
            nd.put(f":{nd.u16(pos + 8)}")
        if size == 16:
            nd.put(f" hmac 0x{_u64(nd, pos + 8):x}")
        if size == 18:
            nd.put(f" hmac 0x{_u64(nd, pos + 10):x}")
    else:
        nd.put(f" {nd.ip6(pos + 4)}")
        if size in (22, 30):
            nd.put(f":{nd.u16(pos + 20)}")
        if size == 28:
            nd.put(f" hmac 0x{_u64(nd, pos + 20):x}")
        if size == 30:
            nd.put(f" hmac 0x{_u64(nd, pos + 22):x}")
    return True


def _mptcp_dss(nd: Nd, pos: int, size: int, flags: int) -> bool:
    if size < 4 or flags & _SYN:
        return False
    mflags = nd.u8(pos + 3)
    if mflags & 0x10:
        nd.put(" fin")
    at, left = pos + 4, size - 4

    def number(wide: bool) -> str | None:
        nonlocal at, left
        n = 8 if wide else 4
        if left < n:
            return None
        nd.need(at, n)
        value = int.from_bytes(nd.data[at : at + n], "big")
        at += n
        left -= n
        return str(value)

    if mflags & 0x01:
        nd.put(" ack ")
        value = number(bool(mflags & 0x02))
        if value is None:
            return False
        nd.put(value)
    if mflags & 0x04:
        nd.put(" seq ")
        value = number(bool(mflags & 0x08))
        if value is None:
            return False
        nd.put(value)
        if left < 4:
            return False
        nd.put(f" subseq {nd.u32(at)}")
        at, left = at + 4, left - 4
        if left < 2:
            return False
        nd.put(f" len {nd.u16(at)}")
        at, left = at + 2, left - 2
        if left >= 2:
            nd.put(f" csum 0x{nd.u16(at):x}")
            left -= 2
    return left == 0


def _rst_data(nd: Nd, pos: int, length: int) -> None:
    """``-v``: the text a RST carries (RFC 1122 4.2.2.12)."""
    nd.put(" [RST")
    if length > 30:
        nd.put("+")
    text = "".join(
        chr(c) if 0x20 <= c <= 0x7E else "." for c in nd.data[pos : pos + min(length, 30)]
    )
    if not nd.has(pos, min(length, 30)):
        nd.put(f" {text}")
        raise Cut
    nd.put(f" {text}]")


def _ssh(nd: Nd, pos: int, length: int) -> None:
    nd.proto = "ssh"
    for i, ch in enumerate(b"SSH-"):
        if nd.u8(pos + i) != ch:
            return
    idx = 4
    while idx < length:
        c = nd.u8(pos + idx)
        if c == 0x0A:
            break
        if c == 0x0D:
            if idx + 1 >= length or nd.u8(pos + idx + 1) != 0x0A:
                return
            break
        if not 0x20 <= c <= 0x7E:
            return
        idx += 1
    else:
        return
    nd.put(f": SSH: {nd.data[pos : pos + idx].decode('ascii')}")


def _token(nd: Nd, pos: int, idx: int, length: int) -> tuple[int, bytes]:
    """tcpdump's fetch_token: the next space-delimited word and where the one after starts;
    ``(0, b"")`` when there is none or it is not printable."""
    start = idx
    while idx < length:
        if not nd.has(pos + idx):
            return 0, b""
        c = nd.data[pos + idx]
        if not 0x20 <= c <= 0x7E:
            return 0, b""
        if c == 0x20:
            break
        if idx - start + 2 > 129:
            return 0, b""
        idx += 1
    token = nd.data[pos + start : pos + idx]
    if not token:
        return 0, b""
    while idx < length and nd.has(pos + idx):
        c = nd.data[pos + idx]
        if c in (0x0D, 0x0A) or not 0x20 <= c <= 0x7E or c != 0x20:
            break
        idx += 1
    return idx, token


def _txt_line(nd: Nd, prefix: str, pos: int, idx: int, length: int) -> int:
    """tcpdump's print_txt_line: print one CRLF- or LF-ended line of text from ``idx``; the
    index after it, or 0 when the bytes are not text (or the line does not end here)."""
    start = idx
    while idx < length:
        c = nd.u8(pos + idx)
        if c == 0x0A:
            end, idx = idx, idx + 1
            break
        if c == 0x0D:
            if idx + 1 >= length:
                return 0
            if nd.u8(pos + idx + 1) == 0x0A:
                end, idx = idx, idx + 2
                break
            return 0
        if not (0x20 <= c <= 0x7E) and c != 0x09:
            return 0
        idx += 1
    else:
        nd.put(prefix + nd.data[pos + start : pos + idx].decode("ascii"))
        nd.trunc()
        return 0
    nd.put(prefix + nd.data[pos + start : pos + end].decode("ascii"))
    return idx


def txtproto_print(nd: Nd, pos: int, length: int, name: str, http: bool) -> None:
    """A text protocol's request or response line (``HTTP: GET / HTTP/1.1``); with ``-v``
    every line. ``http``: the methods are HTTP's and the status code is the second word."""
    show = False
    idx, token = _token(nd, pos, 0, length)
    if idx:
        if http and token.decode("ascii").upper() in _HTTP_METHODS:
            show = True
        if http:
            idx, token = _token(nd, pos, idx, length)
        if idx and len(token) == 3 and token.isdigit():
            show = True
    nd.put(name)
    if not show:
        return
    if nd.opts.verbose:
        nd.put(f", length: {length}")
        idx = 0
        while idx < length:
            idx = _txt_line(nd, "\n\t", pos, idx, length)
            if not idx:
                break
    else:
        _txt_line(nd, ": ", pos, 0, length)
