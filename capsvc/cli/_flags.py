"""tcpdump's command-line flags that are not about the text of a packet, for ``read`` and
``capture``: ``-n``, ``-U``, ``-F``, ``--count``, ``--time-stamp-precision``, ``-d``/``-dd``/
``-ddd`` and ``-Z``; the live-only ones (``-B``, ``-y``, ``-L``, ``-D``) are ``capture``'s.

Thin IO module: it reads the ``-F`` file, prints programs and lists, and switches user; what
it prints is built by the pure formatters (``bpf_dump``, ``device_lines``, ``link_type_lines``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from .._errors import CapsvcError
from .._linktypes import LINKTYPE_NAMES
from .._packet import LinkType
from ._common import UsageError, print_error

__all__ = [
    "MAX_FILTER_FILE",
    "add_tcpdump_args",
    "check_tcpdump_args",
    "device_lines",
    "drop_privileges",
    "filter_of",
    "link_type_lines",
    "program_text",
    "read_filter_file",
    "strip_comments",
]

#: The largest -F file read (bytes).
MAX_FILTER_FILE = 1 << 20


def add_tcpdump_args(parser: argparse.ArgumentParser) -> None:
    """Add ``-n``, ``-U``, ``-F``, ``--count``, ``--time-stamp-precision``, ``-d`` and ``-Z``."""
    parser.add_argument(
        "-n",
        dest="numeric",
        action="count",
        default=0,
        help="accepted as in tcpdump (-n, -nn): capsvc never resolves addresses, ports or "
        "protocol numbers to names, so its output is always numeric",
    )
    parser.add_argument(
        "-U",
        dest="packet_buffered",
        action="store_true",
        help="packet-buffered output: write and flush each packet as soon as it is captured "
        "(without it a batch at a time, flushed after each batch and every 0.25 s)",
    )
    parser.add_argument(
        "-F",
        dest="filter_file",
        metavar="FILE",
        help="read the filter expression from FILE ('#' starts a comment to the end of the "
        "line); an expression on the command line is then ignored, as tcpdump does",
    )
    parser.add_argument(
        "--count",
        dest="count_only",
        action="store_true",
        help="print no packets: reading a file, print only how many matched ('N packets' on "
        "standard output, as tcpdump); capturing, only the summary",
    )
    parser.add_argument(
        "--time-stamp-precision",
        dest="precision",
        choices=["micro", "nano"],
        default="nano",
        help="time stamps of the -w pcap file: nano (capsvc's default, magic a1b23c4d) or "
        "micro (tcpdump's default, a1b2c3d4); pcapng always keeps nanoseconds",
    )
    parser.add_argument(
        "-d",
        dest="dump_program",
        action="count",
        default=0,
        help="print the filter's classic BPF program and exit: -d readable, -dd as a C "
        "array, -ddd as decimal numbers (tcpdump's forms)",
    )
    parser.add_argument(
        "-Z",
        dest="user",
        metavar="USER",
        help="once the capture source is open, drop root and run as USER (its groups too); "
        "-w files are then created as USER, as tcpdump does",
    )


def check_tcpdump_args(args: argparse.Namespace) -> None:
    """Refuse what tcpdump's flags cannot mean together.

    Raises:
        UsageError: ``--time-stamp-precision=micro`` with ``--pcapng``.
    """
    if args.precision == "micro" and args.pcapng:
        raise UsageError("--time-stamp-precision micro is for pcap; pcapng keeps nanoseconds")


def strip_comments(text: str) -> str:
    """tcpdump's rule for -F files: from a '#' to the end of its line is blanked out."""
    return "\n".join(line.split("#", 1)[0] for line in text.split("\n"))


def read_filter_file(path: str) -> str:
    """The expression in a -F file, comments removed and words joined by single spaces.

    Raises:
        CapsvcError: the file cannot be read (the message names it).
        UsageError: it is larger than MAX_FILTER_FILE or not UTF-8.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILTER_FILE + 1)
    except OSError as exc:
        raise CapsvcError(f"-F {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILTER_FILE:
        raise UsageError(f"-F {path}: larger than {MAX_FILTER_FILE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"-F {path}: not UTF-8 (byte {exc.start})") from None
    return " ".join(strip_comments(text).split())


def filter_of(args: argparse.Namespace) -> str:
    """The job's filter expression: the -F file's, else the command line's words joined."""
    path = getattr(args, "filter_file", None)
    if path:
        if args.filter:
            print_error(f"warning: -F {path} given: ignoring the expression on the command line")
        return read_filter_file(path)
    return " ".join(args.filter).strip()


def program_text(
    expression: str,
    linktype: LinkType,
    snaplen: int,
    level: int,
    *,
    backend: str = "native",
    live: bool = False,
    interface: str = "",
) -> str:
    """The program ``-d`` (level 1), ``-dd`` (2) or ``-ddd`` (3) prints, as tcpdump prints it.

    For the libpcap backend, libpcap compiles the expression (what it attaches or runs:
    byte for byte tcpdump's output), on the open ``interface`` when ``live``; otherwise
    capsvc's own compiler does, for a live packet socket (``live``: VLAN tags read from the
    kernel's metadata, as libpcap compiles on Linux) or for the frames of a file.

    Raises:
        capsvc.FilterError: the expression is malformed or the link type cannot express it.
    """
    from ..filter import bpf_dump, compile_bpf

    if backend == "libpcap":
        from ..sources.libpcap import compile_bpf_filter, datalink_name_to_val, open_live

        dlt = datalink_name_to_val(LINKTYPE_NAMES.get(int(linktype), (linktype.name, ""))[0])
        if live:
            handle = open_live(interface, snaplen, False, 0.1)
            try:
                if handle.link_type != dlt:
                    handle.set_link_type(dlt)
                program = handle.compile_bpf_filter(expression)
            finally:
                handle.close()
        else:
            program = compile_bpf_filter(dlt, snaplen, expression)
        return bpf_dump(program, level)
    kernel_vlan = live and linktype == LinkType.ETHERNET
    return bpf_dump(compile_bpf(expression, linktype, snaplen, kernel_vlan=kernel_vlan), level)


def link_type_lines(interface: str, kinds: Iterable[LinkType]) -> list[str]:
    """tcpdump -L's listing: a heading, then ``  NAME (Description)`` for each link type, with
    `` (printing not supported)`` after those capsvc's text output does not decode."""
    lines = [f"Data link types for {interface} (use option -y to set):"]
    for kind in kinds:
        name, description = LINKTYPE_NAMES.get(int(kind), (kind.name, kind.name))
        note = "" if kind.name in LinkType.__members__ else " (printing not supported)"
        lines.append(f"  {name} ({description}){note}")
    return lines


_FLAG_WORDS = ((0x2, "Up"), (0x4, "Running"), (0x1, "Loopback"), (0x8, "Wireless"))
_WIRED_STATUS = {0x0: ", Connection status unknown", 0x10: ", Connected", 0x20: ", Disconnected"}
_WIRELESS_STATUS = {0x0: ", Association status unknown", 0x10: ", Associated"}


def device_lines(devices: Iterable[tuple[str, str, int]]) -> list[str]:
    """tcpdump -D's listing of ``(name, description, PCAP_IF_ flags)``: ``1.eth0 [Up,
    Running, Connected]``, ``2.any (Pseudo-device ...) [Up, Running]``, ``5.ifb0 [none]``."""
    lines = []
    for n, (name, description, flags) in enumerate(devices, 1):
        line = f"{n}.{name}" + (f" ({description})" if description else "")
        if flags:
            words = ", ".join(word for bit, word in _FLAG_WORDS if flags & bit) or "none"
            statuses = _WIRELESS_STATUS if flags & 0x8 else _WIRED_STATUS
            if flags & 0x8:
                statuses = {**statuses, 0x20: ", Not associated"}
            line += f" [{words}{statuses.get(flags & 0x30, '')}]"
        lines.append(line)
    return lines


def drop_privileges(args: argparse.Namespace) -> None:
    """``-Z USER``: become the user now (the source is open, the output files are not yet).

    Raises:
        UsageError: no such user; capsvc.PermissionNeededError: the switch failed.
    """
    user = getattr(args, "user", None)
    if not user:
        return
    from ..service._privileges import drop_privileges as become

    try:
        become(user, option="-Z")
    except CapsvcError as exc:
        if "no user named" in str(exc):
            raise UsageError(str(exc)) from exc
        raise
