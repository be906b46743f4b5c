"""ARP and RARP in tcpdump's words (print-arp.c): ``ARP, Request who-has 10.0.0.2 tell
10.0.0.1, length 28``.

Pure module. Hardware and protocol types other than IPv4 over a hardware address print their
names and sizes only (``ARP, Ethernet (len 6), IPv6 (len 16), length 46``), as tcpdump does
without ``-v``; an unknown operation prints ``Unknown (N)`` and a hex dump of the packet.
"""

from __future__ import annotations

from ._hex import hex_ascii
from ._nd import Cut, Nd

__all__ = ["arp_print"]

_OPS = {
    1: "Request",
    2: "Reply",
    3: "Reverse Request",
    4: "Reverse Reply",
    8: "Inverse Request",
    9: "Inverse Reply",
    10: "NACK Reply",
}
_HARDWARE = {
    1: "Ethernet",
    6: "TokenRing",
    7: "ArcNet",
    15: "FrameRelay",
    19: "ATM (RFC 2225)",
    23: "Strip",
    24: "IEEE 1394",
    32: "InfiniBand",
}
_IP, _TRAIL = 0x0800, 0x1000


def arp_print(nd: Nd, pos: int, length: int) -> None:
    """The ARP packet at ``pos``; ``length`` is the link payload's length (printed)."""
    from ._link import ETHERTYPE_NAMES  # the one table of ethertype names

    nd.proto = "arp"
    nd.need(pos, 8)
    hrd, pro, op = nd.u16(pos), nd.u16(pos + 2), nd.u16(pos + 6)
    if hrd == 19:
        _atm_check(nd, pos)
    hln, pln = nd.u8(pos + 4), nd.u8(pos + 5)
    sha = pos + 8
    spa = sha + hln
    tha = spa + pln
    tpa = tha + hln
    if not nd.has(tpa, pln):
        raise Cut
    if not nd.opts.link:
        nd.put("ARP, ")
    verbose = nd.opts.verbose
    if (pro not in (_IP, _TRAIL)) or pln != 4 or hln == 0 or verbose:
        hardware = _HARDWARE.get(hrd, f"Unknown Hardware ({hrd})")
        protocol = ETHERTYPE_NAMES.get(pro, f"Unknown Protocol (0x{pro:04x})")
        nd.put(f"{hardware} (len {hln}), {protocol} (len {pln})")
        if not verbose:
            nd.put(f", length {length}")
            return
    nd.put(f"{', ' if verbose else ''}{_OPS.get(op, f'Unknown ({op})')} ")

    def paddr(at: int) -> str:
        if pro not in (_IP, _TRAIL):
            return "<wrong proto type>"
        return nd.ip4(at) if pln == 4 else "<wrong len>"

    if op == 1:
        nd.put(f"who-has {paddr(tpa)}")
        if any(nd.data[tha:tpa]):
            nd.put(f" ({nd.mac(tha, hln)})")
        nd.put(f" tell {paddr(spa)}")
    elif op == 2:
        nd.put(f"{paddr(spa)} is-at {nd.mac(sha, hln)}")
    elif op == 3:
        nd.put(f"who-is {nd.mac(tha, hln)} tell {nd.mac(sha, hln)}")
    elif op == 4:
        nd.put(f"{nd.mac(tha, hln)} at {paddr(tpa)}")
    elif op == 8:
        nd.put(f"who-is {nd.mac(tha, hln)} tell {nd.mac(sha, hln)}")
    elif op == 9:
        nd.put(f"{nd.mac(sha, hln)} at {paddr(spa)}")
    else:
        # Unlike an unknown ethertype's, this dump is printed with -x, -X and -q too.
        hex_ascii(nd, pos, nd.end - pos)
        return
    nd.put(f", length {length}")


def _atm_check(nd: Nd, pos: int) -> None:
    """ATM ARP (RFC 2225) lays out its addresses differently; capsvc checks only that they
    were captured (tcpdump's first check) and prints the rest as ARP."""
    nd.need(pos, 12)
    shtl, sstl = nd.u8(pos + 4) & 0x3F, nd.u8(pos + 5) & 0x3F
    spln, thtl = nd.u8(pos + 8), nd.u8(pos + 9) & 0x3F
    tstl, tpln = nd.u8(pos + 10) & 0x3F, nd.u8(pos + 11)
    tpa = pos + 12 + shtl + sstl + spln + thtl + tstl
    if not nd.has(tpa, tpln):
        raise Cut
