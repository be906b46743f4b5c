"""The state of one packet being printed in tcpdump's words, and the bounded reads it makes.

Pure module. The rule it keeps is tcpdump's own: every read is checked against the end of what
was captured (``end``, which an IP header may pull in to the end of its datagram), and a read
past it raises ``Cut``. The formatter catches ``Cut`` once per packet and prints the marker
`` [|proto]`` of the protocol being read when it happened (``proto``), as tcpdump's printers
do when they run out of bytes. ``Cut`` never leaves the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from socket import AF_INET6, inet_ntoa, inet_ntop
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...decode._tcpseq import TcpSeqTable

__all__ = ["PRINTERS", "Cut", "Nd", "Options", "print_char"]


class Cut(Exception):
    """A read ran past the captured bytes (tcpdump's truncation longjmp)."""


class Options:
    """What the command line asks of the printers (tcpdump's flags of the same letters).

    Attributes:
        verbose: ``-v`` count (0 to 3).
        quiet: ``-q``: less protocol detail.
        link: ``-e``: print the link-level header.
        absolute: ``-S``: absolute TCP sequence numbers.
        seqs: the relative sequence number table (unused with ``absolute``).
        silent_default: leave out the hex dump tcpdump prints of what it cannot decode (it
            does with ``-x``, ``-X`` and ``-q``).
    """

    __slots__ = ("absolute", "link", "quiet", "seqs", "silent_default", "verbose")

    def __init__(
        self,
        seqs: TcpSeqTable,
        *,
        verbose: int = 0,
        quiet: bool = False,
        link: bool = False,
        absolute: bool = False,
        silent_default: bool = False,
    ) -> None:
        self.seqs = seqs
        self.silent_default = silent_default
        self.verbose = verbose
        self.quiet = quiet
        self.link = link
        self.absolute = absolute


class Nd:
    """One packet being printed: its bytes, the captured end, the output so far.

    Attributes:
        data: the captured frame.
        end: reads stop here (the captured end, or an IP datagram's end when that is sooner).
        proto: the protocol being printed (its truncation marker's name).
        out: the text printed so far, in pieces.
        hdrlen: the link-level header length (what ``-x`` leaves out).
        opts: the printing options.
    """

    __slots__ = ("_ends", "data", "end", "hdrlen", "opts", "out", "proto")

    def __init__(self, data: bytes, opts: Options) -> None:
        self.data = data
        self.end = len(data)
        self.proto = ""
        self.out: list[str] = []
        self.hdrlen = 0
        self.opts = opts
        self._ends: list[int] = []

    def put(self, text: str) -> None:
        """Print ``text``."""
        self.out.append(text)

    def trunc(self) -> None:
        """Print the truncation marker of the protocol being printed."""
        self.out.append(f" [|{self.proto}]")

    def push(self, end: int) -> None:
        """Read no further than ``end`` until ``pop`` (tcpdump's nd_push_snaplen)."""
        self._ends.append(self.end)
        if end < self.end:
            self.end = end

    def pop(self) -> None:
        """Undo the last ``push``."""
        if self._ends:
            self.end = self._ends.pop()

    def has(self, pos: int, n: int = 1) -> bool:
        """Whether ``n`` bytes at ``pos`` were captured."""
        return pos >= 0 and pos + n <= self.end

    def need(self, pos: int, n: int = 1) -> None:
        """Raise ``Cut`` unless ``n`` bytes at ``pos`` were captured."""
        if pos < 0 or pos + n > self.end:
            raise Cut

    def u8(self, pos: int) -> int:
        """The byte at ``pos``."""
        if pos < 0 or pos >= self.end:
            raise Cut
        return self.data[pos]

    def u16(self, pos: int) -> int:
        """The big-endian 16-bit number at ``pos``."""
        if pos < 0 or pos + 2 > self.end:
            raise Cut
        return self.data[pos] << 8 | self.data[pos + 1]

    def u32(self, pos: int) -> int:
        """The big-endian 32-bit number at ``pos``."""
        if pos < 0 or pos + 4 > self.end:
            raise Cut
        return int.from_bytes(self.data[pos : pos + 4], "big")

    def ip4(self, pos: int) -> str:
        """The IPv4 address at ``pos`` as text."""
        self.need(pos, 4)
        return inet_ntoa(self.data[pos : pos + 4])

    def ip6(self, pos: int) -> str:
        """The IPv6 address at ``pos`` as text."""
        self.need(pos, 16)
        return inet_ntop(AF_INET6, self.data[pos : pos + 16])

    def mac(self, pos: int, n: int = 6) -> str:
        """The ``n``-byte link address at ``pos`` as colon-separated hex."""
        self.need(pos, n)
        return self.data[pos : pos + n].hex(":")

    def left(self, pos: int) -> int:
        """How many bytes were captured from ``pos`` on (0 past the end)."""
        return max(0, self.end - pos)


def print_char(c: int) -> str:
    """tcpdump's fn_print_char: 8-bit bytes as ``M-``, control characters as ``^X``."""
    text = ""
    if c > 0x7F:
        c &= 0x7F
        text = "M-"
    if not 0x20 <= c <= 0x7E:
        return f"{text}^{chr(c ^ 0x40)}"
    return text + chr(c)


def _unset(nd: Nd, pos: int, length: int) -> None:
    raise RuntimeError("capsvc.format._tcpdump: the printers are not loaded (import the package)")


class Printers:
    """The printers an inner layer reaches back to: IP inside GRE or an ICMP error, Ethernet
    and EtherTypes inside GRE. The modules defining them fill them in when imported (the
    package imports them all), so that those layers need not import each other."""

    def __init__(self) -> None:
        self.ip: Callable[[Nd, int, int], None] = _unset
        self.ip6: Callable[[Nd, int, int], None] = _unset
        self.ether: Callable[[Nd, int, int], None] = _unset
        self.ethertype: Callable[[Nd, int, int, int], bool] = lambda nd, kind, pos, length: False
        self.ethertype_names: Mapping[int, str] = {}


PRINTERS = Printers()
