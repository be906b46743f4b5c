"""Text of the application and encapsulation protocols above IP that the default line decodes:
DNS, DHCP, DHCPv6, NTP, QUIC, VXLAN and Geneve (by UDP port), BGP (by TCP port), GRE, ESP, AH,
OSPF and IP-in-IP (by IP protocol).

Pure module. Each formatter takes ``(data, pos, end, length, inner)``: the message in
``data[pos:end]`` (``end`` the captured end), the length its transport header gives, and
``inner``, the callback that renders an encapsulated packet (``Inner``), and returns the text
that follows the endpoints, or None when the bytes are not that protocol (the caller then prints
the plain ``length N``). A message the capture cuts short ends with ``[|proto]``. Nothing here
raises; which formatter runs is one dict lookup by port or protocol, so other packets pay
nothing for these.
"""

from __future__ import annotations

from collections.abc import Callable

from ..decode._const import (
    IPPROTO_AH,
    IPPROTO_ESP,
    IPPROTO_GRE,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_OSPF,
    PORT_BGP,
    PORT_BOOTPC,
    PORT_BOOTPS,
    PORT_DHCP6_CLIENT,
    PORT_DHCP6_SERVER,
    PORT_GENEVE,
    PORT_HTTPS,
    PORT_NTP,
    PORT_VXLAN,
    PORT_VXLAN_LINUX,
)
from ..decode._dns import DNS_PORTS, dns_summary
from ..decode._quic import QUIC_VERSIONS, initial_sni, quic_header
from ..decode._routing import BGP_TYPES, OSPF_TYPES, BgpMessage, bgp_messages, ospf_header
from ..decode._tunnel import (
    INNER_ETHER,
    ah_header,
    esp_header,
    geneve_header,
    gre_header,
    vxlan_header,
)
from ..decode._udpapps import DHCP6_TYPES, DHCP_TYPES, NTP_MODES, dhcp, dhcp6, ntp

__all__ = ["IP_PROTOCOLS", "TCP_PORTS", "UDP_PORTS", "AppFormatter", "Inner", "IpFormatter"]

#: Renders an encapsulated packet: ``(kind, data, pos, end, length) -> text``; ``kind`` is
#: ``INNER_ETHER`` or an ethertype (IP, IPv6), ``length`` its length on the wire.
Inner = Callable[[int, bytes, int, int, int], str]
AppFormatter = Callable[[bytes, int, int, int, Inner], "str | None"]
IpFormatter = Callable[[bytes, int, int, int, Inner], "tuple[str, str] | None"]
_ETHERTYPE_IP, _ETHERTYPE_IPV6 = 0x0800, 0x86DD
_PROTO_NAMES = {_ETHERTYPE_IP: "IP", _ETHERTYPE_IPV6: "IPv6", 0x6558: "TEB", 0x8847: "MPLS",
                0x880B: "PPP", 0x88BE: "ERSPAN", 0x22EB: "ERSPAN"}  # fmt: skip
#: At most this many prefixes of an UPDATE are listed.
_MAX_PREFIXES = 3


def _mark(text: str, pos: int, end: int, length: int, proto: str) -> str:
    """``text`` with the ``[|proto]`` marker when the capture ends before the message does
    (what follows the fields read may be missing) and it has none yet."""
    if end - pos < length and "[|" not in text:
        return f"{text} [|{proto}]"
    return text


def _dns(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    text = dns_summary(data, pos, end, length)
    if text is None and end - pos < min(length, 12):  # the capture cut the header
        return f"[|domain] ({length})"
    return text


def _dhcp(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    msg = dhcp(data, pos, end)
    if msg is None:
        return f"BOOTP/DHCP, length {length} [|bootp]" if end - pos < length else None
    if msg.msg_type is None:
        text = "BOOTP " + ("Request" if msg.op == 1 else "Reply")
    else:
        text = "DHCP " + DHCP_TYPES.get(msg.msg_type, f"type {msg.msg_type}")
    text += f", xid 0x{msg.xid:08x}, client {msg.client}"
    if msg.yiaddr != "0.0.0.0":
        text += f", your {msg.yiaddr}"
    if msg.requested:
        text += f", requested {msg.requested}"
    if msg.server:
        text += f", server {msg.server}"
    if msg.hostname:
        text += f", hostname {msg.hostname!r}"
    return _mark(f"{text}, length {length}", pos, end, length, "bootp")


def _dhcp6(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    msg = dhcp6(data, pos, end)
    if msg is None:
        return f"DHCPv6, length {length} [|dhcp6]" if end - pos < length else None
    text = "DHCPv6 " + DHCP6_TYPES.get(msg.msg_type, f"type {msg.msg_type}")
    text += f", hops {msg.hops}" if msg.xid is None else f", xid 0x{msg.xid:06x}"
    return _mark(f"{text}, length {length}", pos, end, length, "dhcp6")


def _ntp(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    msg = ntp(data, pos, end)
    if msg is None:
        return f"NTP, length {length} [|ntp]" if end - pos < length else None
    text = f"NTPv{msg.version} {NTP_MODES[msg.mode]}"
    if msg.opcode is not None:
        text += f", opcode {msg.opcode}"
    else:
        text += f", stratum {msg.stratum}, poll {msg.poll}, precision {msg.precision}"
        if msg.stratum:
            text += f", ref {msg.refid}"
    return _mark(f"{text}, length {length}", pos, end, length, "ntp")


def _quic(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    header = quic_header(data, pos, end)
    if header is None:
        if pos < end and data[pos] & 0x80 and end - pos < min(length, 64):
            return f"QUIC, length {length} [|quic]"  # a long header the capture cut
        return None
    version = QUIC_VERSIONS[header.version][0] if header.version else ""
    text = f"QUIC {header.kind} {version}".rstrip() + f", dcid {header.dcid.hex() or '-'}"
    if header.kind == "Initial":
        sni = initial_sni(data, pos, end, header)
        if sni is not None:
            text += f", SNI {sni}"
        elif (
            header.pn_offset < 0 or header.pn_offset + header.length > end
        ) and end - pos < length:
            return f"{text}, length {length} [|quic]"
    return _mark(f"{text}, length {length}", pos, end, length, "quic")


def _vxlan(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    header = vxlan_header(data, pos, end)
    if header is None:
        return f"VXLAN, length {length} [|vxlan]" if end - pos < length else None
    rest = length - (header.inner - pos)
    return f"VXLAN vni {header.vni}: {inner(INNER_ETHER, data, header.inner, end, rest)}"


def _geneve(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    header = geneve_header(data, pos, end)
    if header is None:
        return f"Geneve, length {length} [|geneve]" if end - pos < length else None
    text = f"Geneve vni {header.vni}"
    if header.options_len:
        text += f", options {header.options_len}"
    if header.inner_type == -1:
        return f"{text}, proto 0x{header.protocol:04x}, length {length}"
    rest = length - (header.inner - pos)
    return f"{text}: {inner(header.inner_type, data, header.inner, end, rest)}"


#: UDP port -> formatter (the destination port is looked up first).
UDP_PORTS: dict[int, AppFormatter] = {
    **dict.fromkeys(DNS_PORTS, _dns),
    PORT_BOOTPS: _dhcp,
    PORT_BOOTPC: _dhcp,
    PORT_DHCP6_CLIENT: _dhcp6,
    PORT_DHCP6_SERVER: _dhcp6,
    PORT_NTP: _ntp,
    PORT_HTTPS: _quic,
    PORT_VXLAN: _vxlan,
    PORT_VXLAN_LINUX: _vxlan,
    PORT_GENEVE: _geneve,
}


def _bgp_text(msg: BgpMessage) -> str:
    text = BGP_TYPES.get(msg.type, f"type {msg.type}")
    if msg.truncated:
        return f"{text} [|bgp]"
    if msg.malformed:
        return f"{text} (malformed), length {msg.length}"
    if msg.asn is not None:
        text += f", AS {msg.asn}, hold {msg.hold}, id {msg.identifier}"
    elif msg.type == 2:
        for label, routes in (("announced", msg.announced), ("withdrawn", msg.withdrawn)):
            if routes:
                shown = ", ".join(routes[:_MAX_PREFIXES])
                more = ", ..." if len(routes) > _MAX_PREFIXES else ""
                text += f", {len(routes)} {label} ({shown}{more})"
        if not msg.announced and not msg.withdrawn:
            text += f", {len(msg.attributes)} attributes"
    elif msg.code is not None:
        text += f", code {msg.code}, subcode {msg.subcode}"
    return text


def _bgp(data: bytes, pos: int, end: int, length: int, inner: Inner) -> str | None:
    found = bgp_messages(data, pos, end)
    if found is None:
        if end - pos < min(length, 16) and data[pos:end] == b"\xff" * (end - pos):
            return "BGP [|bgp]"  # the capture cut the marker
        return None
    messages, cut = found
    text = "BGP " + "; ".join(_bgp_text(m) for m in messages)
    return text + " [|bgp]" if cut else _mark(text, pos, end, length, "bgp")


#: TCP port -> formatter, for payloads the first-byte annotations did not recognise.
TCP_PORTS: dict[int, AppFormatter] = {PORT_BGP: _bgp}


def _gre(data: bytes, pos: int, end: int, length: int, inner: Inner) -> tuple[str, str] | None:
    header = gre_header(data, pos, end)
    if header is None:
        return "GRE", f"GRE, length {length} [|gre]"
    if header.version == 1:
        text = "GREv1 (PPTP)"
        if header.key is not None:
            text += f", call {header.key & 0xFFFF}"
        return "GRE", f"{text}, length {length}"
    if header.erspan:
        text = "GRE ERSPAN " + ("I" * header.erspan if header.erspan < 3 else "III")
        if header.session is not None:
            text += f", session {header.session}"
    else:
        name = _PROTO_NAMES.get(header.protocol, f"0x{header.protocol:04x}")
        text = f"GRE, proto {name}"
        if header.key is not None:
            text += f", key 0x{header.key:x}"
    if header.inner_type == -1:
        return "GRE", f"{text}, length {length}"
    rest = length - (header.inner - pos)
    return "GRE", f"{text}: {inner(header.inner_type, data, header.inner, end, rest)}"


def _esp(data: bytes, pos: int, end: int, length: int, inner: Inner) -> tuple[str, str] | None:
    header = esp_header(data, pos, end)
    if header is None:
        return "ESP", f"ESP, length {length} [|esp]"
    return "ESP", _mark(f"ESP spi 0x{header.spi:08x}, seq {header.seq}, length {length}", pos,
                        end, length, "esp")  # fmt: skip


def _ah(data: bytes, pos: int, end: int, length: int, inner: Inner) -> tuple[str, str] | None:
    header = ah_header(data, pos, end)
    if header is None:
        return "AH", f"AH, length {length} [|ah]"
    return "AH", f"AH spi 0x{header.spi:08x}, seq {header.seq}, next {header.next_header}, " \
        f"length {length}"  # fmt: skip


def _ospf(data: bytes, pos: int, end: int, length: int, inner: Inner) -> tuple[str, str] | None:
    header = ospf_header(data, pos, end)
    if header is None:
        return "OSPF", f"OSPF, length {length} [|ospf]"
    kind = OSPF_TYPES.get(header.type, f"type {header.type}")
    text = f"OSPFv{header.version} {kind}, router {header.router}, area {header.area}"
    return "OSPF", _mark(f"{text}, length {length}", pos, end, length, "ospf")


def _ipip(data: bytes, pos: int, end: int, length: int, inner: Inner) -> tuple[str, str] | None:
    if pos >= end:
        return "IPIP", f"IPIP, length {length} [|ip]"
    kind = _ETHERTYPE_IPV6 if data[pos] >> 4 == 6 else _ETHERTYPE_IP
    return "IPIP", f"IPIP: {inner(kind, data, pos, end, length)}"


#: IP protocol -> formatter of the payload, giving the tag name too.
IP_PROTOCOLS: dict[int, IpFormatter] = {
    IPPROTO_GRE: _gre,
    IPPROTO_ESP: _esp,
    IPPROTO_AH: _ah,
    IPPROTO_OSPF: _ospf,
    IPPROTO_IPIP: _ipip,
    IPPROTO_IPV6: _ipip,
}
