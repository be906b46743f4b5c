"""Tunnels in tcpdump's words: GRE (print-gre.c: ``GREv0, key=0x1, seq 7, length 92: IP ...``),
VXLAN (``VXLAN, flags [I] (0x08), vni 100`` and the inner frame on the next line) and Geneve
(``Geneve, Flags [none], vni 0x1389: IP6 ...``).

Pure module. Version 0 prints its optional fields and then the packet it carries (IPv4, IPv6,
or an Ethernet frame for transparent bridging); a payload type capsvc does not decode prints
``gre-proto-0x....`` as tcpdump does for one it does not (ERSPAN among them). Version 1 (PPTP's
enhanced GRE) prints its call, sequence and acknowledgement numbers.
"""

from __future__ import annotations

from ._nd import PRINTERS, Nd

__all__ = ["geneve_print", "gre_print", "vxlan_print"]

_CP, _RP, _KP, _SP, _SRP, _AP = 0x8000, 0x4000, 0x2000, 0x1000, 0x0800, 0x0080
_FLAG_NAMES = ((_CP, "checksum present"), (_RP, "routing present"), (_KP, "key present"),
               (_SP, "sequence# present"), (_SRP, "source routing present"),
               (_AP, "ack present"))  # fmt: skip


def _flags(flags: int) -> str:
    return ", ".join(name for bit, name in _FLAG_NAMES if flags & bit) or "none"


def gre_print(nd: Nd, pos: int, length: int) -> None:
    """The GRE packet at ``pos`` of ``length`` bytes (from the IP header)."""
    nd.proto = "gre"
    flags = nd.u16(pos)
    version = flags & 7
    nd.put(f"GREv{version}")
    if version not in (0, 1):
        nd.put(" ERROR: unknown-version")
        return
    verbose = nd.opts.verbose
    if verbose:
        nd.put(f", Flags [{_flags(flags)}]")
    proto = nd.u16(pos + 2)
    at, left = pos + 4, length - 4
    if version == 0:
        if flags & (_CP | _RP):
            nd.put(f", sum 0x{nd.u16(at):x}, off 0x{nd.u16(at + 2):x}")
            at, left = at + 4, left - 4
        if flags & _KP:
            nd.put(f", key=0x{nd.u32(at):x}")
            at, left = at + 4, left - 4
        if flags & _SP:
            nd.put(f", seq {nd.u32(at)}")
            at, left = at + 4, left - 4
    else:
        if flags & _KP:
            nd.put(f", call {nd.u32(at) & 0xFFFF}")
            at, left = at + 4, left - 4
        if flags & _SP:
            nd.put(f", seq {nd.u32(at)}")
            at, left = at + 4, left - 4
        if flags & _AP:
            nd.put(f", ack {nd.u32(at)}")
            at, left = at + 4, left - 4
        if not flags & _SP:
            nd.put(", no-payload")
    if nd.opts.link:
        nd.put(f", proto {PRINTERS.ethertype_names.get(proto, 'unknown')} (0x{proto:04x})")
    nd.put(f", length {length}")
    if version == 1 and not flags & _SP:
        return
    nd.put("\n\t" if verbose else ": ")
    if version == 0 and proto == 0x0800:
        PRINTERS.ip(nd, at, left)
    elif version == 0 and proto == 0x86DD:
        PRINTERS.ip6(nd, at, left)
    elif version == 0 and proto == 0x6558:
        PRINTERS.ether(nd, at, left)
    else:
        nd.put(f"gre-proto-0x{proto:x}")


def vxlan_print(nd: Nd, pos: int, length: int) -> None:
    """The VXLAN header at ``pos`` (RFC 7348), then the Ethernet frame it carries."""
    nd.proto = "vxlan"
    if length < 8:
        nd.put(" (invalid)")
        return
    flags = nd.u8(pos)
    vni = nd.u32(pos + 4) >> 8
    nd.put(f"VXLAN, flags [{'I' if flags & 0x08 else '.'}] (0x{flags:02x}), vni {vni}\n")
    PRINTERS.ether(nd, pos + 8, length - 8)


_GENEVE_FLAGS = ((0x80, "O"), (0x40, "C"))


def geneve_print(nd: Nd, pos: int, length: int) -> None:
    """The Geneve header at ``pos`` (RFC 8926), then the packet it carries."""
    nd.proto = "geneve"
    nd.put("Geneve")
    nd.need(pos, 8)
    ver_opt = nd.u8(pos)
    if ver_opt >> 6:
        nd.put(f" ERROR: unknown-version {ver_opt >> 6}")
        return
    flags, proto = nd.u8(pos + 1), nd.u16(pos + 2)
    vni, reserved = nd.u32(pos + 4) >> 8, nd.u8(pos + 7)
    nd.put(f", Flags [{''.join(n for b, n in _GENEVE_FLAGS if flags & b) or 'none'}]")
    nd.put(f", vni 0x{vni:x}")
    if reserved:
        nd.put(f", rsvd 0x{reserved:x}")
    if nd.opts.link:
        nd.put(f", proto {PRINTERS.ethertype_names.get(proto, 'unknown')} (0x{proto:04x})")
    at, left = pos + 8, length - 8
    opts = (ver_opt & 0x3F) * 4
    if left < opts:
        nd.put(f" truncated-geneve - {opts - left} bytes missing")
        return
    nd.need(at, opts)
    if opts:
        nd.put(", options")
        if not nd.opts.verbose:
            nd.put(f" [{opts} bytes]")
    at, left = at + opts, left - opts
    nd.put("\n\t" if nd.opts.verbose else ": ")
    if not PRINTERS.ethertype(nd, proto, at, left):
        if proto == 0x6558:
            PRINTERS.ether(nd, at, left)
        else:
            nd.put(f"geneve-proto-0x{proto:x}")
