"""The text log's line formatter: one frame in, one tcpdump-style line out.

Pure module (no IO; the clock is only read to turn timestamps into local time). The rule it keeps:
``TextFormatter.format`` returns a line for every input and never raises. Anything it cannot read
up to the transport header prints ``??? len=N`` (N the frame's wire length) in place of the
endpoints; the tag then names the deepest protocol that was recognised.

Line layout: ``HH:MM:SS.ffffff [DIR PROT] endpoints details``, with the tag ``[%-3s %4s]`` of the
direction (``---``, ``IN``, ``OUT``) and the protocol (``TCP``, ``UDP``, ``ICMP``, ``ICMP6``,
``P47`` for other IP protocols, ``ARP``, ``LLDP``, ...). IPv6 endpoints with a port are bracketed
(``[fd00::1]:1234``).

What "length" means, following tcpdump: for TCP the payload length (IP length minus the IP and TCP
headers, so the example's ``[P.] length 78`` is a 78-byte request, 118 bytes of IPv4); for UDP the
payload length from the UDP header (DNS prints it as ``(29)``); for ICMP/ICMPv6 and other IP
protocols the IP payload length; for non-IP frames the frame after its link header. Lengths come
from the headers, not the captured bytes, so a snaplen-truncated packet reports its real size.

Verbose adds, for TCP, ``seq``/``ack`` relative to the connection (a bounded LRU table of
``_flows``), ``win`` and ``options [...]`` before the length; then every IP line ends with
``, ttl T, id I, iplen L`` (IPv6: the hop limit as ttl, no id). A TCP payload annotation (HTTP,
TLS, SSH) always comes last, after ``: ``. IPv4 fragments after the first have no ports:
``10.0.0.1 > 10.0.0.2 frag id 7, offset 1480, length 520``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from socket import AF_INET6, inet_ntoa, inet_ntop

from .._packet import LinkType
from ..decode._annotate import ANNOTATED_FIRST_BYTES, annotate_tcp, ascii_lines
from ..decode._const import (
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINK_MESSAGE,
    PORT_BGP,
)
from ..decode._dns import dns_summary
from ..decode._ether import LINK_TRUNCATED
from ..decode._flows import DEFAULT_MAX_FLOWS, FlowTable
from ..decode._link import (
    LINK_PROTOCOLS,
    decode_ethernet,
    has_decoder,
    ipv6_fragment,
    ipv6_transport,
    link_decoder,
    link_direction,
    link_ifindex,
)
from ..decode._tunnel import INNER_ETHER
from ._apps import IP_PROTOCOLS, TCP_PORTS, UDP_PORTS
from ._links import link_message, unknown_link_text
from ._proto import TCP_FLAGS, icmp6_text, icmp_text, link_text, tcp_options

__all__ = ["DIRECTION_TAGS", "TextFormatter", "tag"]

#: Text of each direction in the tag, indexed by Direction.
DIRECTION_TAGS = ("---", "IN", "OUT")
_PORTS = struct.Struct("!HH").unpack_from
_TCP_SEQ_ACK = struct.Struct("!II").unpack_from
_U16 = struct.Struct("!H").unpack_from
#: What a malformed field can raise deep inside a decoder; turned into a ``???`` line.
_DECODE_ERRORS = (IndexError, struct.error, ValueError, UnicodeError, OverflowError, KeyError)
#: The IPv4 address text cache is cleared when it grows past this many addresses.
_ADDR_CACHE_MAX = 65536


#: The IP layer of a packet as the transport formatters need it: where the IP header starts, the
#: IP protocol, where the transport header starts, the end of the captured part of the IP
#: payload, and the payload length the IP header states. A plain tuple: cheap per packet.
_Ip = tuple[int, int, int, int, int]


def tag(direction: int, name: str) -> str:
    """The tag of a line: ``[%-3s %4s]`` of the direction and protocol name (``[IN   TCP]``)."""
    return f"[{DIRECTION_TAGS[direction]:<3} {name:>4}]"


def _tags(name: str) -> tuple[str, str, str]:
    return tag(0, name), tag(1, name), tag(2, name)


#: Direction values printed as they are; anything else prints as unknown.
_DIRECTIONS = frozenset((0, 1, 2))
_TAG_TCP = _tags("TCP")
_TAG_UDP = _tags("UDP")
_TAG_ICMP = _tags("ICMP")
_TAG_ICMP6 = _tags("ICMP6")
_TAG_BAD = _tags("?")
_TAG_IP = _tags("IP")
_TAG_IP6 = _tags("IP6")
_TAG_LINK = _tags("LINK")
#: UDP port -> application formatter (DNS, DHCP, NTP, QUIC, VXLAN, Geneve, ...).
_UDP_PORTS = UDP_PORTS
#: Extension header types ``ipv6_transport`` stops at when the chain runs past the capture.
_IPV6_CHAIN = frozenset((0, 43, 44, 51, 60))
#: Tunnels inside tunnels are followed this deep; deeper ones print their length only.
_MAX_DEPTH = 3
#: Link types whose header records the direction (Linux cooked v1/v2, SLIP).
_DIRECTION_LINKTYPES = frozenset((LinkType.LINUX_SLL, LinkType.LINUX_SLL2, LinkType.SLIP))


class TextFormatter:
    """Formats frames of one link type as text lines.

    Holds the only state the text log needs: the cached clock prefix of the current second, the
    IPv4 address text cache and, in verbose mode, the bounded TCP flow table.

    Args:
        linktype: link type of the frames; an unknown number makes every line ``??? len=N``.
        verbose: add TCP sequence numbers, window and options, and IP ttl/id/length.
        ascii: follow each line with the transport payload, one indented line per payload line.
        max_flows: TCP connections remembered for relative sequence numbers (verbose only).
        interfaces: interface index -> name. When given, lines of link types that carry the
            interface (LINUX_SLL2, as ``-i any`` captures) name it after the time stamp, ``ifN``
            for an index not in the mapping; None (the default) prints no interface.
    """

    def __init__(
        self,
        linktype: int = LinkType.RAW,
        *,
        verbose: bool = False,
        ascii: bool = False,
        max_flows: int = DEFAULT_MAX_FLOWS,
        interfaces: Mapping[int, str] | None = None,
    ) -> None:
        self.linktype = linktype
        self.verbose = verbose
        self.ascii = ascii
        self.flows = FlowTable(max_flows)
        self.interfaces = interfaces
        base = linktype & 0x03FFFFFF
        self._decode = link_decoder(linktype)
        self._known = has_decoder(linktype)
        self._message = link_message(linktype)
        self._marker = f"[|{LINK_PROTOCOLS.get(base, 'link')}]"
        self._cooked = base in _DIRECTION_LINKTYPES
        if interfaces is not None and link_ifindex(base, bytes(8)) is not None:
            # An instance attribute, so the common path pays nothing for the interface column.
            self.format = self._format_with_interface  # type: ignore[method-assign]
        self._sec: int | None = None
        self._clock = ""
        self._addr: dict[bytes, str] = {}
        self._depth = 0
        self._endpoints: dict[bytes, str] = {}

    def clock(self, ts_ns: int) -> str:
        """``HH:MM:SS.ffffff`` in local time (microseconds, like tcpdump); the ``HH:MM:SS`` part is
        computed once per second. A timestamp the C library cannot convert prints ``??:??:??``."""
        sec = ts_ns // 1_000_000_000
        if sec != self._sec:
            self._set_second(sec)
        return f"{self._clock}.{ts_ns // 1000 % 1_000_000:06d}"

    def _set_second(self, sec: int) -> None:
        try:
            self._clock = time.strftime("%H:%M:%S", time.localtime(sec))
        except (OverflowError, OSError, ValueError):
            self._clock = "??:??:??"
        self._sec = sec

    def format(self, ts_ns: int, data: bytes, wire_len: int, direction: int) -> str:
        """Format one frame.

        Args:
            ts_ns: capture time in nanoseconds since the epoch.
            data: the captured bytes.
            wire_len: the frame's length on the wire (printed in ``??? len=N``).
            direction: a Direction; other values print as unknown. For Linux cooked link types an
                unknown direction is taken from the cooked header's packet type.

        Returns:
            The line without a newline; in ASCII mode followed by ``\\n``-separated payload lines.
        """
        # The clock is inlined: this is the per-packet hot path.
        sec = ts_ns // 1_000_000_000
        if sec != self._sec:
            self._set_second(sec)
        stamp = f"{self._clock}.{ts_ns // 1000 % 1_000_000:06d}"
        if direction not in _DIRECTIONS:
            direction = 0
        if self._cooked and not direction:
            direction = link_direction(self.linktype, data)
        try:
            ethertype, off = self._decode(data)
            if ethertype == ETHERTYPE_IP:
                return f"{stamp} {self._ipv4(data, off, wire_len, direction)}"
            if ethertype == ETHERTYPE_IPV6:
                return f"{stamp} {self._ipv6(data, off, wire_len, direction)}"
            if ethertype < 0:
                return f"{stamp} {self._not_network(ethertype, data, wire_len, direction)}"
            name, text = link_text(data, ethertype, off, max(wire_len, len(data)) - off)
            return f"{stamp} {tag(direction, name)} {text}"
        except _DECODE_ERRORS:
            return f"{stamp} {_TAG_BAD[direction]} ??? len={wire_len}"

    def _not_network(self, ethertype: int, data: bytes, wire_len: int, direction: int) -> str:
        """The tag and text of a frame the link decoder found no network layer in."""
        if ethertype == LINK_MESSAGE:
            name, text = self._message(data, wire_len, self.verbose)
            return f"{tag(direction, name)} {text}"
        if not self._known:
            return f"{_TAG_LINK[direction]} {unknown_link_text(self.linktype, wire_len)}"
        if ethertype == LINK_TRUNCATED:
            return f"{_TAG_BAD[direction]} {self._marker} len={wire_len}"
        return f"{_TAG_BAD[direction]} ??? len={wire_len}"

    def _format_with_interface(self, ts_ns: int, data: bytes, wire_len: int, direction: int) -> str:
        """``format`` with the interface name after the time stamp (always 15 characters)."""
        line = TextFormatter.format(self, ts_ns, data, wire_len, direction)
        index = link_ifindex(self.linktype, data)
        names = self.interfaces or {}
        name = "?" if index is None else names.get(index) or f"if{index}"
        return f"{line[:15]} {name}{line[15:]}"

    def _v4(self, raw: bytes) -> str:
        """The text of an IPv4 address not yet in the cache (and cache it)."""
        if len(self._addr) >= _ADDR_CACHE_MAX:
            self._addr.clear()
        text = self._addr[raw] = inet_ntoa(raw)
        return text

    def _endpoints4(self, key: bytes) -> str:
        """The ``a:p > b:q`` text of IPv4 addresses and ports not yet in the cache (and cache
        it); ``key`` is the 12 bytes from the source address to the destination port."""
        if len(self._endpoints) >= _ADDR_CACHE_MAX:
            self._endpoints.clear()
        text = self._endpoints[key] = (
            f"{inet_ntoa(key[:4])}:{key[8] << 8 | key[9]} > "
            f"{inet_ntoa(key[4:8])}:{key[10] << 8 | key[11]}"
        )
        return text

    def _ipv4(self, data: bytes, off: int, wire_len: int, direction: int) -> str:
        n = len(data)
        if n < off + 20 or data[off] >> 4 != 4:
            if n <= off or data[off] >> 4 == 4:
                return f"{_TAG_IP[direction]} [|ip] len={wire_len}"
            return f"{_TAG_IP[direction]} ??? len={wire_len}"
        ihl = (data[off] & 15) * 4
        total = data[off + 2] << 8 | data[off + 3]
        if total == 0:  # TCP segmentation offload: the stack leaves the length to the NIC
            total = max(wire_len, n) - off
        if ihl < 20 or total < ihl:
            return f"{_TAG_IP[direction]} ??? len={wire_len}"
        proto = data[off + 9]
        frag = (data[off + 6] << 8 | data[off + 7]) & 0x1FFF
        if (proto in (IPPROTO_TCP, IPPROTO_UDP)) and ihl == 20 and not frag and n >= off + 24:
            # Addresses and ports sit together: one slice keys the whole endpoint text.
            key = data[off + 12 : off + 24]
            endpoints = self._endpoints.get(key) or self._endpoints4(key)
            suffix = ""
            if self.verbose:
                suffix = f", ttl {data[off + 8]}, id {_U16(data, off + 4)[0]}, iplen {total}"
            end = off + total
            ip = (off, proto, off + 20, end if end < n else n, total - 20)
            return self._ports(data, ip, endpoints, wire_len, direction, suffix)
        cached = self._addr.get
        raw = data[off + 12 : off + 16]
        src = cached(raw) or self._v4(raw)
        raw = data[off + 16 : off + 20]
        dst = cached(raw) or self._v4(raw)
        plen = total - ihl
        suffix = ""
        if self.verbose:
            suffix = f", ttl {data[off + 8]}, id {_U16(data, off + 4)[0]}, iplen {total}"
        if n < off + ihl:  # the options are cut
            return f"{_proto_tag(proto, direction)} {src} > {dst} [|ip]"
        if frag:
            return (
                f"{_proto_tag(proto, direction)} {src} > {dst} frag id "
                f"{_U16(data, off + 4)[0]}, offset {frag * 8}, length {plen}{suffix}"
            )
        ip = (off, proto, off + ihl, min(n, off + total), plen)
        return self._transport(data, ip, (src, dst, src, dst), wire_len, direction, suffix)

    def _ipv6(self, data: bytes, off: int, wire_len: int, direction: int) -> str:
        n = len(data)
        if n < off + 40 or data[off] >> 4 != 6:
            if n <= off or data[off] >> 4 == 6:
                return f"{_TAG_IP6[direction]} [|ip6] len={wire_len}"
            return f"{_TAG_IP6[direction]} ??? len={wire_len}"
        total = (data[off + 4] << 8 | data[off + 5]) + 40
        if total == 40 and max(wire_len, n) > off + 40:  # jumbogram or offloaded segment
            total = max(wire_len, n) - off
        proto, l4, fragment = ipv6_transport(data, off)
        plen = total - (l4 - off)
        if plen < 0:
            return f"{_TAG_IP6[direction]} ??? len={wire_len}"
        src = inet_ntop(AF_INET6, data[off + 8 : off + 24])
        dst = inet_ntop(AF_INET6, data[off + 24 : off + 40])
        suffix = f", ttl {data[off + 7]}, iplen {total}" if self.verbose else ""
        if proto in _IPV6_CHAIN and fragment != 2:  # the extension chain runs past the capture
            return f"{_TAG_IP6[direction]} {src} > {dst} [|ip6]"
        if fragment == 2:
            frag = ipv6_fragment(data, off)
            ident, offset = (frag[0], frag[1]) if frag is not None else (0, 0)
            return (
                f"{_proto_tag(proto, direction)} {src} > {dst} frag id {ident}, "
                f"offset {offset}, length {plen}{suffix}"
            )
        ip = (off, proto, l4, min(n, off + total), plen)
        addrs = (src, dst, f"[{src}]", f"[{dst}]")
        return self._transport(data, ip, addrs, wire_len, direction, suffix)

    def _transport(
        self,
        data: bytes,
        ip: _Ip,
        addrs: tuple[str, str, str, str],
        wire_len: int,
        direction: int,
        suffix: str,
    ) -> str:
        """The tag and everything after it, once the IP layer is known.

        ``ip`` is the IP layer (``_Ip``); ``addrs`` the address texts ``src``, ``dst`` and the
        same as they print before a port (bracketed for IPv6); ``suffix`` what ``-v`` adds.
        """
        _, proto, l4, end, plen = ip
        src, dst, psrc, pdst = addrs
        if proto in (IPPROTO_TCP, IPPROTO_UDP):
            if l4 + 4 > end:
                return self._cut_transport(ip, wire_len, direction, f"{src} > {dst}")
            sport, dport = _PORTS(data, l4)
            endpoints = f"{psrc}:{sport} > {pdst}:{dport}"
            return self._ports(data, ip, endpoints, wire_len, direction, suffix)
        if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            tags = _TAG_ICMP if proto == IPPROTO_ICMP else _TAG_ICMP6
            if l4 + 4 > end:
                if l4 + min(plen, 4) > end:
                    return f"{tags[direction]} {src} > {dst} [|icmp]"
                return f"{tags[direction]} ??? len={wire_len}"
            text = icmp_text(data, l4, end) if proto == IPPROTO_ICMP else icmp6_text(data, l4, end)
            line = f"{tags[direction]} {src} > {dst} {text}, length {plen}{suffix}"
            if self.ascii:
                line += ascii_lines(data, l4 + 8, end)
            return line
        app = IP_PROTOCOLS.get(proto)
        found = app(data, l4, end, plen, self._inner) if app is not None else None
        if found is not None:
            line = f"{tag(direction, found[0])} {src} > {dst} {found[1]}{suffix}"
        else:
            line = f"{_proto_tag(proto, direction)} {src} > {dst} length {plen}{suffix}"
        if self.ascii:
            line += ascii_lines(data, l4, end)
        return line

    def _cut_transport(self, ip: _Ip, wire_len: int, direction: int, endpoints: str) -> str:
        """The line of a TCP or UDP packet whose header is not all there: ``[|tcp]`` when the
        capture ends inside it, ``???`` when the IP header says the segment is shorter."""
        _, proto, l4, end, plen = ip
        need = 20 if proto == IPPROTO_TCP else 8
        name = "tcp" if proto == IPPROTO_TCP else "udp"
        if plen < need and l4 + plen <= end:
            return f"{_proto_tag(proto, direction)} ??? len={wire_len}"
        return f"{_proto_tag(proto, direction)} {endpoints} [|{name}]"

    def _inner(self, kind: int, data: bytes, pos: int, end: int, length: int) -> str:
        """The text of a packet inside a tunnel: its tag name, then its line's endpoints and
        details (``TCP 10.0.0.1:80 > 10.0.0.2:5000 [S] length 0``)."""
        if self._depth >= _MAX_DEPTH:
            return f"length {end - pos}"
        inner = data[pos:end]
        self._depth += 1
        try:
            if kind == INNER_ETHER:
                ethertype, off = decode_ethernet(inner)
            else:
                ethertype, off = kind, 0
            wire = max(length, len(inner))
            if ethertype == ETHERTYPE_IP:
                line = self._ipv4(inner, off, wire, 0)
            elif ethertype == ETHERTYPE_IPV6:
                line = self._ipv6(inner, off, wire, 0)
            elif ethertype == LINK_TRUNCATED:
                line = f"{_TAG_BAD[0]} [|ether]"
            elif ethertype < 0:
                line = f"{_TAG_BAD[0]} ??? len={len(inner)}"
            else:
                name, text = link_text(inner, ethertype, off, wire - off)
                line = f"{tag(0, name)} {text}"
        finally:
            self._depth -= 1
        close = line.index("]")
        name, rest = line[5:close].strip(), line[close + 2 :]
        return rest if rest.startswith(name) else f"{name} {rest}"

    def _ports(
        self, data: bytes, ip: _Ip, endpoints: str, wire_len: int, direction: int, suffix: str
    ) -> str:
        """The line of a TCP or UDP packet, given its endpoint text (``a:p > b:q``).

        Arguments as for ``_transport``; ``endpoints`` replaces the address texts; the protocol
        is TCP or, for anything else, UDP.
        """
        _, proto, l4, end, plen = ip
        if proto == IPPROTO_TCP:
            if l4 + 20 > end:
                return self._cut_transport(ip, wire_len, direction, endpoints)
            thl = (data[l4 + 12] >> 4) * 4
            paylen = plen - thl
            if thl < 20 or paylen < 0:
                return f"{_TAG_TCP[direction]} ??? len={wire_len}"
            sport, dport = _PORTS(data, l4)
            bits = data[l4 + 13]
            pos = l4 + thl
            line = f"{_TAG_TCP[direction]} {endpoints} [{TCP_FLAGS[bits]}]"
            if self.verbose:
                line += self._tcp_verbose(data, ip, thl, bits, paylen)
                line += f", length {paylen}{suffix}"
            else:
                line += f" length {paylen}"
            if pos < end:
                note = None
                if data[pos] in ANNOTATED_FIRST_BYTES:
                    note = annotate_tcp(data, pos, end, end < l4 + plen)
                if note is None and (sport == 53 or dport == 53) and pos + 2 < end:
                    note = dns_summary(data, pos + 2, end, _U16(data, pos)[0])
                elif note is None and (sport == PORT_BGP or dport == PORT_BGP):
                    note = TCP_PORTS[PORT_BGP](data, pos, end, paylen, self._inner)
                if note is not None:
                    line += ": " + note
                if self.ascii:
                    line += ascii_lines(data, pos, end)
            return line
        if l4 + 8 > end:
            return self._cut_transport(ip, wire_len, direction, endpoints)
        sport, dport = _PORTS(data, l4)
        ulen = data[l4 + 4] << 8 | data[l4 + 5]
        if not 8 <= ulen <= plen:
            ulen = plen
        pos = l4 + 8
        stop = min(end, l4 + ulen)
        line = f"{_TAG_UDP[direction]} {endpoints} "
        note = None
        app = _UDP_PORTS.get(dport) or _UDP_PORTS.get(sport)
        if app is not None:
            note = app(data, pos, stop, ulen - 8, self._inner)
            if note is None and stop < l4 + ulen and pos >= stop:
                note = f"length {ulen - 8} [|udp]"  # the payload is not captured at all
        line += (note if note is not None else f"length {ulen - 8}") + suffix
        if self.ascii:
            line += ascii_lines(data, pos, stop)
        return line

    def _tcp_verbose(self, data: bytes, ip: _Ip, thl: int, bits: int, paylen: int) -> str:
        """`` seq A:B, ack C, win W, options [...]`` with numbers relative to the connection."""
        off, _, l4, end, _ = ip
        sport, dport = _PORTS(data, l4)
        seq, ack = _TCP_SEQ_ACK(data, l4 + 4)
        win = _U16(data, l4 + 14)[0]
        if data[off] >> 4 == 4:
            src, dst = data[off + 12 : off + 16], data[off + 16 : off + 20]
        else:
            src, dst = data[off + 8 : off + 24], data[off + 24 : off + 40]
        rel_seq, rel_ack = self.flows.relative(src, sport, dst, dport, seq, ack, bool(bits & 16))
        text = f" seq {rel_seq}:{(rel_seq + paylen) & 0xFFFFFFFF}" if paylen else f" seq {rel_seq}"
        if bits & 16:
            text += f", ack {rel_ack}"
        text += f", win {win}"
        if thl > 20:
            base = self.flows.base(dst, dport, src, sport)
            text += f", options [{tcp_options(data, l4 + 20, min(end, l4 + thl), base)}]"
        return text


def _proto_tag(proto: int, direction: int) -> str:
    if proto == IPPROTO_TCP:
        return _TAG_TCP[direction]
    if proto == IPPROTO_UDP:
        return _TAG_UDP[direction]
    if proto == IPPROTO_ICMP:
        return _TAG_ICMP[direction]
    if proto == IPPROTO_ICMPV6:
        return _TAG_ICMP6[direction]
    return tag(direction, f"P{proto}")
