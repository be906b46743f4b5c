"""The radiotap header (LINKTYPE_IEEE802_11_RADIO) in tcpdump's words, then its 802.11 frame.

Pure module. The fields come from ``decode._radiotap`` read with tcpdump 4.99's layout: the
present bits it knows (0 to 14 and 18 to 21; dB TX attenuation read as one byte, as tcpdump
reads it), the first other one printed as ``[bit N]`` and ending the header's fields. Each field
prints as tcpdump's print_radiotap_field does, with the space after it
(``123us tsft 1.0 Mb/s 2412 MHz 11b -67dBm signal antenna 1 ``); a field cut short prints
`` [|802.11_radio]`` and the frame is still printed. A header whose captured bytes end before
its length (or whose present words run past it) prints only the marker, as tcpdump does.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...decode._radiotap import (
    FIELD_LAYOUT,
    FLAG_BAD_FCS,
    FLAG_DATAPAD,
    FLAG_FCS,
    Radiotap,
    radiotap,
)
from ._nd import Nd
from ._wlan import ieee802_11_print

__all__ = ["radiotap_print"]

#: The present bits tcpdump 4.99 reads (others stop the header), each field's alignment and size.
TCPDUMP_LAYOUT = {
    bit: (1, 1) if bit == 9 else spec
    for bit, spec in FIELD_LAYOUT.items()
    if bit <= 14 or 18 <= bit <= 21
}
_FLAG_WORDS = ((0x01, "cfp"), (0x02, "short preamble"), (0x04, "wep"), (0x08, "fragmented"))
_MCS_BIT, _XCHANNEL_BIT = 1 << 19, 1 << 18
# Channel flags (radiotap's, after the BSD net80211 ones).
_TURBO, _CCK, _OFDM, _2GHZ, _5GHZ = 0x10, 0x20, 0x40, 0x80, 0x100
_DYN, _GFSK, _HALF, _QUARTER = 0x400, 0x800, 0x4000, 0x8000
_HT20, _HT40U, _HT40D = 0x10000, 0x20000, 0x40000
#: HT data rates in Mb/s of MCS 0 to 76, tcpdump's table: (20 MHz long GI, 20 MHz short GI,
#: 40 MHz long GI, 40 MHz short GI); 0.0 where there is none (MCS 32 at 20 MHz).
_HT_RATES = (
    (6.5, 7.2, 13.5, 15.0),
    (13.0, 14.4, 27.0, 30.0),
    (19.5, 21.7, 40.5, 45.0),
    (26.0, 28.9, 54.0, 60.0),
    (39.0, 43.3, 81.0, 90.0),
    (52.0, 57.8, 108.0, 120.0),
    (58.5, 65.0, 121.5, 135.0),
    (65.0, 72.2, 135.0, 150.0),
    (13.0, 14.4, 27.0, 30.0),
    (26.0, 28.9, 54.0, 60.0),
    (39.0, 43.3, 81.0, 90.0),
    (52.0, 57.8, 108.0, 120.0),
    (78.0, 86.7, 162.0, 180.0),
    (104.0, 115.6, 216.0, 240.0),
    (117.0, 130.0, 243.0, 270.0),
    (130.0, 144.4, 270.0, 300.0),
    (19.5, 21.7, 40.5, 45.0),
    (39.0, 43.3, 81.0, 90.0),
    (58.5, 65.0, 121.5, 135.0),
    (78.0, 86.7, 162.0, 180.0),
    (117.0, 130.0, 243.0, 270.0),
    (156.0, 173.3, 324.0, 360.0),
    (175.5, 195.0, 364.5, 405.0),
    (195.0, 216.7, 405.0, 450.0),
    (26.0, 28.9, 54.0, 60.0),
    (52.0, 57.8, 108.0, 120.0),
    (78.0, 86.7, 162.0, 180.0),
    (104.0, 115.6, 216.0, 240.0),
    (156.0, 173.3, 324.0, 360.0),
    (208.0, 231.1, 432.0, 480.0),
    (234.0, 260.0, 486.0, 540.0),
    (260.0, 288.9, 540.0, 600.0),
    (0.0, 0.0, 6.0, 6.7),
    (39.0, 43.3, 81.0, 90.0),
    (52.0, 57.8, 108.0, 120.0),
    (65.0, 72.2, 135.0, 150.0),
    (58.5, 65.0, 121.5, 135.0),
    (78.0, 86.7, 162.0, 180.0),
    (97.5, 108.3, 202.5, 225.0),
    (52.0, 57.8, 108.0, 120.0),
    (65.0, 72.2, 135.0, 150.0),
    (65.0, 72.2, 135.0, 150.0),
    (78.0, 86.7, 162.0, 180.0),
    (91.0, 101.1, 189.0, 210.0),
    (91.0, 101.1, 189.0, 210.0),
    (104.0, 115.6, 216.0, 240.0),
    (78.0, 86.7, 162.0, 180.0),
    (97.5, 108.3, 202.5, 225.0),
    (97.5, 108.3, 202.5, 225.0),
    (117.0, 130.0, 243.0, 270.0),
    (136.5, 151.7, 283.5, 315.0),
    (136.5, 151.7, 283.5, 315.0),
    (156.0, 173.3, 324.0, 360.0),
    (65.0, 72.2, 135.0, 150.0),
    (78.0, 86.7, 162.0, 180.0),
    (91.0, 101.1, 189.0, 210.0),
    (78.0, 86.7, 162.0, 180.0),
    (91.0, 101.1, 189.0, 210.0),
    (104.0, 115.6, 216.0, 240.0),
    (117.0, 130.0, 243.0, 270.0),
    (104.0, 115.6, 216.0, 240.0),
    (117.0, 130.0, 243.0, 270.0),
    (130.0, 144.4, 270.0, 300.0),
    (130.0, 144.4, 270.0, 300.0),
    (143.0, 158.9, 297.0, 330.0),
    (97.5, 108.3, 202.5, 225.0),
    (117.0, 130.0, 243.0, 270.0),
    (136.5, 151.7, 283.5, 315.0),
    (117.0, 130.0, 243.0, 270.0),
    (136.5, 151.7, 283.5, 315.0),
    (156.0, 173.3, 324.0, 360.0),
    (175.5, 195.0, 364.5, 405.0),
    (156.0, 173.3, 324.0, 360.0),
    (175.5, 195.0, 364.5, 405.0),
    (195.0, 216.7, 405.0, 450.0),
    (195.0, 216.7, 405.0, 450.0),
    (214.5, 238.3, 445.5, 495.0),
)  # fmt: skip
_HT_BANDWIDTHS = ("20 MHz", "40 MHz", "20 MHz (L)", "20 MHz (U)")
_VHT_BANDWIDTHS = (
    "20 MHz", "40 MHz", "20 MHz (L)", "20 MHz (U)", "80 MHz", "80 MHz (L)", "80 MHz (U)",
    "80 MHz (LL)", "80 MHz (LU)", "80 MHz (UL)", "80 MHz (UU)", "160 MHz", "160 MHz (L)",
    "160 MHz (U)", "160 MHz (LL)", "160 MHz (LU)", "160 MHz (UL)", "160 MHz (UU)",
    "160 MHz (LLL)", "160 MHz (LLU)", "160 MHz (LUL)", "160 MHz (UUU)", "160 MHz (ULL)",
    "160 MHz (ULU)", "160 MHz (UUL)", "160 MHz (UUU)",
)  # fmt: skip


def radiotap_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_IEEE802_11_RADIO: the radiotap fields, then the 802.11 frame (with the pad
    and FCS its flags announce)."""
    nd.proto = "802.11_radio"
    data = nd.data
    caplen = nd.end
    size = data[2] | data[3] << 8 if caplen >= 4 else 0
    if caplen < 8 or size < 8 or caplen < size:
        nd.trunc()
        nd.hdrlen = caplen
        return
    rt = radiotap(data[:size], TCPDUMP_LAYOUT)
    if rt.present and rt.present[-1] & 0x80000000:
        nd.trunc()  # the present words run past the header
        nd.hdrlen = caplen
        return
    nd.put("".join(_field_text(rt, name) for name in rt.fields))
    if rt.unknown_bit is not None:
        nd.put(f"[bit {rt.unknown_bit}] ")
    if rt.truncated:
        nd.trunc()
    flags = rt.flags or 0
    nd.hdrlen = size
    ieee802_11_print(
        nd, size, length - size, pad=bool(flags & FLAG_DATAPAD), fcslen=4 if flags & FLAG_FCS else 0
    )


def _field_text(rt: Radiotap, name: str) -> str:
    """One field as print_radiotap_field prints it, with its trailing space ('' for none)."""
    present = rt.present[0]
    if name == "tsft":
        return f"{rt.tsft}us tsft "
    if name == "flags":
        flags = rt.flags or 0
        words = [word for bit, word in _FLAG_WORDS if flags & bit]
        if flags & FLAG_BAD_FCS:
            words.append("bad-fcs")
        return "".join(f"{word} " for word in words)
    if name == "rate" and rt.rate is not None:
        if 0x80 <= rt.rate <= 0x8F:
            return f"MCS {rt.rate & 0x7F} "
        return f"{rt.rate * 0.5:.1f} Mb/s "
    if name == "channel" and rt.channel is not None:
        if present & _XCHANNEL_BIT:
            return ""
        return _channel(rt.channel[0], rt.channel[1], present)
    if name == "xchannel" and rt.xchannel is not None:
        return _channel(rt.xchannel[1], rt.xchannel[0], present)
    if name == "fhss" and rt.fhss is not None:
        return f"fhset {rt.fhss[0]} fhpat {rt.fhss[1]} "
    if name == "mcs" and rt.mcs is not None:
        return _mcs(*rt.mcs)
    if name == "vht" and rt.vht is not None:
        return _vht(rt.vht)
    simple = {
        "dbm_signal": f"{rt.dbm_signal}dBm signal ",
        "dbm_noise": f"{rt.dbm_noise}dBm noise ",
        "lock_quality": f"{rt.lock_quality} sq ",
        "tx_attenuation": f"{-(rt.tx_attenuation or 0)} tx power ",
        "db_tx_attenuation": f"{-(rt.db_tx_attenuation or 0)}dB tx attenuation ",
        "dbm_tx_power": f"{rt.dbm_tx_power}dBm tx power ",
        "antenna": f"antenna {rt.antenna} ",
        "db_signal": f"{rt.db_signal}dB signal ",
        "db_noise": f"{rt.db_noise}dB noise ",
    }
    return simple.get(name, "")


def _channel(freq: int, flags: int, present: int) -> str:
    """tcpdump's print_chaninfo: ``2412 MHz 11b `` (11n whenever an MCS field is present)."""
    text = f"{freq} MHz"
    if present & _MCS_BIT:
        text += " 11n"
    else:
        if flags & (_2GHZ | _GFSK) == _2GHZ | _GFSK:
            text += " FHSS"
        width = "/10Mhz" if flags & _HALF else "/5Mhz" if flags & _QUARTER else ""
        if flags & (_5GHZ | _OFDM) == _5GHZ | _OFDM:
            text += " 11a" + width
        if flags & (_2GHZ | _OFDM) == _2GHZ | _OFDM or flags & (_2GHZ | _DYN) == _2GHZ | _DYN:
            text += " 11g" + width
        elif flags & (_2GHZ | _CCK) == _2GHZ | _CCK:
            text += " 11b"
        if flags & _TURBO:
            text += " Turbo"
    if flags & _HT20:
        text += " ht/20"
    elif flags & _HT40D:
        text += " ht/40-"
    elif flags & _HT40U:
        text += " ht/40+"
    return text + " "


def _mcs(known: int, flags: int, index: int) -> str:
    """The MCS field: rate and index, bandwidth, guard interval, format, FEC, STBC."""
    text = ""
    if known & 0x02:
        rate = 0.0
        if index <= 76 and known & 0x05:
            rate = _HT_RATES[index][(2 if flags & 3 == 1 else 0) + (1 if flags & 0x04 else 0)]
        text += f"{rate:.1f} Mb/s MCS {index} " if rate else f"MCS {index} "
    if known & 0x01:
        text += f"{_HT_BANDWIDTHS[flags & 3]} "
    if known & 0x04:
        text += "short GI " if flags & 0x04 else "long GI "
    if known & 0x08:
        text += "greenfield " if flags & 0x08 else "mixed "
    if known & 0x10:
        text += "LDPC FEC " if flags & 0x10 else "BCC FEC "
    if known & 0x20:
        text += f"RX-STBC{flags >> 5 & 3} "
    return text


def _vht(raw: bytes) -> str:
    """The VHT field: each user's MCS and FEC, the bandwidth, the guard interval."""
    known = raw[0] | raw[1] << 8
    flags, bandwidth, coding = raw[2], raw[3], raw[8]
    text = ""
    for user in range(4):
        nss, mcs = raw[4 + user] & 0x0F, raw[4 + user] >> 4
        if nss:
            fec = "LDPC" if coding & 1 << user else "BCC"
            text += f"User {user} MCS {mcs} {fec} FEC "
    if known & 0x40:
        band = bandwidth & 0x1F
        name = _VHT_BANDWIDTHS[band] if band < len(_VHT_BANDWIDTHS) else f"unknown ({band})"
        text += f"{name} "
    if known & 0x04:
        text += "short GI " if flags & 0x04 else "long GI "
    return text
