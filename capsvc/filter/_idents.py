"""What an identifier means after its qualifiers: addresses, MAC addresses, ports and names.

Pure. libpcap's readings, as tcpdump users write them: a dotted IPv4 address of one to four parts
is a network of 8 bits per part (``host 10.1`` is ``net 10.1.0.0/16``), a plain number is a whole
32-bit address for ``host`` and a classful network for ``net`` (``net 10`` is ``10.0.0.0/8``), a
MAC address is six hex bytes separated by ``:``, ``.`` or ``-``, three dotted groups of four hex
digits (Cisco's ``abcd.ef00.0003``) or twelve hex digits, and a service name is looked up in the
table shipped with capsvc (never the host's files). Host names are never resolved.
"""

from __future__ import annotations

import re

from ._services import SERVICES

__all__ = ["classful", "dotted", "mac", "service"]

_MAC_SEP = re.compile(r"[0-9A-Fa-f]{1,2}([:.\-])(?:[0-9A-Fa-f]{1,2}\1){4}[0-9A-Fa-f]{1,2}")
_MAC_CISCO = re.compile(r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
_MAC_PLAIN = re.compile(r"[0-9A-Fa-f]{12}")
_DOTTED = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,10}){0,3}")


def mac(text: str) -> bytes | None:
    """The 6 bytes of a MAC address in any of libpcap's spellings, or None."""
    if _MAC_SEP.fullmatch(text):
        return bytes(int(part, 16) for part in re.split(r"[:.\-]", text))
    if _MAC_CISCO.fullmatch(text) or _MAC_PLAIN.fullmatch(text):
        return bytes.fromhex(text.replace(".", ""))
    return None


def dotted(text: str) -> tuple[int, int] | None:
    """A dotted-decimal IPv4 address of 1-4 parts as (value, prefix length), 8 bits a part
    (``10.1`` is (0x0a010000, 16)); None when ``text`` is not one or a part exceeds 255."""
    if not _DOTTED.fullmatch(text):
        return None
    parts = [int(p) for p in text.split(".")]
    if any(p > 255 for p in parts) and len(parts) > 1:
        return None
    if len(parts) == 1:
        return None  # a plain number: see classful() / a whole address
    value = 0
    for p in parts:
        value = value << 8 | p
    bits = 8 * len(parts)
    return value << (32 - bits), bits


def classful(number: int) -> tuple[int, int]:
    """A plain number read as a network, as libpcap does: shifted left a byte at a time until
    its top byte is set, each shift taking 8 bits off the prefix (``10`` is 10.0.0.0/8)."""
    value, bits = number & 0xFFFFFFFF, 32
    while value and not value & 0xFF000000:
        value = (value << 8) & 0xFFFFFFFF
        bits -= 8
    return value, bits if value else 0


def service(name: str, proto: str) -> tuple[int, str] | str:
    """The port of service ``name`` for ``proto`` ("", "tcp", "udp" or "sctp") and the protocol
    it then means ("" for TCP and UDP alike); an error message when there is none.

    As in libpcap: a name listed for TCP only means TCP (``port ssh`` is ``tcp port 22``), for
    both (the same port) any protocol, and asking for the other protocol is an error."""
    found = SERVICES.get(name.lower())
    if found is None:
        return f"unknown port {name!r} (not a number or a known service name)"
    tcp, udp = found
    if proto == "udp":
        return (udp, "udp") if udp >= 0 else f"port {name!r} is tcp"
    if proto == "tcp":
        return (tcp, "tcp") if tcp >= 0 else f"port {name!r} is udp"
    if proto == "sctp":
        if tcp >= 0 and tcp == udp:
            return tcp, "sctp"
        return f"port {name!r} is {'tcp' if tcp >= 0 else 'udp'}"
    if tcp >= 0 and udp >= 0:
        return (tcp, "") if tcp == udp else (tcp, "tcp")
    return (tcp, "tcp") if tcp >= 0 else (udp, "udp")
