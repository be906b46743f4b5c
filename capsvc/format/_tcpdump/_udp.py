"""UDP in tcpdump's words (print-udp.c), and the transport checksum both TCP and UDP check.

Pure module. ``IP 10.0.0.1.40000 > 10.0.0.2.9999: UDP, length 12``; DNS (53) and mDNS (5353)
print their message (``4660+ A? example.com. (29)``); BOOTP/DHCP, NTP, BFD and HSRP their
summary line, VXLAN and Geneve the packet inside; a port capsvc does not decode prints
``UDP, length N`` as tcpdump does for a port it does not know.
"""

from __future__ import annotations

from . import _gre
from ._dns import domain_print
from ._nd import Nd
from ._ptp import ptp_print
from ._sum import should_be

__all__ = ["transport_checksum", "udp_print"]


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def transport_checksum(nd: Nd, ip: int, pos: int, length: int, proto: int) -> int | None:
    """The Internet checksum over the pseudo-header and ``length`` bytes at ``pos`` (0 when
    the segment's checksum is right); None when the segment is not all captured."""
    if not nd.has(pos, length):
        return None
    data = nd.data
    if data[ip] >> 4 == 6:
        pseudo = data[ip + 8 : ip + 40] + length.to_bytes(4, "big") + bytes((0, 0, 0, proto))
    else:
        pseudo = data[ip + 12 : ip + 20] + bytes((0, proto)) + (length & 0xFFFF).to_bytes(2, "big")
    total = _sum16(pseudo) + _sum16(data[pos : pos + length])
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _addresses(nd: Nd, ip: int, sport: int, dport: int) -> None:
    if nd.data[ip] >> 4 == 6:
        direct = nd.u8(ip + 6) == 17
        src, dst = (nd.ip6(ip + 8), nd.ip6(ip + 24)) if direct else ("", "")
    else:
        direct = nd.u8(ip + 9) == 17
        src, dst = (nd.ip4(ip + 12), nd.ip4(ip + 16)) if direct else ("", "")
    if direct:
        if sport < 0:
            nd.put(f"{src} > {dst}: ")
        else:
            nd.put(f"{src}.{sport} > {dst}.{dport}: ")
    elif sport >= 0:
        nd.put(f"{sport} > {dport}: ")


def udp_print(nd: Nd, pos: int, length: int, ip: int, fragmented: bool) -> None:
    """The UDP datagram at ``pos`` (``length`` from the IP header; ``ip`` the IP header)."""
    nd.proto = "udp"
    # tcpdump's UDP printer reports a cut header itself (-x then still leaves out the link
    # header), as do the TCP and IPv6 option printers.
    if not nd.has(pos + 2, 2):
        _addresses(nd, ip, -1, -1)
        nd.trunc()
        return
    sport, dport = nd.u16(pos), nd.u16(pos + 2)
    if length < 8:
        _addresses(nd, ip, sport, dport)
        nd.put(f"truncated-udp {length}")
        return
    if not nd.has(pos + 4, 2):
        _addresses(nd, ip, sport, dport)
        nd.trunc()
        return
    ulen = nd.u16(pos + 4)
    if ulen == 0 and length > 65535:
        ulen = length
    if ulen < 8:
        _addresses(nd, ip, sport, dport)
        nd.put(f"truncated-udplength {ulen}")
        return
    ulen -= 8
    length -= 8
    if ulen < length:
        length = ulen
    body = pos + 8
    if body > nd.end:
        _addresses(nd, ip, sport, dport)
        nd.trunc()
        return
    _addresses(nd, ip, sport, dport)
    opts = nd.opts
    if opts.verbose and not fragmented:
        _checksum(nd, ip, pos, length)
    if not opts.quiet:
        if sport in (53, 5353) or dport in (53, 5353):
            mdns = not (sport == 53 or dport == 53)
            domain_print(nd, body, length, over_tcp=False, mdns=mdns)
            return
        if sport in (67, 68) or dport in (67, 68):
            _bootp(nd, body, length)
            return
        if sport == 123 or dport == 123:
            _ntp(nd, body, length)
            return
        if sport in (3784, 3785, 4784) or dport in (3784, 3785, 4784):
            _bfd(nd, body, length, dport if dport in (3784, 3785, 4784) else sport)
            return
        if sport in (319, 320) or dport in (319, 320):
            ptp_print(nd, body, length)
            return
        if sport == 1985 or dport == 1985:
            _hsrp(nd, body, length)
            return
        if sport == 4789 or dport == 4789:
            _gre.vxlan_print(nd, body, length)
            return
        if sport == 6081 or dport == 6081:
            _gre.geneve_print(nd, body, length)
            return
    if ulen > length and not fragmented:
        nd.put(f"UDP, bad length {ulen} > {length}")
    else:
        nd.put(f"UDP, length {ulen}")


def _checksum(nd: Nd, ip: int, pos: int, length: int) -> None:
    v6 = nd.data[ip] >> 4 == 6
    if not v6 and nd.opts.verbose < 2:
        return
    value = nd.u16(pos + 6)
    if not v6 and value == 0:
        nd.put("[no cksum] ")
        return
    sum_ = transport_checksum(nd, ip, pos, length + 8, 17)
    if sum_ is None:
        return
    if sum_:
        nd.put(f"[bad udp cksum 0x{value:04x} -> 0x{should_be(value, sum_):04x}!] ")
    else:
        nd.put("[udp sum ok] ")


_NTP_MODES = ("unspecified", "symmetric active", "symmetric passive", "Client", "Server",
              "Broadcast", "Control Message", "Reserved")  # fmt: skip


def _bootp(nd: Nd, pos: int, length: int) -> None:
    """BOOTP and DHCP (RFC 951, 2131) as tcpdump prints them without ``-v``."""
    nd.proto = "bootp"
    op = nd.u8(pos)
    nd.put(f"BOOTP/DHCP, {({1: 'Request', 2: 'Reply'}).get(op, f'unknown (0x{op:02x})')}")
    if nd.u8(pos + 1) == 1 and nd.u8(pos + 2) == 6 and op == 1:
        nd.put(f" from {nd.mac(pos + 28)}")
    nd.put(f", length {length}")


def _ntp(nd: Nd, pos: int, length: int) -> None:
    """NTP (RFC 5905): its version and mode, as tcpdump prints them without ``-v``."""
    nd.proto = "ntp"
    status = nd.u8(pos)
    nd.put(f"NTPv{(status >> 3) & 7}, {_NTP_MODES[status & 7]}, length {length}")


_BFD_PORTS = {3784: "Control", 4784: "Multihop", 3785: "Echo"}
_BFD_STATES = ("AdminDown", "Down", "Init", "Up")
_BFD_FLAGS = ((0x20, "Poll"), (0x10, "Final"), (0x08, "Control Plane Independent"),
              (0x04, "Authentication Present"), (0x02, "Demand"), (0x01, "Multipoint"))  # fmt: skip
_HSRP_OPS = ("hello", "coup", "resign")
_HSRP_STATES = {0: "initial", 1: "learn", 2: "listen", 4: "speak", 8: "standby", 16: "active"}


def _bfd(nd: Nd, pos: int, length: int, port: int) -> None:
    """BFD (RFC 5880, 5883) as tcpdump prints it without ``-v``: version 1 control packets
    and echo packets."""
    nd.proto = "bfd"
    if port == 3785:
        nd.put(f"BFD, Echo, length: {length}")
        return
    first = nd.u8(pos)
    flags = nd.u8(pos + 1)
    if first >> 5 != 1:
        nd.put(f"UDP, length {length}")
        return
    names = ", ".join(name for bit, name in _BFD_FLAGS if flags & bit) or "none"
    nd.put(
        f"BFDv1, {_BFD_PORTS[port]}, State {_BFD_STATES[flags >> 6]}, Flags: [{names}], "
        f"length: {length}"
    )


def _hsrp(nd: Nd, pos: int, length: int) -> None:
    """HSRP version 0 (RFC 2281) as tcpdump prints it without ``-v``."""
    nd.proto = "hsrp"
    version = nd.u8(pos)
    nd.put(f"HSRPv{version}")
    if version:
        return
    op = nd.u8(pos + 1)
    nd.put(f"-{_HSRP_OPS[op] if op < 3 else f'unknown ({op})'} {length}: ")
    state = nd.u8(pos + 2)
    nd.put(f"state={_HSRP_STATES.get(state, f'Unknown ({state})')} group={nd.u8(pos + 6)} ")
    if nd.u8(pos + 7):
        nd.put(f"[reserved={nd.u8(pos + 7)}!] ")
    nd.put(f"addr={nd.ip4(pos + 16)}")
