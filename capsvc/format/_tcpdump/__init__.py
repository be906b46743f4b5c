"""tcpdump's text format: each packet printed as ``tcpdump -n`` prints it.

Pure package (no IO; the clock is read only to turn time stamps into local time). The rule it
keeps: ``TcpdumpFormatter.format`` returns tcpdump's text for every input and never raises.
The printers follow tcpdump's structure (one module per protocol family, as its print-*.c
files): each reads through ``Nd``'s bounded reads, and a read past the captured bytes ends the
packet with tcpdump's truncation marker (`` [|tcp]``). What capsvc does not decode prints as
tcpdump prints an unknown protocol at that layer (`` ip-proto-89 40``, ``UDP, length 12``, a hex
dump of an unknown ethertype), so lines stay comparable byte for byte with tcpdump's.

The line: time stamp (``-t`` styles), link-level header (``-e``), network and transport
layers, payload summary; ``-x``/``-xx``/``-X``/``-XX``/``-A`` dumps follow on lines of their own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ...decode._link import has_decoder
from ...decode._tcpseq import DEFAULT_MAX_FLOWS, TcpSeqTable
from ._hex import ascii_dump, hex_ascii, hex_dump
from ._link import LINK_PRINTERS, generic_print
from ._nd import Cut, Nd, Options

__all__ = ["STAMP_STYLES", "TcpdumpFormatter"]

#: Time stamp styles by the number of ``-t`` given: 0 the default (local ``HH:MM:SS.ffffff``),
#: 1 none, 2 seconds since the epoch, 3 delta from the previous packet, 4 date and time,
#: 5 delta from the first packet.
STAMP_STYLES = (0, 1, 2, 3, 4, 5)
#: tcpdump's largest snapshot length; longer records are called invalid.
MAXIMUM_SNAPLEN = 262144
_INT_MAX = 2**31 - 1
#: What a malformed field can raise below the printers' own checks; never shown to a user.
_ERRORS = (IndexError, ValueError, UnicodeError, OverflowError, KeyError)


class TcpdumpFormatter:
    """Formats frames of one link type as tcpdump prints them.

    Args:
        linktype: the frames' link type (a LinkType or pcap LINKTYPE_ number).
        verbose: ``-v`` count (0 to 3): IP header fields, checksums, more protocol detail.
        quiet: ``-q``: less protocol detail (``tcp 78`` for a TCP segment).
        link: ``-e``: print the link-level header (MAC addresses, ethertype, VLAN tags).
        absolute: ``-S``: absolute TCP sequence numbers (relative is the default).
        stamp: time stamp style, the number of ``-t`` flags (``STAMP_STYLES``); 0 by default.
        utc: print time stamps in UTC rather than local time.
        nano: print time stamps with nanoseconds (``--time-stamp-precision nano``).
        hex: ``-x`` count: 1 dumps the packet after its link header in hex, 2 with it.
        hex_ascii: ``-X`` count: as ``hex``, with ASCII beside the hex (wins over ``hex``).
        ascii: ``-A``: the packet after its link header as text.
        number: ``-#``: each line starts with the packet's number (from 1).
        interfaces: interface index -> name, for the Linux cooked v2 header's interface
            (``-i any``); an index it lacks prints ``?``, as tcpdump does for an unknown one.
        max_flows: TCP connections remembered for relative sequence numbers (least recently
            seen forgotten first); default 4096.
    """

    def __init__(
        self,
        linktype: int,
        *,
        verbose: int = 0,
        quiet: bool = False,
        link: bool = False,
        absolute: bool = False,
        stamp: int = 0,
        utc: bool = False,
        nano: bool = False,
        hex: int = 0,
        hex_ascii: int = 0,
        ascii: bool = False,
        number: bool = False,
        interfaces: Mapping[int, str] | None = None,
        max_flows: int = DEFAULT_MAX_FLOWS,
    ) -> None:
        self.linktype = linktype & 0x03FFFFFF
        self.options = Options(
            TcpSeqTable(max_flows),
            verbose=verbose,
            quiet=quiet,
            link=link,
            absolute=absolute,
            silent_default=bool(hex or hex_ascii or quiet),
        )
        self.stamp = stamp
        self.utc = utc
        self.nano = nano
        self.hex = hex
        self.hex_ascii = hex_ascii
        self.ascii = ascii
        self.number = number
        self.interfaces = interfaces
        self.count = 0
        self._first: int | None = None
        self._previous: int | None = None
        self._sec: int | None = None
        self._clock = ""
        printer = LINK_PRINTERS.get(self.linktype)
        if printer is None:
            printer = generic_print(self.linktype) if has_decoder(self.linktype) else None
        self._printer = printer

    def format(self, ts_ns: int, data: bytes, wire_len: int, direction: int = 0) -> str:
        """The text of one frame, without a final newline (dumps add lines of their own).

        Args:
            ts_ns: capture time in nanoseconds since the epoch.
            data: the captured bytes.
            wire_len: the frame's length on the wire.
            direction: unused (tcpdump prints the direction only where the link header
                carries it); kept so this formatter and the default one are interchangeable.
        """
        self.count += 1
        head = f"{self.count:5d}  " if self.number else ""
        caplen = len(data)
        problems = []
        if caplen == 0:
            problems.append(" caplen==0")
        if wire_len == 0:
            problems.append(" len==0")
        elif wire_len < caplen:
            problems.append(f" len({wire_len}) < caplen({caplen})")
        if caplen > MAXIMUM_SNAPLEN:
            problems.append(f" caplen({caplen}) > {MAXIMUM_SNAPLEN}")
        if wire_len > MAXIMUM_SNAPLEN:
            problems.append(f" len({wire_len}) > {MAXIMUM_SNAPLEN}")
        if problems:
            return f"{head}[Invalid header:{','.join(problems)}]"
        nd = Nd(data, self.options)
        try:
            if self._printer is None:
                nd.put(f"[|link {self.linktype}]")
            else:
                self._printer(nd, wire_len, self.interfaces)
        except Cut:
            nd.trunc()
            nd.hdrlen = 0
        except _ERRORS:
            nd.put(" [|malformed]")
            nd.hdrlen = 0
        nd.end = caplen
        self._dump(nd, caplen)
        return head + self._stamp(ts_ns) + "".join(nd.out)

    def _dump(self, nd: Nd, caplen: int) -> None:
        hdrlen = min(nd.hdrlen, caplen)
        if self.hex_ascii:
            if self.hex_ascii > 1:
                hex_ascii(nd, 0, caplen)
            elif caplen > hdrlen:
                hex_ascii(nd, hdrlen, caplen - hdrlen)
        elif self.hex:
            if self.hex > 1:
                hex_dump(nd, 0, caplen)
            elif caplen > hdrlen:
                hex_dump(nd, hdrlen, caplen - hdrlen)
        elif self.ascii and caplen > hdrlen:
            ascii_dump(nd, hdrlen, caplen - hdrlen)

    def _stamp(self, ts_ns: int) -> str:
        """The time stamp and the space after it, in the chosen style."""
        style = self.stamp
        if style == 1:
            return ""
        sec, frac_ns = divmod(ts_ns, 1_000_000_000)
        frac = f"{frac_ns:09d}" if self.nano else f"{frac_ns // 1000:06d}"
        if style in (3, 5):
            if self._first is None:
                self._first = ts_ns
            base = self._previous if style == 3 and self._previous is not None else self._first
            self._previous = ts_ns
            delta = ts_ns - base
            sign = "-" if delta < 0 else " "
            dsec, dfrac = divmod(abs(delta), 1_000_000_000)
            part = f"{dfrac:09d}" if self.nano else f"{dfrac // 1000:06d}"
            return f"{sign}{dsec // 3600:02d}:{dsec % 3600 // 60:02d}:{dsec % 60:02d}.{part} "
        if sec > _INT_MAX or sec < 0:
            return "[Error converting time] "
        if style == 2:
            return f"{sec}.{frac} "
        if style == 4:
            return f"{self._date(sec)}.{frac} "
        if sec != self._sec:
            self._clock = self._strftime("%H:%M:%S", sec)
            self._sec = sec
        return f"{self._clock}.{frac} "

    def _date(self, sec: int) -> str:
        return self._strftime("%Y-%m-%d %H:%M:%S", sec)

    def _strftime(self, form: str, sec: int) -> str:
        try:
            parts = time.gmtime(sec) if self.utc else time.localtime(sec)
            return time.strftime(form, parts)
        except (OverflowError, OSError, ValueError):
            return "[Error converting time]"
