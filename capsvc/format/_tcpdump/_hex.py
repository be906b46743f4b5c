"""tcpdump's dumps of packet bytes: ``-x`` (hex), ``-X`` (hex and ASCII), ``-A`` (ASCII) and the
hex and ASCII dump it prints for a payload it does not decode.

Pure module. The layouts are tcpdump's to the byte: each line ``\\n\\t0xOOOO: `` then 16 bytes as
8 groups of 4 hex digits (an odd last byte alone), and with ``-X`` the hex padded to 40
characters, two spaces and the bytes as ASCII (``.`` for anything but a graphic character). A
dump asked for more bytes than were captured stops at the capture's end and ends with the
truncation marker.
"""

from __future__ import annotations

from ._nd import Nd

__all__ = ["ascii_dump", "hex_ascii", "hex_dump", "hex_dump_indent"]

_GRAPH = bytes(b if 0x21 <= b <= 0x7E else 0x2E for b in range(256))
_INDENT = "\n\t"


def _bounded(nd: Nd, pos: int, length: int) -> tuple[int, bool]:
    available = max(0, nd.end - pos)
    if length > available:
        return available, True
    return length, False


def hex_ascii(nd: Nd, pos: int, length: int) -> None:
    """Print ``length`` bytes at ``pos`` in hex and ASCII (``-X``; tcpdump's default dump)."""
    length, cut = _bounded(nd, pos, length)
    data = nd.data
    offset = 0
    out = nd.out
    while offset < length:
        chunk = data[pos + offset : pos + min(offset + 16, length)]
        groups = chunk.hex(" ", -2)
        out.append(
            f"{_INDENT}0x{offset:04x}: {' ' + groups:<40}  {chunk.translate(_GRAPH).decode()}"
        )
        offset += 16
    if cut:
        nd.trunc()


def hex_dump(nd: Nd, pos: int, length: int) -> None:
    """Print ``length`` bytes at ``pos`` in hex (``-x``)."""
    hex_dump_indent(nd, pos, length, _INDENT)


def hex_dump_indent(nd: Nd, pos: int, length: int, indent: str) -> None:
    """``hex_dump`` with each line starting with ``indent`` (tcpdump's print_unknown_data)."""
    length, cut = _bounded(nd, pos, length)
    data = nd.data
    out = nd.out
    for offset in range(0, length, 16):
        chunk = data[pos + offset : pos + min(offset + 16, length)]
        groups = chunk.hex(" ", -2)
        out.append(f"{indent}0x{offset:04x}:  {groups}")
    if cut:
        nd.trunc()


def ascii_dump(nd: Nd, pos: int, length: int) -> None:
    """Print ``length`` bytes at ``pos`` as text (``-A``): graphic characters, spaces, tabs and
    newlines as they are, a carriage return before a newline dropped, anything else ``.``."""
    nd.proto = "ascii"
    length, cut = _bounded(nd, pos, length)
    data = nd.data
    chars = ["\n"]
    for i in range(pos, pos + length):
        c = data[i]
        if c == 0x0D:
            left = pos + length - i - 1
            if left > 1 and data[i + 1] != 0x0A:
                chars.append(".")
        elif 0x21 <= c <= 0x7E or c in (0x09, 0x20, 0x0A):
            chars.append(chr(c))
        else:
            chars.append(".")
    nd.out.append("".join(chars))
    if cut:
        nd.trunc()
