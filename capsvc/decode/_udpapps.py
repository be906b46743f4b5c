"""UDP applications the text log summarises by port: DHCP/BOOTP, DHCPv6 and NTP.

Pure module (no IO); nothing here raises. DHCP is read with dpkt's parser (the fixed BOOTP
header, the magic cookie and the option list), NTP and DHCPv6 by hand: their headers are a few
fixed fields, and NTP is frequent enough that one ``struct`` call beats a dpkt object.
A reader returns a NamedTuple of fields, or None when the message is cut before its fixed part
(the caller prints the ``[|proto]`` marker).
"""

from __future__ import annotations

import struct
from socket import inet_ntoa
from typing import NamedTuple

from ._dpkt import DPKT_PARSE_ERRORS

__all__ = [
    "DHCP6_TYPES",
    "DHCP_TYPES",
    "NTP_MODES",
    "Dhcp",
    "Dhcp6",
    "Ntp",
    "dhcp",
    "dhcp6",
    "ntp",
]

DHCP_TYPES = {
    1: "Discover",
    2: "Offer",
    3: "Request",
    4: "Decline",
    5: "ACK",
    6: "NACK",
    7: "Release",
    8: "Inform",
    9: "Force Renew",
    10: "Lease Query",
    11: "Lease Unassigned",
    12: "Lease Unknown",
    13: "Lease Active",
}
DHCP6_TYPES = {
    1: "Solicit",
    2: "Advertise",
    3: "Request",
    4: "Confirm",
    5: "Renew",
    6: "Rebind",
    7: "Reply",
    8: "Release",
    9: "Decline",
    10: "Reconfigure",
    11: "Information-Request",
    12: "Relay-Forward",
    13: "Relay-Reply",
    14: "Leasequery",
    15: "Leasequery-Reply",
}
NTP_MODES = ("reserved", "symmetric active", "symmetric passive", "client", "server",
             "broadcast", "control", "private")  # fmt: skip
_BOOTP_FIXED = 236
_OPT_HOSTNAME, _OPT_REQUESTED, _OPT_TYPE, _OPT_SERVER = 12, 50, 53, 54
_NTP = struct.Struct("!BBbbIII")


class Dhcp(NamedTuple):
    """A DHCP/BOOTP message. ``op`` 1 request, 2 reply; ``msg_type`` the DHCP message type
    (None for plain BOOTP); addresses as dotted quads (``yiaddr`` the one offered);
    ``client`` the client hardware address as ``aa:bb:..``. ``truncated``: the options are
    cut short by the capture (the fixed fields are all there)."""

    op: int
    xid: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    client: str
    msg_type: int | None
    requested: str | None
    server: str | None
    hostname: str | None
    truncated: bool


class Dhcp6(NamedTuple):
    """A DHCPv6 message: its type and transaction ID (relay messages: hop count instead, and
    ``xid`` None)."""

    msg_type: int
    xid: int | None
    hops: int | None


class Ntp(NamedTuple):
    """An NTP message's first fields. ``mode`` 1-7 (``NTP_MODES``); for modes 1-5 the
    ``stratum``, ``poll`` and ``precision`` (log2 seconds) and ``refid`` (a dotted quad, or the
    four ASCII letters of a stratum-1 source); for control (6) and private (7) messages
    ``opcode`` instead."""

    leap: int
    version: int
    mode: int
    stratum: int | None
    poll: int | None
    precision: int | None
    refid: str | None
    opcode: int | None


def _addr(value: int) -> str:
    return inet_ntoa(struct.pack("!I", value & 0xFFFFFFFF))


def dhcp(data: bytes, pos: int, end: int) -> Dhcp | None:
    """Read the DHCP/BOOTP message in ``data[pos:end]``; None when its fixed 236 bytes are not
    all there."""
    if end - pos < _BOOTP_FIXED:
        return None
    import dpkt.dhcp  # imported on first use: DHCP is rare and dpkt is slow to import

    raw = bytes(data[pos:end])
    truncated = False
    try:
        msg = dpkt.dhcp.DHCP(raw)
        options = dict(msg.opts)
    except (dpkt.Error, *DPKT_PARSE_ERRORS):
        # The options are cut (or malformed): keep the fixed part, which dpkt read first.
        options, truncated = {}, True
        try:
            msg = dpkt.dhcp.DHCP(raw[:_BOOTP_FIXED] + b"\x63\x82\x53\x63\xff")
        except (dpkt.Error, *DPKT_PARSE_ERRORS):
            return None
    hln = min(int(msg.hln), 16)
    kind = options.get(_OPT_TYPE)
    requested = options.get(_OPT_REQUESTED)
    server = options.get(_OPT_SERVER)
    name = options.get(_OPT_HOSTNAME)
    return Dhcp(
        op=int(msg.op),
        xid=int(msg.xid),
        ciaddr=_addr(msg.ciaddr),
        yiaddr=_addr(msg.yiaddr),
        siaddr=_addr(msg.siaddr),
        giaddr=_addr(msg.giaddr),
        client=bytes(msg.chaddr)[:hln].hex(":"),
        msg_type=kind[0] if kind else None,
        requested=inet_ntoa(requested) if requested and len(requested) == 4 else None,
        server=inet_ntoa(server) if server and len(server) == 4 else None,
        hostname=name.decode("ascii", "replace") if name else None,
        truncated=truncated,
    )


def dhcp6(data: bytes, pos: int, end: int) -> Dhcp6 | None:
    """Read a DHCPv6 message's type and transaction ID (or a relay message's hop count)."""
    if end - pos < 4:
        return None
    kind = data[pos]
    if kind in (12, 13):
        return Dhcp6(kind, None, data[pos + 1])
    return Dhcp6(kind, data[pos + 1] << 16 | data[pos + 2] << 8 | data[pos + 3], None)


def ntp(data: bytes, pos: int, end: int) -> Ntp | None:
    """Read an NTP message's first 16 bytes (4 for control and private messages)."""
    if end - pos < 4:
        return None
    first = data[pos]
    leap, version, mode = first >> 6, first >> 3 & 7, first & 7
    if mode in (6, 7):
        return Ntp(leap, version, mode, None, None, None, None, data[pos + 1] & 0x1F)
    if end - pos < 16:
        return None
    _f, stratum, poll, precision, _delay, _disp, _ref = _NTP.unpack_from(data, pos)
    raw = data[pos + 12 : pos + 16]
    if stratum == 1 and all(32 <= b < 127 or b == 0 for b in raw):
        ref = raw.rstrip(b"\0").decode("ascii")
    else:
        ref = inet_ntoa(raw)
    return Ntp(leap, version, mode, stratum, poll, precision, ref, None)
