"""IEEE 802.1AE MACsec (ethertype 0x88e5) in tcpdump's words.

Pure module, after tcpdump 4.99's print-macsec.c. The SecTAG is ``TCI/AN(1) SL(1) PN(4)`` and,
when the TCI's SC bit is set, an 8-byte SCI; a 16-byte ICV ends the frame. With ``-e`` the
SecTAG prints as ``an 0, pn 66, flags I, sl 34, sci caf9df4f509a0064, ``. A payload in clear
(neither the E nor the C bit) goes on to its ethertype, without the ICV and, when SL is not 0,
cut to SL bytes; an encrypted or changed one prints the addresses and the SecTAG (without
``-e``: ``2e:b7:.. > 3e:6f:.. 802.1AE MACsec, an 0, ...``) and a dump of the rest. A SecTAG cut
short ends with `` [|macsec]``, one with its version bit or SL's top bits set `` (invalid)``.
"""

from __future__ import annotations

from ._hex import hex_ascii
from ._nd import Nd

__all__ = ["macsec_print"]

_TCI_V, _TCI_SC, _TCI_E, _TCI_C = 0x80, 0x20, 0x08, 0x04
#: The TCI's flags in the order tcpdump lists them (bittok2str_nosep).
_FLAGS = ((0x08, "E"), (0x04, "C"), (0x40, "S"), (0x10, "B"), (0x20, "I"))
_SECTAG, _SECTAG_SCI, _ICV = 6, 14, 16


def macsec_print(nd: Nd, start: int, pos: int, length: int) -> tuple[int, int, int] | None:
    """The SecTAG at ``pos`` of the Ethernet frame at ``start`` (``length``: what the wire
    length leaves from ``pos``). Returns ``(ethertype, where it starts, length)`` of a payload
    in clear, for the caller to go on with; None when the line is done (a dump, a marker)."""
    nd.proto = "macsec"
    caplen = nd.end - pos
    nd.hdrlen = nd.end
    if min(caplen, length) < _SECTAG:
        nd.trunc()
        return None
    tci, short = nd.data[pos], nd.data[pos + 1]
    size = _SECTAG_SCI if tci & _TCI_SC else _SECTAG
    if min(caplen, length) < size:
        nd.trunc()
        return None
    if short & 0xC0 or tci & _TCI_V:
        nd.put(" (invalid)")
        return None
    short &= 0x3F
    if nd.opts.link:
        _sectag(nd, pos, tci, short)
    nd.hdrlen = pos + size
    pos, length, caplen = pos + size, length - size, caplen - size
    if tci & (_TCI_E | _TCI_C):
        if not nd.opts.link:
            nd.put(f"{nd.mac(start + 6)} > {nd.mac(start)} 802.1AE MACsec, ")
            _sectag(nd, pos - size, tci, short)
        if not nd.opts.silent_default and caplen > 0:
            hex_ascii(nd, pos, caplen)
        return None
    if length < _ICV or caplen < _ICV:
        nd.trunc()
        return None
    length, caplen = length - _ICV, caplen - _ICV
    nd.push(nd.end - _ICV)
    if short:
        if short > length or short > caplen:
            nd.trunc()
            return None
        length = min(length, short)
        nd.push(pos + short)
    nd.need(pos, 2)
    nd.hdrlen = pos + 2
    return nd.u16(pos), pos + 2, length - 2


def _sectag(nd: Nd, pos: int, tci: int, short: int) -> None:
    flags = "".join(name for bit, name in _FLAGS if tci & bit) or "none"
    nd.put(f"an {tci & 3}, pn {nd.u32(pos + 2)}, flags {flags}")
    if short:
        nd.put(f", sl {short}")
    if tci & _TCI_SC:
        nd.put(f", sci {nd.data[pos + 6 : pos + 14].hex()}")
    nd.put(", ")
