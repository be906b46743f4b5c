"""IEEE 802.11 frames (LINKTYPE_IEEE802_11, and after radiotap in IEEE802_11_RADIO).

Pure module (no IO). ``dot11_header`` reads the MAC header (frame control, addresses, QoS and
HT control) into ``Dot11``; ``mgmt_body`` reads a management frame's fixed fields and the
elements the text shows (SSID, rates, DS channel, mesh ID); ``protected_header`` the WEP/TKIP/CCMP
header of a protected frame. The link decoders (``decode_ieee80211``, ``decode_radiotap``) follow
data frames through LLC/SNAP to the network layer and return ``LINK_MESSAGE`` for management and
control frames, null and protected data: their text comes from the fields. Nothing here raises.

Frame control, as on the air: byte 0 ``subtype(4) type(2) version(2)``, byte 1 the flags
``order protected more-data pwr-mgt retry more-frag from-ds to-ds`` (high bit first).
"""

from __future__ import annotations

from typing import NamedTuple

from ._const import LINK_MESSAGE
from ._ether import LINK_TRUNCATED, llc_snap
from ._radiotap import FLAG_DATAPAD, FLAG_FCS, radiotap_frame

__all__ = [
    "CONTROL_NAMES",
    "DATA_NAMES",
    "MGMT_NAMES",
    "TYPE_CONTROL",
    "TYPE_DATA",
    "TYPE_MGMT",
    "Dot11",
    "MgmtBody",
    "Protected",
    "decode_ieee80211",
    "decode_radiotap",
    "dot11_header",
    "mgmt_body",
    "protected_header",
]

TYPE_MGMT, TYPE_CONTROL, TYPE_DATA, TYPE_EXTENSION = 0, 1, 2, 3
FC_TO_DS = 0x01
FC_FROM_DS = 0x02
FC_MORE_FRAG = 0x04
FC_RETRY = 0x08
FC_PWR_MGT = 0x10
FC_MORE_DATA = 0x20
FC_PROTECTED = 0x40
FC_ORDER = 0x80

#: Management subtypes, as tcpdump names them.
MGMT_NAMES = {
    0: "Assoc Request",
    1: "Assoc Response",
    2: "ReAssoc Request",
    3: "ReAssoc Response",
    4: "Probe Request",
    5: "Probe Response",
    6: "Timing Advertisement",
    8: "Beacon",
    9: "ATIM",
    10: "Disassociation",
    11: "Authentication",
    12: "DeAuthentication",
    13: "Action",
    14: "Action No Ack",
}
CONTROL_NAMES = {
    2: "Trigger",
    3: "TACK",
    4: "Beamforming Report Poll",
    5: "VHT NDP Announcement",
    6: "Control Frame Extension",
    7: "Control Wrapper",
    8: "BAR",
    9: "BA",
    10: "Power Save-Poll",
    11: "Request-To-Send",
    12: "Clear-To-Send",
    13: "Acknowledgment",
    14: "CF-End",
    15: "CF-End+CF-Ack",
}
DATA_NAMES = {
    0: "Data",
    1: "Data+CF-Ack",
    2: "Data+CF-Poll",
    3: "Data+CF-Ack+CF-Poll",
    4: "Null(no data)",
    5: "CF-Ack(no data)",
    6: "CF-Poll(no data)",
    7: "CF-Ack+CF-Poll(no data)",
    8: "QoS Data",
    9: "QoS Data+CF-Ack",
    10: "QoS Data+CF-Poll",
    11: "QoS Data+CF-Ack+CF-Poll",
    12: "QoS Null(no data)",
    14: "QoS CF-Poll(no data)",
    15: "QoS CF-Ack+CF-Poll(no data)",
}
#: Control subtype -> the addresses it carries after frame control and duration (RA, TA).
_CONTROL_ADDRS = {
    2: 2, 4: 2, 5: 2, 7: 1, 8: 2, 9: 2, 10: 2, 11: 2, 12: 1, 13: 1, 14: 2, 15: 2
}  # fmt: skip
#: Element IDs read by ``mgmt_body``.
EID_SSID, EID_RATES, EID_DS_PARAMS, EID_MESH_ID = 0, 1, 3, 114
#: Element ID -> the longest it may be (longer ones end the reading as invalid).
_MAX_SIZES = {EID_SSID: 32, EID_RATES: 16, 5: 254, 16: 253, EID_MESH_ID: 32}
_CUT = (LINK_TRUNCATED, 0)
_MSG = (LINK_MESSAGE, 0)


class Dot11(NamedTuple):
    """An 802.11 MAC header. Addresses are 6-byte strings (None when the frame has no such
    address); ``qos`` is the QoS control field (None when absent); ``body`` is where the frame
    body starts and ``truncated`` True when the captured bytes end inside the header."""

    type: int
    subtype: int
    flags: int
    duration: int
    addr1: bytes | None
    addr2: bytes | None
    addr3: bytes | None
    addr4: bytes | None
    seq_ctrl: int | None
    qos: int | None
    body: int
    truncated: bool


class MgmtBody(NamedTuple):
    """A management frame's fixed fields and elements; absent ones are None. ``rates`` are in
    500 kb/s units with bit 7 marking a basic rate (the first Supported Rates element that is
    not empty, not the extended ones); ``channel`` is the first DS Parameter Set element of
    one byte. ``truncated`` is True when the captured bytes end inside the fixed fields or an
    element; ``invalid`` when an element is longer than it may be (SSID or mesh ID over 32
    bytes, Supported Rates over 16, TIM over 254, challenge text over 253: tcpdump's limits),
    where reading stopped."""

    timestamp: int | None
    interval: int | None
    capability: int | None
    listen_interval: int | None
    status: int | None
    aid: int | None
    reason: int | None
    auth_algorithm: int | None
    auth_seq: int | None
    current_ap: bytes | None
    ssid: bytes | None
    rates: tuple[int, ...]
    channel: int | None
    mesh_id: bytes | None
    truncated: bool
    invalid: bool = False


class Protected(NamedTuple):
    """The security header of a protected frame: the first three IV bytes (as a little-endian
    number), the pad bits and key ID of the fourth; ``ext_iv`` when eight bytes long (TKIP,
    CCMP, GCMP)."""

    iv: int
    pad: int
    key_id: int
    ext_iv: bool


def dot11_header(data: bytes, off: int = 0, end: int | None = None) -> Dot11:
    """Read the MAC header at ``off`` (``end`` is where the frame ends, FCS excluded)."""
    stop = len(data) if end is None else min(end, len(data))
    if stop < off + 2:
        return Dot11(-1, -1, 0, 0, None, None, None, None, None, None, off, True)
    fc0, flags = data[off], data[off + 1]
    kind, subtype = fc0 >> 2 & 3, fc0 >> 4
    duration = data[off + 2] | data[off + 3] << 8 if stop >= off + 4 else 0
    addrs: list[bytes | None] = [None, None, None, None]
    seq = qos = None
    if kind == TYPE_CONTROL:
        count = _CONTROL_ADDRS.get(subtype, 1)
        size = 4 + 6 * count
    else:
        count = 4 if kind == TYPE_DATA and flags & 3 == 3 else 3
        size = 24 + (6 if count == 4 else 0)
        if kind == TYPE_DATA and subtype & 8:
            size += 2
            if flags & FC_ORDER:
                size += 4
        elif kind == TYPE_MGMT and flags & FC_ORDER:
            size += 4
    truncated = stop < off + size
    for i in range(count):
        pos = off + 4 + 6 * i if i < 3 else off + 24
        if pos + 6 <= stop:
            addrs[i] = data[pos : pos + 6]
    if kind != TYPE_CONTROL:
        if off + 24 <= stop:
            seq = data[off + 22] | data[off + 23] << 8
        if kind == TYPE_DATA and subtype & 8:
            qpos = off + (30 if count == 4 else 24)
            if qpos + 2 <= stop:
                qos = data[qpos] | data[qpos + 1] << 8
    a1, a2, a3, a4 = addrs
    return Dot11(kind, subtype, flags, duration, a1, a2, a3, a4, seq, qos, off + size, truncated)


def _u16(data: bytes, pos: int) -> int:
    return data[pos] | data[pos + 1] << 8


#: Management subtype -> its fixed fields, in order, with their sizes.
_FIXED: dict[int, tuple[tuple[str, int], ...]] = {
    0: (("capability", 2), ("listen_interval", 2)),
    1: (("capability", 2), ("status", 2), ("aid", 2)),
    2: (("capability", 2), ("listen_interval", 2), ("current_ap", 6)),
    3: (("capability", 2), ("status", 2), ("aid", 2)),
    4: (),
    5: (("timestamp", 8), ("interval", 2), ("capability", 2)),
    8: (("timestamp", 8), ("interval", 2), ("capability", 2)),
    10: (("reason", 2),),
    11: (("auth_algorithm", 2), ("auth_seq", 2), ("status", 2)),
    12: (("reason", 2),),
}


def mgmt_body(data: bytes, subtype: int, pos: int, end: int) -> MgmtBody:
    """Read the body of a management frame of ``subtype`` in ``data[pos:end]``."""
    values: dict[str, object] = {}
    truncated = False
    for name, size in _FIXED.get(subtype, ()):
        if pos + size > end:
            truncated = True
            break
        if size == 2:
            values[name] = _u16(data, pos)
        elif size == 8:
            values[name] = int.from_bytes(data[pos : pos + 8], "little")
        else:
            values[name] = data[pos : pos + size]
        pos += size
    ssid = mesh_id = None
    channel = None
    rates: list[int] = []
    invalid = False
    # Each element moves on by at least two bytes, so the loop is bounded by the frame.
    if not truncated and subtype in _FIXED and subtype not in (10, 12):
        while pos < end:
            if pos + 2 > end:
                truncated = True
                break
            eid, size = data[pos], data[pos + 1]
            if pos + 2 + size > end:
                truncated = True
                break
            if size > _MAX_SIZES.get(eid, 255):
                invalid = True
                break
            value = data[pos + 2 : pos + 2 + size]
            if eid == EID_SSID and ssid is None:
                ssid = value
            elif eid == EID_RATES and not rates:
                rates.extend(value)
            elif eid == EID_DS_PARAMS and size == 1 and channel is None:
                channel = value[0]
            elif eid == EID_MESH_ID and mesh_id is None:
                mesh_id = value
            pos += 2 + size
    return MgmtBody(
        timestamp=values.get("timestamp"),  # type: ignore[arg-type]
        interval=values.get("interval"),  # type: ignore[arg-type]
        capability=values.get("capability"),  # type: ignore[arg-type]
        listen_interval=values.get("listen_interval"),  # type: ignore[arg-type]
        status=values.get("status"),  # type: ignore[arg-type]
        aid=values.get("aid"),  # type: ignore[arg-type]
        reason=values.get("reason"),  # type: ignore[arg-type]
        auth_algorithm=values.get("auth_algorithm"),  # type: ignore[arg-type]
        auth_seq=values.get("auth_seq"),  # type: ignore[arg-type]
        current_ap=values.get("current_ap"),  # type: ignore[arg-type]
        ssid=ssid,
        rates=tuple(rates),
        channel=channel,
        mesh_id=mesh_id,
        truncated=truncated,
        invalid=invalid,
    )


def protected_header(data: bytes, pos: int, end: int) -> Protected | None:
    """Read the WEP/TKIP/CCMP header at ``pos``; None when it is not all there."""
    if pos + 4 > end:
        return None
    key = data[pos + 3]
    return Protected(
        iv=data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16,
        pad=key & 0x3F,
        key_id=key >> 6,
        ext_iv=bool(key & 0x20),
    )


def _data_payload(data: bytes, off: int, end: int, datapad: bool) -> tuple[int, int]:
    """The network layer of the 802.11 frame at ``off`` (the link decoders' common part)."""
    n = min(len(data), end)
    if n < off + 2:
        return _CUT
    fc0, flags = data[off], data[off + 1]
    if fc0 >> 2 & 3 != TYPE_DATA:
        return _MSG
    subtype = fc0 >> 4
    if subtype & 4 or flags & FC_PROTECTED:  # no body, or encrypted
        return _MSG
    size = 30 if flags & 3 == 3 else 24
    if subtype & 8:
        size += 6 if flags & FC_ORDER else 2
    if datapad:
        size = (size + 3) & ~3
    pos = off + size
    if n < pos + 1:
        return _CUT
    return llc_snap(data, pos)


def decode_ieee80211(data: bytes) -> tuple[int, int]:
    """LINKTYPE_IEEE802_11: data frames through LLC/SNAP to the network layer; management and
    control frames, null and protected data are ``LINK_MESSAGE``."""
    return _data_payload(data, 0, len(data), False)


def decode_radiotap(data: bytes) -> tuple[int, int]:
    """LINKTYPE_IEEE802_11_RADIO: skip the radiotap header (honouring its data-pad flag and a
    trailing FCS), then as ``decode_ieee80211``."""
    frame = radiotap_frame(data)
    if frame is None:
        return _CUT
    start, flags = frame
    end = len(data) - 4 if flags & FLAG_FCS else len(data)
    return _data_payload(data, start, end, bool(flags & FLAG_DATAPAD))
