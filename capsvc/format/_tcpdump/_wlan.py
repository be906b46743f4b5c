"""IEEE 802.11 frames (LINKTYPE_IEEE802_11, and after radiotap) in tcpdump's words.

Pure module, after tcpdump 4.99's print-802_11.c. The MAC header's length is tcpdump's: 24
bytes for management frames, the control subtype's own, 24 or 30 for data frames and 2 more
for QoS data; an HT Control field is not counted (tcpdump reads it as the start of the body),
and radiotap's data pad rounds it up to 4. With ``-e`` the addresses come first, named by the
frame type and the DS bits (``BSSID:.. DA:.. SA:..``, ``RA:.. TA:..``, ``DA:.. BSSID:.. SA:..``);
without it a control frame names its receiver (``Acknowledgment RA:.. ``). Management bodies
are read by ``decode._wlan.mgmt_body`` and printed as tcpdump prints them (``Beacon (ssid)
[1.0* 2.0* 5.5 11.0 Mbit] ESS CH: 1, PRIVACY``); protected frames print their IV (``Data
IV:  1 Pad 20 KeyID 0``); other data frames go through LLC/SNAP to the network layer. A read
past the captured bytes, or an element that does not fit, ends the line with `` [|802.11]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...decode._wlan import (
    CONTROL_NAMES,
    MGMT_NAMES,
    TYPE_CONTROL,
    TYPE_DATA,
    TYPE_MGMT,
    mgmt_body,
    protected_header,
)
from ._hex import hex_ascii
from ._ipx import ipx_print
from ._nd import PRINTERS, Nd, print_char
from ._wlan_text import AUTH_ALGORITHMS, action_text, reason_text, status_text

__all__ = ["ieee802_11_print", "wlan_print"]

#: The management subtypes tcpdump names (others: ``Unhandled Management subtype(N)``).
_MGMT_NAMES = {k: v for k, v in MGMT_NAMES.items() if k not in (6, 14)}
#: Control subtype -> the MAC header length tcpdump gives it (the ones it knows).
_CONTROL_LENGTHS = {7: 16, 8: 20, 9: 10, 10: 16, 11: 16, 12: 10, 13: 10, 14: 16, 15: 16}
_FC_TO_DS, _FC_FROM_DS, _FC_MORE_FRAG, _FC_RETRY = 0x0100, 0x0200, 0x0400, 0x0800
_FC_PWR_MGT, _FC_MORE_DATA, _FC_PROTECTED, _FC_ORDER = 0x1000, 0x2000, 0x4000, 0x8000
_CAP_ESS, _CAP_PRIVACY = 0x0001, 0x0010
#: Frame control flags ``-ev`` names, in tcpdump's order.
_FC_WORDS = (
    (_FC_MORE_DATA, "More Data"), (_FC_MORE_FRAG, "More Fragments"), (_FC_PWR_MGT, "Pwr Mgmt"),
    (_FC_RETRY, "Retry"), (_FC_ORDER, "Strictly Ordered"), (_FC_PROTECTED, "Protected"),
)  # fmt: skip
#: Management subtype -> a fixed field that is None when the fixed fields are cut.
_FIXED_LAST = {0: "listen_interval", 1: "aid", 2: "current_ap", 3: "aid", 5: "capability",
               8: "capability", 11: "status"}  # fmt: skip
#: The LLC SAPs tcpdump names (llc_values).
_SAPS = {
    0x00: "Null", 0xFF: "Global", 0x02: "802.1B I", 0x03: "802.1B G", 0x06: "IP", 0x04: "SNA",
    0x0E: "ProWay NM", 0x42: "STP", 0x4E: "RS511", 0x7E: "ISO8208", 0x8E: "ProWay",
    0xAA: "SNAP", 0xE0: "IPX", 0xF0: "NetBeui", 0xFE: "OSI",
}  # fmt: skip
_LLC_COMMANDS = {0x03: "ui", 0xE3: "test", 0xAF: "xid", 0x63: "ua", 0x43: "disc",
                 0x0F: "dm", 0x6F: "sabme", 0x87: "frmr"}  # fmt: skip
_LLC_FLAGS = {0: "Command", 1: "Response", 0x10: "Poll", 0x11: "Final"}
_SUPERVISORY = {0: "Receiver Ready", 1: "Receiver not Ready", 2: "Reject"}


def wlan_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_IEEE802_11: an 802.11 frame without a radio header."""
    ieee802_11_print(nd, 0, length)


def ieee802_11_print(nd: Nd, pos: int, length: int, *, pad: bool = False, fcslen: int = 0) -> None:
    """The 802.11 frame at ``pos`` of wire length ``length`` (its FCS included when ``fcslen``
    is 4); ``pad``: radiotap's data pad between header and body."""
    nd.proto = "802.11"
    nd.hdrlen = nd.end
    if length < fcslen:
        nd.trunc()
        return
    length -= fcslen
    nd.push(pos + length)  # the FCS is no part of what follows
    if nd.end - pos < 2:
        nd.trunc()
        return
    fc = nd.data[pos] | nd.data[pos + 1] << 8
    kind, subtype = fc >> 2 & 3, fc >> 4 & 0xF
    hdrlen = _header_length(nd, kind, subtype, fc)
    if hdrlen == 0:
        nd.hdrlen = pos
        return
    if pad:
        hdrlen = (hdrlen + 3) & ~3
    nd.hdrlen = pos + hdrlen
    if nd.end - pos < hdrlen:
        nd.trunc()
        return
    if nd.opts.link:
        _header(nd, pos, kind, subtype, fc)
    body, length = pos + hdrlen, length - hdrlen
    if kind == TYPE_MGMT:
        if not _mgmt(nd, pos, subtype, fc, body, length):
            nd.trunc()
    elif kind == TYPE_CONTROL:
        _control(nd, pos, subtype)
    elif subtype & 4:
        return  # a data frame without data
    elif fc & _FC_PROTECTED:
        nd.put("Data")
        if not _wep(nd, body):
            nd.trunc()
    else:
        _llc(nd, body, length, *_data_addresses(nd, pos, fc))


def _header_length(nd: Nd, kind: int, subtype: int, fc: int) -> int:
    """tcpdump's extract_header_length; 0 (and its words) for what it cannot size."""
    if kind == TYPE_MGMT:
        return 24
    if kind == TYPE_CONTROL:
        size = _CONTROL_LENGTHS.get(subtype, 0)
        if not size:
            nd.put(f"unknown 802.11 ctrl frame subtype ({subtype})")
        return size
    if kind == TYPE_DATA:
        size = 30 if fc & (_FC_TO_DS | _FC_FROM_DS) == _FC_TO_DS | _FC_FROM_DS else 24
        return size + 2 if subtype & 8 else size
    nd.put(f"unknown 802.11 frame type ({kind})")
    return 0


def _header(nd: Nd, pos: int, kind: int, subtype: int, fc: int) -> None:
    """``-e``: the frame control flags (with ``-v``) and the addresses."""
    if nd.opts.verbose:
        for bit, word in _FC_WORDS:
            if fc & bit:
                nd.put(f"{word} ")
        if kind != TYPE_CONTROL or subtype != 10:
            nd.put(f"{nd.data[pos + 2] | nd.data[pos + 3] << 8}us ")
    a1 = nd.mac(pos + 4)
    if kind == TYPE_CONTROL and subtype in (9, 12, 13):
        nd.put(f"RA:{a1} ")
        return
    a2 = "" if kind == TYPE_CONTROL and subtype == 7 else nd.mac(pos + 10)
    if kind == TYPE_MGMT:
        nd.put(f"BSSID:{nd.mac(pos + 16)} DA:{a1} SA:{a2} ")
    elif kind == TYPE_CONTROL:
        if subtype == 8:
            nd.put(f" RA:{a1} TA:{a2} CTL({_le16(nd, pos + 16):x}) SEQ({_le16(nd, pos + 18)}) ")
        elif subtype == 10:
            nd.put(f"BSSID:{a1} TA:{a2} ")
        elif subtype == 11:
            nd.put(f"RA:{a1} TA:{a2} ")
        elif subtype in (14, 15):
            nd.put(f"RA:{a1} BSSID:{a2} ")
    else:
        if subtype & 0xB:
            ack = "Ack/Poll" if subtype & 3 == 3 else "Ack" if subtype & 1 else ""
            ack = ack or ("Poll" if subtype & 2 else "")
            nd.put(f"CF {ack}{'+QoS' if subtype & 8 else ''} ")
        a3 = nd.mac(pos + 16)
        ds = fc & (_FC_TO_DS | _FC_FROM_DS)
        if ds == 0:
            nd.put(f"DA:{a1} SA:{a2} BSSID:{a3} ")
        elif ds == _FC_FROM_DS:
            nd.put(f"DA:{a1} BSSID:{a2} SA:{a3} ")
        elif ds == _FC_TO_DS:
            nd.put(f"BSSID:{a1} SA:{a2} DA:{a3} ")
        else:
            nd.put(f"RA:{a1} TA:{a2} DA:{a3} SA:{nd.mac(pos + 24)} ")


def _le16(nd: Nd, pos: int) -> int:
    nd.need(pos, 2)
    return nd.data[pos] | nd.data[pos + 1] << 8


def _data_addresses(nd: Nd, pos: int, fc: int) -> tuple[str, str]:
    """A data frame's source and destination (tcpdump's get_data_src_dst_mac)."""
    ds = fc & (_FC_TO_DS | _FC_FROM_DS)
    src = {0: 10, _FC_FROM_DS: 16, _FC_TO_DS: 10}.get(ds, 24)
    dst = 4 if ds in (0, _FC_FROM_DS) else 16
    return nd.mac(pos + src), nd.mac(pos + dst)


def _wep(nd: Nd, pos: int) -> bool:
    """`` IV:  1 Pad 20 KeyID 0``; False when the four bytes are not all there."""
    sec = protected_header(nd.data, pos, nd.end)
    if sec is None:
        return False
    nd.put(f" IV:{sec.iv:3x} Pad {sec.pad:x} KeyID {sec.key_id:x}")
    return True


def _mgmt(nd: Nd, pos: int, subtype: int, fc: int, body: int, length: int) -> bool:
    """A management frame's name and body; False where tcpdump marks it truncated."""
    nd.put(_MGMT_NAMES.get(subtype, f"Unhandled Management subtype({subtype:x})"))
    if fc & _FC_PROTECTED:
        return _wep(nd, body)
    end = min(nd.end, body + length)
    if subtype in (9,) or subtype not in _MGMT_NAMES:
        return True
    if subtype in (10, 12, 13):
        return _reason_or_action(nd, pos, subtype, body, end)
    fields = mgmt_body(nd.data, subtype, body, end)
    last = _FIXED_LAST.get(subtype)
    if last is not None and getattr(fields, last) is None:
        return False  # the fixed fields are cut
    cap = fields.capability or 0
    if subtype in (0, 2, 4, 5, 8) and fields.ssid is not None:
        ssid = fields.ssid.split(b"\0", 1)[0]  # tcpdump prints it as a C string
        nd.put(f" ({''.join(print_char(c) for c in ssid)})")
    if subtype in (0, 4, 5, 8) and fields.rates:
        rates = " ".join(f"{(r & 0x7F) * 0.5:.1f}{'*' if r & 0x80 else ''}" for r in fields.rates)
        nd.put(f" [{rates} Mbit]")
    if subtype == 8:
        nd.put(" ESS" if cap & _CAP_ESS else " IBSS")
    if subtype in (5, 8):
        if fields.channel is not None:
            nd.put(f" CH: {fields.channel}")
        if cap & _CAP_PRIVACY:
            nd.put(", PRIVACY")
    if subtype == 2:
        nd.put(f" AP : {nd.mac(body + 4)}")
    elif subtype in (1, 3):
        privacy = " PRIVACY " if cap & _CAP_PRIVACY else ""
        nd.put(
            f" AID({(fields.aid or 0) & 0x3FFF:x}) :{privacy}: {status_text(fields.status or 0)}"
        )
    elif subtype == 11:
        _auth(nd, fields.auth_algorithm or 0, fields.auth_seq or 0, fields.status or 0)
    # tcpdump reads elements up to the wire length: a capture cut anywhere in them is a cut.
    return not (fields.truncated or fields.invalid or end < body + length)


def _auth(nd: Nd, algorithm: int, seq: int, status: int) -> None:
    name = AUTH_ALGORITHMS[algorithm] if algorithm < len(AUTH_ALGORITHMS) else "Reserved"
    result = status_text(status) if seq % 2 else ""
    if algorithm == 1 and seq in (2, 3):
        nd.put(f" ({name})-{seq:x} [Challenge Text] {result}")
    else:
        nd.put(f" ({name})-{seq:x}: {result}")


def _reason_or_action(nd: Nd, pos: int, subtype: int, body: int, end: int) -> bool:
    """Disassociation and Deauthentication (a reason code), Action (category and action);
    without ``-e`` Deauthentication and Action name their sender first."""
    if body + 2 > end:
        return False
    sender = "" if nd.opts.link or subtype == 10 else f" ({nd.mac(pos + 10)})"
    if subtype == 13:
        nd.put(f"{sender}: {action_text(nd.data[body], nd.data[body + 1])}")
    else:
        nd.put(f"{sender}: {reason_text(_le16(nd, body))}")
    return True


def _control(nd: Nd, pos: int, subtype: int) -> None:
    """A control frame's name and, without ``-e``, its addresses (tcpdump's ctrl_body_print)."""
    nd.put(CONTROL_NAMES.get(subtype, "Unknown Ctrl Subtype"))
    if subtype == 10:
        nd.put(f" AID({_le16(nd, pos + 2):x})")
    elif nd.opts.link:
        return
    elif subtype == 8:
        a1, a2 = nd.mac(pos + 4), nd.mac(pos + 10)
        nd.put(f" RA:{a1} TA:{a2} CTL({_le16(nd, pos + 16):x}) SEQ({_le16(nd, pos + 18)}) ")
    elif subtype == 11:
        nd.put(f" TA:{nd.mac(pos + 10)} ")
    elif subtype in (9, 12, 13, 14, 15):
        nd.put(f" RA:{nd.mac(pos + 4)} ")


def _llc(nd: Nd, pos: int, length: int, src: str, dst: str) -> None:
    """An 802.2 LLC frame (tcpdump's llc_print): SNAP to the network layer, IPX, or the LLC
    header in words and a dump of what tcpdump would decode further."""
    nd.proto = "llc"
    if nd.end - pos < 3 or length < 3:
        nd.trunc()
        hex_ascii(nd, pos, nd.end - pos)  # tcpdump dumps it here even with -x, and only here
        nd.hdrlen = nd.end
        return
    dsap_field, ssap_field, control = nd.data[pos], nd.data[pos + 1], nd.data[pos + 2]
    unnumbered = control & 3 == 3
    if not unnumbered:
        control = _le16(nd, pos + 2)
    if ssap_field == 0xFF and dsap_field == 0xFF:
        if nd.opts.link:
            nd.put("IPX 802.3: ")
        ipx_print(nd, pos, length)
        return
    dsap, ssap = dsap_field & 0xFE, ssap_field & 0xFE
    if nd.opts.link:
        nd.put(
            f"LLC, dsap {_SAPS.get(dsap, 'Unknown')} (0x{dsap:02x}) "
            f"{'Group' if dsap_field & 1 else 'Individual'}, "
            f"ssap {_SAPS.get(ssap, 'Unknown')} (0x{ssap:02x}) "
            f"{'Response' if ssap_field & 1 else 'Command'}, "
            + (f"ctrl 0x{control:02x}: " if unnumbered else f"ctrl 0x{control:04x}: ")
        )
    if dsap == ssap == 0xAA and control == 3:
        _snap(nd, pos + 3, length - 3)
        return
    size = 3 if unnumbered else 4
    nd.hdrlen = pos + size
    if not nd.opts.link:
        if ssap == dsap:
            nd.put(f"{src} > {dst} {_SAPS.get(dsap, f'Unknown DSAP 0x{dsap:02x}')} ")
        else:
            nd.put(f"{src} {_SAPS.get(ssap, f'Unknown SSAP 0x{ssap:02x}')} > {dst} "
                   f"{_SAPS.get(dsap, f'Unknown DSAP 0x{dsap:02x}')} ")  # fmt: skip
    if unnumbered:
        command = _LLC_COMMANDS.get(control & 0xEF, f"{control & 0xEF:02x}")
        flags = _LLC_FLAGS.get((ssap_field & 1) | (control & 0x10), "?")
        nd.put(f"Unnumbered, {command}, Flags [{flags}], length {length}")
    elif control & 1:
        command = _SUPERVISORY.get(control >> 2 & 3, "?")
        flags = _LLC_FLAGS.get((ssap_field & 1) | (control >> 4 & 0x10), "?")
        nd.put(f"Supervisory, {command}, rcv seq {control >> 9}, Flags [{flags}], length {length}")
    else:
        flags = _LLC_FLAGS.get((ssap_field & 1) | (control >> 4 & 0x10), "?")
        nd.put(f"Information, send seq {control >> 1 & 0x7F}, rcv seq {control >> 9}, "
               f"Flags [{flags}], length {length}")  # fmt: skip
    _dump(nd, pos)


def _snap(nd: Nd, pos: int, length: int) -> None:
    """The SNAP header after LLC: OUI 0 hands its ethertype to the network layer printers."""
    nd.proto = "snap"
    if nd.end - pos < 5 or length < 5:
        nd.trunc()
        return
    oui = int.from_bytes(nd.data[pos : pos + 3], "big")
    ethertype = nd.u16(pos + 3)
    if nd.opts.link:
        oui_name = "Ethernet" if oui == 0 else "Unknown"
        kind = PRINTERS.ethertype_names.get(ethertype, "Unknown") if oui == 0 else "Unknown"
        nd.put(f"oui {oui_name} (0x{oui:06x}), ethertype {kind} (0x{ethertype:04x}), "
               f"length {length - 5}: ")  # fmt: skip
    nd.hdrlen = pos + 5
    if oui == 0 and PRINTERS.ethertype(nd, ethertype, pos + 5, length - 5):
        return
    _dump(nd, pos + 5)


def _dump(nd: Nd, pos: int) -> None:
    """tcpdump's default print of what it does not decode (not with ``-x``, ``-X``, ``-q``)."""
    if not nd.opts.silent_default and nd.end > pos:
        hex_ascii(nd, pos, nd.end - pos)
