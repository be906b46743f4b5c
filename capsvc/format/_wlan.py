"""Text of 802.11 frames and radiotap headers, from the fields ``decode._wlan`` and
``decode._radiotap`` read.

Pure module. The words follow tcpdump's: ``Beacon (ssid) [1.0* 2.0* 5.5 11.0 Mbit] ESS CH: 1,
PRIVACY``, ``Acknowledgment RA:90:a4:de:c0:46:0a``, ``Data IV: 11 Pad 20 KeyID 0``, and the
radiotap summary ``10016360us tsft 1.0 Mb/s 2412 MHz 11b -22dBm signal -86dBm noise antenna 1``.
A frame whose captured bytes end early ends with ``[|802.11]``. Nothing here raises.
"""

from __future__ import annotations

from ..decode._radiotap import FLAG_FCS, Radiotap, radiotap
from ..decode._wlan import (
    CONTROL_NAMES,
    DATA_NAMES,
    FC_PROTECTED,
    MGMT_NAMES,
    TYPE_CONTROL,
    TYPE_DATA,
    TYPE_MGMT,
    Dot11,
    dot11_header,
    mgmt_body,
    protected_header,
)

__all__ = ["radiotap_text", "wlan_message", "wlan_radio_message"]

_PRINTABLE = bytes(b if 32 <= b < 127 else 0x2E for b in range(256))
_CAP_ESS, _CAP_IBSS, _CAP_PRIVACY = 0x0001, 0x0002, 0x0010
_AUTH_ALGORITHMS = {0: "Open System", 1: "Shared Key", 2: "Fast BSS Transition", 3: "SAE"}
_STATUS = {0: "Successful", 1: "Unspecified failure"}
_REASONS = {
    1: "Unspecified reason",
    2: "Previous authentication no longer valid",
    3: "Deauthenticated because sending STA is leaving (or has left) IBSS or ESS",
    4: "Disassociated due to inactivity",
    5: "Disassociated because AP is unable to handle all currently associated STAs",
    6: "Class 2 frame received from nonauthenticated STA",
    7: "Class 3 frame received from nonassociated STA",
    8: "Disassociated because sending STA is leaving (or has left) BSS",
}
#: HT rates of MCS 0-7 in Mb/s for one spatial stream, 20 and 40 MHz, long guard interval.
_HT_RATES = {
    0: (6.5, 13.0, 19.5, 26.0, 39.0, 52.0, 58.5, 65.0),
    1: (13.5, 27.0, 40.5, 54.0, 81.0, 108.0, 121.5, 135.0),
}
_MCS_BANDWIDTH = ("20 MHz", "40 MHz", "20 MHz (L)", "20 MHz (U)")
# Channel flags (radiotap's, after the BSD net80211 ones).
_CHAN_TURBO, _CHAN_CCK, _CHAN_OFDM, _CHAN_2GHZ, _CHAN_5GHZ = 0x10, 0x20, 0x40, 0x80, 0x100
_CHAN_DYN, _CHAN_GFSK, _CHAN_HALF, _CHAN_QUARTER = 0x400, 0x800, 0x4000, 0x8000
_MCS_BIT, _VHT_BIT = 1 << 19, 1 << 21


def _mac(raw: bytes | None) -> str:
    return raw.hex(":") if raw is not None else "?"


def _rates(rates: tuple[int, ...]) -> str:
    if not rates:
        return ""
    text = " ".join(f"{(r & 0x7F) * 0.5:.1f}{'*' if r & 0x80 else ''}" for r in rates)
    return f" [{text} Mbit]"


def _ssid(raw: bytes | None) -> str:
    return "" if raw is None else f" ({raw.translate(_PRINTABLE).decode('ascii')})"


def _mgmt(data: bytes, h: Dot11, end: int, cut: bool) -> str:
    name = MGMT_NAMES.get(h.subtype, f"Management subtype {h.subtype}")
    body = mgmt_body(data, h.subtype, h.body, end)
    text = name
    cap = body.capability or 0
    if h.subtype in (0, 2, 4, 5, 8):
        text += _ssid(body.ssid if body.ssid is not None else body.mesh_id) + _rates(body.rates)
        if h.subtype == 8 and body.capability is not None:
            text += " ESS" if cap & _CAP_ESS else " IBSS"
        if body.channel is not None and h.subtype in (5, 8):
            text += f" CH: {body.channel}"
        if cap & _CAP_PRIVACY and h.subtype in (5, 8):
            text += ", PRIVACY"
        if h.subtype == 2 and body.current_ap is not None:
            text += f" AP : {_mac(body.current_ap)}"
    elif h.subtype in (1, 3) and body.aid is not None:
        privacy = " PRIVACY " if cap & _CAP_PRIVACY else ""
        status = _STATUS.get(body.status or 0, f"status {body.status}")
        text += f" AID({body.aid & 0x3FFF:x}) :{privacy}: {status}"
    elif h.subtype == 11 and body.auth_seq is not None:
        algorithm = _AUTH_ALGORITHMS.get(body.auth_algorithm or 0, f"{body.auth_algorithm}")
        status = _STATUS.get(body.status or 0, f"status {body.status}")
        text += f" ({algorithm})-{body.auth_seq:x}: {status}"
    elif h.subtype in (10, 12) and body.reason is not None:
        reason = _REASONS.get(body.reason, f"reason {body.reason}")
        text += f" ({_mac(h.addr2)}): {reason}"
    elif h.subtype in (13, 14) and h.body < end:
        text += f" (category {data[h.body]})"
    if body.truncated or h.truncated or cut:
        text += " [|802.11]"
    return text


def _control(data: bytes, h: Dot11) -> str:
    name = CONTROL_NAMES.get(h.subtype, f"Control subtype {h.subtype}")
    if h.subtype == 10:
        text = f"{name} AID({h.duration & 0x3FFF:x})"
    elif h.subtype in (8, 11):
        text = f"{name} RA:{_mac(h.addr1)} TA:{_mac(h.addr2)}"
    elif h.subtype in (9, 12, 13, 14, 15):
        text = f"{name} RA:{_mac(h.addr1)}"
    else:
        text = name
    if h.truncated:
        text += " [|802.11]"
    return text


def _data(data: bytes, h: Dot11, end: int) -> str:
    name = DATA_NAMES.get(h.subtype, f"Data subtype {h.subtype}")
    if h.truncated:
        return f"{name} [|802.11]"
    if h.flags & FC_PROTECTED:
        sec = protected_header(data, h.body, end)
        if sec is None:
            return f"{name} [|802.11]"
        return f"{name} IV:{sec.iv:3x} Pad {sec.pad:x} KeyID {sec.key_id:x}"
    return name


def _frame_text(data: bytes, off: int, end: int, verbose: bool, cut: bool) -> str:
    h = dot11_header(data, off, end)
    if h.type == -1:
        return "[|802.11]"
    if h.type == TYPE_MGMT:
        text = _mgmt(data, h, end, cut)
    elif h.type == TYPE_CONTROL:
        text = _control(data, h)
    elif h.type == TYPE_DATA:
        text = _data(data, h, end)
    else:
        text = f"802.11 type {h.type} subtype {h.subtype}"
    if verbose and h.type != TYPE_CONTROL:
        text += f", BSSID:{_mac(h.addr3)} DA:{_mac(h.addr1)} SA:{_mac(h.addr2)}"
    return text


def wlan_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """The tag name and text of an 802.11 frame that carries no network layer (LINKTYPE
    IEEE802_11). Verbose adds the addresses (``BSSID:.. DA:.. SA:..``). A management frame the
    capture cut (fewer bytes than ``wire_len``) ends with ``[|802.11]``."""
    return "WLAN", _frame_text(data, 0, len(data), verbose, len(data) < wire_len)


def wlan_radio_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """As ``wlan_message`` after a radiotap header; verbose adds the radiotap summary."""
    rt = radiotap(data)
    end = len(data) - 4 if rt.flags is not None and rt.flags & FLAG_FCS else len(data)
    text = _frame_text(data, rt.length, end, verbose, len(data) < wire_len)
    if verbose:
        text += f", radiotap: {radiotap_text(rt)}"
    return "WLAN", text


def _channel(freq: int, flags: int, present: int) -> str:
    text = f"{freq} MHz"
    if present & _MCS_BIT:
        return text + " 11n"
    if present & _VHT_BIT:
        return text + " 11ac"
    if flags & (_CHAN_2GHZ | _CHAN_GFSK) == _CHAN_2GHZ | _CHAN_GFSK:
        text += " FHSS"
    width = "/10Mhz" if flags & _CHAN_HALF else "/5Mhz" if flags & _CHAN_QUARTER else ""
    if flags & (_CHAN_5GHZ | _CHAN_OFDM) == _CHAN_5GHZ | _CHAN_OFDM:
        text += " 11a" + width
    if flags & _CHAN_2GHZ and flags & (_CHAN_OFDM | _CHAN_DYN):
        text += " 11g" + width
    elif flags & (_CHAN_2GHZ | _CHAN_CCK) == _CHAN_2GHZ | _CHAN_CCK:
        text += " 11b"
    if flags & _CHAN_TURBO:
        text += " Turbo"
    return text


def radiotap_text(rt: Radiotap) -> str:
    """The fields of a radiotap header in tcpdump's words and order; a header cut short ends
    with ``[|802.11_radio]``, an unknown present bit shows as ``[bit N]``."""
    parts: list[str] = []
    present = rt.present[0] if rt.present else 0
    for name in rt.fields:
        if name == "tsft" and rt.tsft is not None:
            parts.append(f"{rt.tsft}us tsft")
        elif name == "flags" and rt.flags:
            for bit, word in ((1, "cfp"), (2, "short preamble"), (4, "wep"), (8, "fragmented")):
                if rt.flags & bit:
                    parts.append(word)
            if rt.flags & 0x40:
                parts.append("bad-fcs")
        elif name == "rate" and rt.rate is not None:
            parts.append(f"{rt.rate * 0.5:.1f} Mb/s")
        elif name == "channel" and rt.channel is not None:
            parts.append(_channel(rt.channel[0], rt.channel[1], present))
        elif name == "fhss" and rt.fhss is not None:
            parts.append(f"fhset {rt.fhss[0]} fhpat {rt.fhss[1]}")
        elif name == "dbm_signal":
            parts.append(f"{rt.dbm_signal}dBm signal")
        elif name == "dbm_noise":
            parts.append(f"{rt.dbm_noise}dBm noise")
        elif name == "lock_quality":
            parts.append(f"{rt.lock_quality} sq")
        elif name == "dbm_tx_power":
            parts.append(f"{rt.dbm_tx_power}dBm tx power")
        elif name == "antenna":
            parts.append(f"antenna {rt.antenna}")
        elif name == "db_signal":
            parts.append(f"{rt.db_signal}dB signal")
        elif name == "db_noise":
            parts.append(f"{rt.db_noise}dB noise")
        elif name == "mcs" and rt.mcs is not None:
            parts.append(_mcs(rt.mcs))
    if rt.unknown_bit is not None:
        parts.append(f"[bit {rt.unknown_bit}]")
    if rt.truncated:
        parts.append("[|802.11_radio]")
    return " ".join(p for p in parts if p)


def _mcs(mcs: tuple[int, int, int]) -> str:
    known, flags, index = mcs
    parts = []
    bandwidth = flags & 3 if known & 0x01 else None
    short_gi = bool(flags & 0x04) if known & 0x04 else None
    if known & 0x02 and bandwidth is not None and short_gi is not None and index < 32:
        rate = _HT_RATES[1 if bandwidth == 1 else 0][index % 8] * (index // 8 + 1)
        if short_gi:
            rate = rate * 10 / 9
        parts.append(f"{rate:.1f} Mb/s MCS {index}")
    elif known & 0x02:
        parts.append(f"MCS {index}")
    if bandwidth is not None:
        parts.append(_MCS_BANDWIDTH[bandwidth])
    if short_gi is not None:
        parts.append("short GI" if short_gi else "long GI")
    if known & 0x08:
        parts.append("greenfield" if flags & 0x08 else "mixed")
    if known & 0x10:
        parts.append("LDPC FEC" if flags & 0x10 else "BCC FEC")
    if known & 0x20 and flags >> 5 & 3:
        parts.append(f"RX-STBC{flags >> 5 & 3}")
    return " ".join(parts)
