"""IPX in tcpdump's words:
``IPX 0000ff11.5f:a5:00:00:00:00.ffff > 00000001.ff:ff:ff:ff:ff:ff.0453:`` (source, then
destination, each as network.node.socket).

Pure module. The header is 30 bytes (checksum, length, transport control, packet type, then
destination and source as network(4) node(6) socket(2)); the payload is named by the
destination socket as tcpdump's ipx_decode names it, with its length (the header's length
field less the header): ``ipx-ncp 40``, ``ipx-#5b00 65505``. The SAP, RIP and NetBIOS payloads
tcpdump decodes further are named only.
"""

from __future__ import annotations

from ._nd import Nd

__all__ = ["ipx_print"]

_HEADER = 30
#: Destination socket -> the name tcpdump prints for its payload.
_SOCKETS = {
    0x0451: "ipx-ncp",
    0x0452: "ipx-sap",
    0x0453: "ipx-rip",
    0x0455: "ipx-netbios",
    0x0456: "ipx-diags",
    0x0553: "ipx-nwlink-dgm",
    0x85BE: "ipx-eigrp",
}


def ipx_print(nd: Nd, pos: int, length: int) -> None:
    """An IPX packet at ``pos``; ``IPX `` first unless ``-e`` printed the link header (which
    then says ``IPX 802.3: ``). ``length`` is unused: the header's own length counts."""
    nd.proto = "ipx"
    if not nd.opts.link:
        nd.put("IPX ")
    nd.put(f"{_address(nd, pos + 18)} > ")
    nd.put(f"{_address(nd, pos + 6)}: ")
    size = nd.u16(pos + 2)
    if size < _HEADER:
        nd.put(f"[length {size} < {_HEADER}] (invalid)")
        return
    socket = nd.u16(pos + 16)
    name = _SOCKETS.get(socket, f"ipx-#{socket:x}")
    nd.put(f"{name} {size - _HEADER}")


def _address(nd: Nd, pos: int) -> str:
    """``network.node.socket`` as ipxaddr_string and the socket print it."""
    return f"{nd.u32(pos):08x}.{nd.mac(pos + 4)}.{nd.u16(pos + 10):04x}"
