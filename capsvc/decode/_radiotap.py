"""The radiotap header (LINKTYPE_IEEE802_11_RADIO) in front of an 802.11 frame.

Pure module (no IO). Layout (little-endian): ``version(1) pad(1) length(2)``, then present
words (each ``u32``; bit 31 says another follows), then the fields of the present bits in bit
order, each aligned to its natural size from the start of the header. Bit 29 of a word starts a
fresh radiotap namespace in the next word, bit 30 a vendor namespace whose data (after a 6-byte
``oui(3) sub_namespace(1) skip_length(2)`` field) is skipped. A bit whose size is unknown ends
the reading of fields (nothing after it can be located), as tcpdump does; ``length`` still says
where the 802.11 frame starts.

``radiotap`` reads the fields into ``Radiotap`` and never raises; ``radiotap_frame`` is the
cheap part the link decoder needs (where the frame starts, the flags).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import NamedTuple

__all__ = [
    "FIELD_LAYOUT",
    "FIELD_NAMES",
    "FLAG_BAD_FCS",
    "FLAG_DATAPAD",
    "FLAG_FCS",
    "FLAG_SHORT_GI",
    "FLAG_WEP",
    "Radiotap",
    "radiotap",
    "radiotap_frame",
]

#: Bits of the Flags field.
FLAG_CFP = 0x01
FLAG_SHORT_PREAMBLE = 0x02
FLAG_WEP = 0x04
FLAG_FRAGMENT = 0x08
FLAG_FCS = 0x10
FLAG_DATAPAD = 0x20
FLAG_BAD_FCS = 0x40
FLAG_SHORT_GI = 0x80

#: Present bit -> (alignment, size) of its field, for the bits of the radiotap namespace.
FIELD_LAYOUT: Mapping[int, tuple[int, int]] = {
    0: (8, 8),  # TSFT
    1: (1, 1),  # Flags
    2: (1, 1),  # Rate, 500 kb/s units
    3: (2, 4),  # Channel: frequency, flags
    4: (1, 2),  # FHSS: hop set, pattern
    5: (1, 1),  # antenna signal, dBm
    6: (1, 1),  # antenna noise, dBm
    7: (2, 2),  # lock quality
    8: (2, 2),  # TX attenuation
    9: (2, 2),  # dB TX attenuation
    10: (1, 1),  # dBm TX power
    11: (1, 1),  # antenna
    12: (1, 1),  # antenna signal, dB
    13: (1, 1),  # antenna noise, dB
    14: (2, 2),  # RX flags
    15: (2, 2),  # TX flags
    16: (1, 1),  # RTS retries
    17: (1, 1),  # data retries
    18: (4, 8),  # XChannel: flags, frequency, channel, max power
    19: (1, 3),  # MCS: known, flags, index
    20: (4, 8),  # A-MPDU status
    21: (2, 12),  # VHT
    22: (8, 12),  # timestamp
    23: (2, 12),  # HE
    24: (2, 12),  # HE-MU
    25: (2, 6),  # HE-MU-other-user
    26: (1, 1),  # 0-length PSDU
    27: (2, 4),  # L-SIG
}
#: Present bit -> field name, for the fields ``Radiotap.present_fields`` lists.
FIELD_NAMES = {
    0: "tsft",
    1: "flags",
    2: "rate",
    3: "channel",
    4: "fhss",
    5: "dbm_signal",
    6: "dbm_noise",
    7: "lock_quality",
    8: "tx_attenuation",
    9: "db_tx_attenuation",
    10: "dbm_tx_power",
    11: "antenna",
    12: "db_signal",
    13: "db_noise",
    14: "rx_flags",
    15: "tx_flags",
    16: "rts_retries",
    17: "data_retries",
    18: "xchannel",
    19: "mcs",
    20: "ampdu",
    21: "vht",
    22: "timestamp",
    23: "he",
    24: "he_mu",
    25: "he_mu_other_user",
    26: "zero_length_psdu",
    27: "lsig",
}
_NS_RADIOTAP = 29
_NS_VENDOR = 30
_EXT = 31
#: At most this many present words are read (a crafted header cannot loop long).
_MAX_WORDS = 16
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_S8 = struct.Struct("<b").unpack_from


class Radiotap(NamedTuple):
    """The fields of a radiotap header; a field the header does not carry is None.

    ``length`` is where the 802.11 frame starts. ``rate`` is in 500 kb/s units, ``channel`` is
    ``(MHz, flags)``, ``fhss`` ``(hop set, pattern)``, ``mcs`` ``(known, flags, index)``,
    ``xchannel`` ``(flags, MHz, channel, max power)``, ``vht`` the field's 12 bytes.
    ``fields`` names the fields read, in the order they came; ``unknown_bit`` is the first
    present bit that could not be read, numbered within its namespace as the words count it
    (32 for bit 0 of the second word of the radiotap namespace, 0 again after a switch to a
    fresh one), after which no field was read; ``truncated`` is True when the captured bytes
    end inside the header.
    """

    length: int
    present: tuple[int, ...]
    fields: tuple[str, ...]
    tsft: int | None = None
    flags: int | None = None
    rate: int | None = None
    channel: tuple[int, int] | None = None
    fhss: tuple[int, int] | None = None
    dbm_signal: int | None = None
    dbm_noise: int | None = None
    lock_quality: int | None = None
    tx_attenuation: int | None = None
    db_tx_attenuation: int | None = None
    dbm_tx_power: int | None = None
    antenna: int | None = None
    db_signal: int | None = None
    db_noise: int | None = None
    rx_flags: int | None = None
    tx_flags: int | None = None
    xchannel: tuple[int, int, int, int] | None = None
    mcs: tuple[int, int, int] | None = None
    vht: bytes | None = None
    unknown_bit: int | None = None
    truncated: bool = False


def radiotap_frame(data: bytes) -> tuple[int, int] | None:
    """``(length, flags)``: where the 802.11 frame starts and the Flags field (0 when absent).
    None when the captured bytes end before the 802.11 frame, or the header says it is shorter
    than its own fixed part."""
    n = len(data)
    if n < 8:
        return None
    length = data[2] | data[3] << 8
    if length < 8 or n < length:
        return None
    first = _U32(data, 4)[0]
    if not first & 2:
        return length, 0
    pos, word = 8, first
    while word & 0x80000000:
        if pos + 4 > length or pos > 4 * _MAX_WORDS:
            return length, 0
        word = _U32(data, pos)[0]
        pos += 4
    if first & 1:
        pos = ((pos + 7) & ~7) + 8
    return length, (data[pos] if pos < length else 0)


def radiotap(data: bytes, layout: Mapping[int, tuple[int, int]] = FIELD_LAYOUT) -> Radiotap:
    """Read every field of the radiotap header at the start of ``data`` that can be located.

    ``layout`` is the present bits a reader knows, each with its field's alignment and size
    (``FIELD_LAYOUT`` by default: every bit up to 27); a bit it lacks is ``unknown_bit``. A
    reader that knows fewer bits, or sizes one differently, as tcpdump does, gives its own.

    Never raises: a header cut short gives ``truncated=True`` and the fields read before the cut.
    """
    n = len(data)
    if n < 8:
        return Radiotap(length=0, present=(), fields=(), truncated=True)
    length = data[2] | data[3] << 8
    end = min(n, length)
    words: list[int] = []
    pos = 4
    while pos + 4 <= end and len(words) < _MAX_WORDS:
        word = _U32(data, pos)[0]
        words.append(word)
        pos += 4
        if not word & (1 << _EXT):
            break
    else:
        if not words or words[-1] & (1 << _EXT):
            return Radiotap(length=length, present=tuple(words), fields=(), truncated=True)
    values: dict[str, object] = {}
    names: list[str] = []
    unknown: int | None = None
    truncated = False
    namespace = "radiotap"
    base = 0  # number of the word's bit 0 in the radiotap namespace's numbering
    skip_vendor = 0
    for word in words:
        if namespace == "vendor":
            pos += skip_vendor
            skip_vendor = 0
            namespace = "radiotap" if word & (1 << _NS_RADIOTAP) else namespace
            if word & (1 << _NS_VENDOR):
                namespace = "vendor"
            base = 0
            continue
        for bit in range(29):
            if not word & (1 << bit):
                continue
            number = base + bit
            spec = layout.get(number)
            if spec is None:
                unknown = number
                break
            align, size = spec
            pos = (pos + align - 1) & ~(align - 1)
            if pos + size > end:
                truncated = True
                break
            name = FIELD_NAMES[number]
            if name not in values:
                values[name] = _field(data, pos, number, size)
                names.append(name)
            pos += size
        if unknown is not None or truncated:
            break
        if word & (1 << _NS_VENDOR):
            pos = (pos + 1) & ~1
            if pos + 6 > end:
                truncated = True
                break
            skip_vendor = _U16(data, pos + 4)[0]
            pos += 6
            namespace = "vendor"
        elif word & (1 << _NS_RADIOTAP):
            base = 0
        else:
            base += 32
    fields = {k: v for k, v in values.items() if k in Radiotap._fields}
    return Radiotap(
        length=length,
        present=tuple(words),
        fields=tuple(names),
        unknown_bit=unknown,
        truncated=truncated or n < length,
        **fields,  # type: ignore[arg-type]
    )


def _field(data: bytes, pos: int, bit: int, size: int) -> object:
    """The value of the ``size``-byte field of present bit ``bit`` at ``pos`` (bounds already
    checked); a 2-byte field read as one byte is signed (tcpdump's dB TX attenuation)."""
    if size == 1 and bit in (8, 9):
        return _S8(data, pos)[0]
    if bit == 0:
        return _U64(data, pos)[0]
    if bit in (1, 2, 11, 12, 13, 16, 17):
        return data[pos]
    if bit == 3:
        return _U16(data, pos)[0], _U16(data, pos + 2)[0]
    if bit == 4:
        return data[pos], data[pos + 1]
    if bit in (5, 6, 10):
        return _S8(data, pos)[0]
    if bit in (7, 8, 9, 14, 15):
        return _U16(data, pos)[0]
    if bit == 18:
        return _U32(data, pos)[0], _U16(data, pos + 4)[0], data[pos + 6], data[pos + 7]
    if bit == 19:
        return data[pos], data[pos + 1], data[pos + 2]
    return bytes(data[pos : pos + size])
