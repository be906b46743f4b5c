"""One JSON object per packet (``-T json``), for jq, log pipelines and databases.

Pure module (no IO). The rule it keeps: every frame gives one line of valid JSON, never an
exception; a layer that cannot be read is left out (and ``truncated`` says where reading
stopped). Field names are stable (docs/text.md lists them): adding a field is compatible,
renaming or retyping one is not.

::

    {"ts": "2026-12-02T12:30:45.123456789Z", "ts_ns": 1764678645123456789, "interface": null,
     "ifindex": null, "direction": "unknown", "linktype": "ETHERNET", "caplen": 74, "len": 74,
     "layers": {"eth": {...}, "ip": {...}, "tcp": {...}},
     "summary": "IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1, win 64240, length 0"}
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from socket import AF_INET6, inet_ntoa, inet_ntop
from typing import Any

from .._packet import LinkType
from ..decode._const import (
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    VLAN_TPIDS,
)
from ..decode._dns import DNS_PORTS, QTYPES, RCODES, DnsError, read_name
from ..decode._link import IPV6_EXTENSIONS, ipv6_transport, link_decoder, link_ifindex
from ._tcpdump import TcpdumpFormatter

__all__ = ["DIRECTIONS", "JsonFormatter"]

#: Direction values as the ``direction`` field names them.
DIRECTIONS = ("unknown", "in", "out")
_TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
_ERRORS = (IndexError, struct.error, ValueError, UnicodeError, KeyError, OverflowError)
_VLANS = frozenset(VLAN_TPIDS)
_MAX_ANSWERS = 32


def _stamp(ts_ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds (``2026-12-02T12:30:45.123456789Z``)."""
    import time

    sec, ns = divmod(ts_ns, 1_000_000_000)
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ns:09d}Z"
    except (OverflowError, OSError, ValueError):
        return ""


class JsonFormatter:
    """Formats frames of one link type as JSON lines.

    Args:
        linktype: the frames' link type.
        interfaces: interface index -> name, for the ``interface`` field of link types that
            carry the interface (Linux cooked v2); None leaves it null.
    """

    def __init__(self, linktype: int, *, interfaces: Mapping[int, str] | None = None) -> None:
        self.linktype = linktype & 0x03FFFFFF
        self.interfaces = interfaces
        self._name = LinkType(self.linktype).name
        self._decode = link_decoder(self.linktype)
        self._summary = TcpdumpFormatter(self.linktype, stamp=1, interfaces=interfaces)

    def format(self, ts_ns: int, data: bytes, wire_len: int, direction: int = 0) -> str:
        """The JSON object of one frame, on one line."""
        ifindex = link_ifindex(self.linktype, data)
        record: dict[str, Any] = {
            "ts": _stamp(ts_ns),
            "ts_ns": ts_ns,
            "interface": (self.interfaces or {}).get(ifindex) if ifindex is not None else None,
            "ifindex": ifindex,
            "direction": DIRECTIONS[direction] if direction in (0, 1, 2) else "unknown",
            "linktype": self._name,
            "caplen": len(data),
            "len": wire_len,
        }
        layers: dict[str, Any] = {}
        try:
            # Where the IP header gives no length, the datagram ends where the frame does: on
            # the wire, or where the capture ends if a record claims less than it holds.
            self._layers(data, max(wire_len, len(data)), layers)
        except _ERRORS:
            layers["truncated"] = True
        record["layers"] = layers
        record["summary"] = self._summary.format(ts_ns, data, wire_len, direction)
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)

    def _layers(self, data: bytes, wire_len: int, layers: dict[str, Any]) -> None:
        ethertype, off = self._decode(data)
        if self.linktype == 1 and len(data) >= 14:
            eth: dict[str, Any] = {
                "src": data[6:12].hex(":"),
                "dst": data[0:6].hex(":"),
                "type": ethertype if ethertype >= 0 else data[12] << 8 | data[13],
            }
            vlans, pos = [], 12
            while pos + 4 <= len(data) and (data[pos] << 8 | data[pos + 1]) in _VLANS:
                vlans.append((data[pos + 2] << 8 | data[pos + 3]) & 0xFFF)
                pos += 4
            if vlans:
                eth["vlan"] = vlans
            layers["eth"] = eth
        if ethertype == ETHERTYPE_IP:
            self._ipv4(data, off, wire_len, layers)
        elif ethertype == ETHERTYPE_IPV6:
            self._ipv6(data, off, wire_len, layers)
        elif ethertype == ETHERTYPE_ARP:
            if len(data) < off + 28:
                layers["truncated"] = True
                return
            op = data[off + 6] << 8 | data[off + 7]
            layers["arp"] = {
                "op": {1: "request", 2: "reply"}.get(op, str(op)),
                "sha": data[off + 8 : off + 14].hex(":"),
                "spa": inet_ntoa(data[off + 14 : off + 18]),
                "tha": data[off + 18 : off + 24].hex(":"),
                "tpa": inet_ntoa(data[off + 24 : off + 28]),
            }
        elif ethertype < 0:
            layers["truncated"] = ethertype == -3

    def _ipv4(self, data: bytes, off: int, wire_len: int, layers: dict[str, Any]) -> None:
        if len(data) < off + 20:
            layers["truncated"] = True
            return
        ihl = (data[off] & 15) * 4
        total = data[off + 2] << 8 | data[off + 3]
        frag = data[off + 6] << 8 | data[off + 7]
        proto = data[off + 9]
        layers["ip"] = {
            "version": 4,
            "src": inet_ntoa(data[off + 12 : off + 16]),
            "dst": inet_ntoa(data[off + 16 : off + 20]),
            "proto": proto,
            "ttl": data[off + 8],
            "id": data[off + 4] << 8 | data[off + 5],
            "tos": data[off + 1],
            "len": total,
            "df": bool(frag & 0x4000),
            "mf": bool(frag & 0x2000),
            "frag_offset": (frag & 0x1FFF) * 8,
        }
        if frag & 0x1FFF or ihl < 20:
            return
        if total >= ihl:
            end, length = min(len(data), off + total), total - ihl
        else:  # no total length (a segment offloaded to the NIC): the datagram is the frame's
            end, length = len(data), wire_len - off - ihl
        self._transport(data, proto, off + ihl, end, length, layers)

    def _ipv6(self, data: bytes, off: int, wire_len: int, layers: dict[str, Any]) -> None:
        if len(data) < off + 40:
            layers["truncated"] = True
            return
        plen = data[off + 4] << 8 | data[off + 5]
        proto, l4, fragment = ipv6_transport(data, off)
        layers["ip"] = {
            "version": 6,
            "src": inet_ntop(AF_INET6, data[off + 8 : off + 24]),
            "dst": inet_ntop(AF_INET6, data[off + 24 : off + 40]),
            "proto": proto,
            "ttl": data[off + 7],
            "len": plen + 40,
            "flowlabel": int.from_bytes(data[off + 1 : off + 4], "big") & 0xFFFFF,
            "fragment": fragment != 0,
        }
        if fragment == 2:
            return
        if proto in IPV6_EXTENSIONS:  # the extension chain is cut: no transport to read
            layers["truncated"] = True
            return
        if plen:
            end, length = min(len(data), off + 40 + plen), off + 40 + plen - l4
        else:  # a jumbogram (RFC 2675) or an offloaded segment: the datagram is the frame's
            end, length = len(data), wire_len - l4
        self._transport(data, proto, l4, end, length, layers)

    def _transport(
        self, data: bytes, proto: int, l4: int, end: int, length: int, layers: dict[str, Any]
    ) -> None:
        if proto == IPPROTO_TCP:
            if l4 + 20 > end:
                layers["truncated"] = True
                return
            thl = (data[l4 + 12] >> 4) * 4
            bits = data[l4 + 13]
            layers["tcp"] = {
                "sport": data[l4] << 8 | data[l4 + 1],
                "dport": data[l4 + 2] << 8 | data[l4 + 3],
                "seq": int.from_bytes(data[l4 + 4 : l4 + 8], "big"),
                "ack": int.from_bytes(data[l4 + 8 : l4 + 12], "big"),
                "flags": [n for i, n in enumerate(_TCP_FLAG_NAMES) if bits >> i & 1],
                "win": data[l4 + 14] << 8 | data[l4 + 15],
                "hlen": thl,
                "payload_len": max(0, length - thl),
            }
            pos = l4 + thl
            tcp = layers["tcp"]
            cut = end < l4 + length  # the capture ends inside the payload
            web = 80 in (tcp["sport"], tcp["dport"], 8080)
            if web and cut and pos >= end:  # the request or status line is not captured
                layers["truncated"] = True
            if pos < end and web:
                payload = data[pos:end]
                line = payload.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
                if line[:5] == b"HTTP/" or line.split(b" ", 1)[0].isalpha():
                    layers["http"] = {"line": line.decode("latin-1")}
                    if cut and len(line) == len(payload):  # the line itself is cut
                        layers["truncated"] = True
            if 53 in (tcp["sport"], tcp["dport"]) and pos < end:
                if pos + 14 <= end:
                    self._dns(data, pos + 2, end, layers, cut)
                elif cut:
                    layers["truncated"] = True
        elif proto == IPPROTO_UDP:
            if l4 + 8 > end:
                layers["truncated"] = True
                return
            sport, dport = data[l4] << 8 | data[l4 + 1], data[l4 + 2] << 8 | data[l4 + 3]
            layers["udp"] = {
                "sport": sport,
                "dport": dport,
                "len": data[l4 + 4] << 8 | data[l4 + 5],
            }
            if sport in DNS_PORTS or dport in DNS_PORTS:
                self._dns(data, l4 + 8, end, layers, end < l4 + length)
        elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            if l4 + 4 > end:
                layers["truncated"] = True
                return
            icmp: dict[str, Any] = {"type": data[l4], "code": data[l4 + 1]}
            echo = (0, 8) if proto == IPPROTO_ICMP else (128, 129)
            if data[l4] in echo:
                if l4 + 8 <= end:
                    icmp["id"] = data[l4 + 4] << 8 | data[l4 + 5]
                    icmp["seq"] = data[l4 + 6] << 8 | data[l4 + 7]
                elif end < l4 + length:
                    layers["truncated"] = True
            layers["icmp" if proto == IPPROTO_ICMP else "icmp6"] = icmp

    def _dns(
        self, data: bytes, start: int, end: int, layers: dict[str, Any], cut: bool = False
    ) -> None:
        """The DNS layer of the message from ``start`` to ``end``; ``cut`` says the capture ends
        inside it (a message too short for its header is then ``truncated``, not skipped)."""
        if end - start < 12:
            if cut:
                layers["truncated"] = True
            return
        ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data, start)
        dns: dict[str, Any] = {
            "id": ident,
            "response": bool(flags & 0x8000),
            "opcode": flags >> 11 & 15,
            "rcode": RCODES.get(flags & 15, "NoError" if not flags & 15 else str(flags & 15)),
            "flags": flags,
            "counts": [qd, an, ns, ar],
        }
        layers["dns"] = dns
        try:
            pos = start + 12
            questions: list[dict[str, Any]] = []
            dns["questions"] = questions  # filled in place: a cut keeps what was read whole
            for _ in range(min(qd, _MAX_ANSWERS)):
                name, pos = read_name(data, pos, start, end)
                qtype = data[pos] << 8 | data[pos + 1]
                questions.append({"name": name, "type": QTYPES.get(qtype, f"TYPE{qtype}")})
                pos += 4
            answers: list[dict[str, Any]] = []
            dns["answers"] = answers
            for _ in range(min(an, _MAX_ANSWERS)):
                name, pos = read_name(data, pos, start, end)
                rtype, _cls, ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
                pos += 10
                if pos + rdlen > min(end, len(data)):
                    raise DnsError("record data cut short")
                answer: dict[str, Any] = {
                    "name": name,
                    "type": QTYPES.get(rtype, f"TYPE{rtype}"),
                    "ttl": ttl,
                }
                if rtype == 1 and rdlen == 4:
                    answer["data"] = inet_ntoa(data[pos : pos + 4])
                elif rtype == 28 and rdlen == 16:
                    answer["data"] = inet_ntop(AF_INET6, data[pos : pos + 16])
                elif rtype in (2, 5, 12):
                    answer["data"] = read_name(data, pos, start, end)[0]
                answers.append(answer)
                pos += rdlen
        except (DnsError, *_ERRORS):  # a malformed message: what was read is kept
            dns["truncated"] = True
