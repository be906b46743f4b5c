"""``capsvc filter``: check an expression, print it normalized or as a BPF program.

When an expression mixes ``and`` and ``or`` without parentheses, stderr says how it is grouped
(``read as: (tcp or udp) and port 53``): capsvc, like libpcap, gives them equal precedence.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._packet import LinkType
from ..filter import (
    FilterCompileError,
    FilterError,
    bpf_dump,
    compile_bpf,
    parse,
    parse_filter,
    read_as,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``filter`` sub-command on an argparse ``add_subparsers()`` object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "filter",
        help="check a filter expression; print it normalized or compiled to BPF",
        description="Parse a tcpdump-style filter expression and print it normalized, or with "
        "-d the classic BPF program capsvc attaches to sockets (in the form of tcpdump -d). "
        "'and' and 'or' have equal precedence and group from the left, as in tcpdump; when an "
        "expression mixes them without parentheses, stderr shows the grouping. "
        "Exit status 2 when the expression is malformed.",
    )
    p.add_argument("expression", nargs="+", help="the expression (several words are joined)")
    p.add_argument(
        "-d",
        "--dump",
        action="count",
        default=0,
        help="print the BPF program instead of the normalized expression; -dd as a C array, "
        "-ddd as decimal numbers (tcpdump's forms)",
    )
    p.add_argument(
        "--linktype",
        default="ethernet",
        help="link type of the frames (ethernet, raw, linux_sll, linux_sll2, null, loop, ipv4, "
        "ipv6, ppp, ppp_hdlc, c_hdlc, slip, nflog, ieee802_11, ieee802_11_radio; default "
        "ethernet)",
    )
    p.add_argument(
        "-s",
        "--snaplen",
        type=int,
        default=0,
        help="what the program returns for an accepted frame (0: 262144)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``capsvc filter``; returns the exit status (0 ok, 2 bad expression or link type)."""
    expr = " ".join(args.expression)
    try:
        linktype = LinkType.parse(args.linktype)
    except ValueError as exc:
        print(f"capsvc filter: {exc}", file=sys.stderr)
        return 2
    try:
        grouping = read_as(expr)
        if grouping is not None:
            print(f"read as: {grouping}", file=sys.stderr)
        if args.dump:
            print(bpf_dump(compile_bpf(expr, linktype, args.snaplen), args.dump))
            return 0
        node = parse(expr)
        if node is not None:
            try:
                compile_bpf(node, linktype)  # reports what the link type cannot express
            except FilterCompileError as exc:
                if not _matches_in_userspace(expr, linktype):
                    raise
                print(f"capsvc filter: no kernel program: {exc.reason}", file=sys.stderr)
        print("" if node is None else str(node))
    except FilterError as exc:
        print(f"capsvc filter: {exc}", file=sys.stderr)
        return 2
    except RecursionError:  # a parser without a depth limit of its own
        print("capsvc filter: the expression is nested too deeply", file=sys.stderr)
        return 2
    return 0


def _matches_in_userspace(expr: str, linktype: LinkType) -> bool:
    """Whether capsvc's Python matcher takes ``expr`` (``protochain``: no kernel program)."""
    try:
        parse_filter(expr, linktype)
    except FilterError:
        return False
    return True
