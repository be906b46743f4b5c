"""OSI network-layer PDUs as the link types carry them: IS-IS headers (over LLC, Cisco HDLC, PPP,
Frame Relay), and the NLPID of the others.

Pure module (no IO). ``isis_pdu`` reads an IS-IS PDU's common header and the identifiers of its
type-specific header into ``IsisPdu``; None when the bytes are not an IS-IS PDU. It reads only
inside ``data[pos:end]`` and never raises.
"""

from __future__ import annotations

from typing import NamedTuple

from ._const import NLPID_CLNP, NLPID_ESIS, NLPID_ISIS, NLPID_Q933

__all__ = ["ISIS_PDU_NAMES", "NLPID_NAMES", "IsisPdu", "isis_pdu", "system_id"]

#: NLPID -> name, for the OSI PDUs named but not decoded.
NLPID_NAMES = {NLPID_CLNP: "CLNP", NLPID_ESIS: "ES-IS", NLPID_ISIS: "IS-IS", NLPID_Q933: "Q.933"}
#: IS-IS PDU type -> name, as tcpdump prints them.
ISIS_PDU_NAMES = {
    15: "L1 Lan IIH",
    16: "L2 Lan IIH",
    17: "p2p IIH",
    18: "L1 LSP",
    20: "L2 LSP",
    24: "L1 CSNP",
    25: "L2 CSNP",
    26: "L1 PSNP",
    27: "L2 PSNP",
}
_COMMON_LEN = 8


class IsisPdu(NamedTuple):
    """An IS-IS PDU: its ``pdu_type`` and, when captured, the identifiers of its header.

    ``source`` is the source ID (6 bytes for IIHs, 7 for SNPs), ``lan_id`` the LAN ID of LAN
    IIHs (7 bytes), ``priority`` their priority; LSPs have ``lsp_id`` (8 bytes), ``seq`` and
    ``lifetime``. ``truncated`` is True when the captured bytes end inside the header.
    """

    pdu_type: int
    source: bytes | None
    lan_id: bytes | None
    priority: int | None
    lsp_id: bytes | None
    seq: int | None
    lifetime: int | None
    truncated: bool


def system_id(raw: bytes) -> str:
    """An IS-IS system ID as tcpdump prints it: ``1111.2222.3333``, then ``.NN`` for a
    pseudonode byte and ``-NN`` for an LSP number."""
    text = ".".join(raw[i : i + 2].hex() for i in range(0, min(len(raw), 6), 2))
    if len(raw) > 6:
        text += f".{raw[6]:02x}"
    if len(raw) > 7:
        text += f"-{raw[7]:02x}"
    return text


def isis_pdu(data: bytes, pos: int, end: int) -> IsisPdu | None:
    """Read the IS-IS PDU at ``pos`` (its NLPID byte, 0x83); None when it is none."""
    if end - pos < 5 or data[pos] != NLPID_ISIS:
        return None
    if end - pos < _COMMON_LEN:
        return IsisPdu(-1, None, None, None, None, None, None, True)
    kind = data[pos + 4] & 0x1F
    body = pos + _COMMON_LEN
    source = lan_id = lsp_id = None
    priority = seq = lifetime = None
    need = 0
    if kind in (15, 16, 17):
        need = 7 if kind == 17 else 19
        if body + need <= end:
            source = data[body + 1 : body + 7]
            if kind != 17:
                priority = data[body + 11] & 0x7F
                lan_id = data[body + 12 : body + 19]
    elif kind in (18, 20):
        need = 16
        if body + need <= end:
            lifetime = data[body + 2] << 8 | data[body + 3]
            lsp_id = data[body + 4 : body + 12]
            seq = int.from_bytes(data[body + 12 : body + 16], "big")
    elif kind in (24, 25, 26, 27):
        need = 9
        if body + need <= end:
            source = data[body + 2 : body + 9]
    return IsisPdu(kind, source, lan_id, priority, lsp_id, seq, lifetime, body + need > end)
