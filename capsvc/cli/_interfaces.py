"""``capsvc interfaces``: the interfaces one can capture on, like ``tcpdump -D``.

One line each: ``INDEX.NAME [Flags] addresses``, then the ``any`` pseudo-interface.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..sources._ifaces import Interface, linktype_for_arphrd, list_interfaces
from ._common import EXIT_OK

__all__ = ["add_parser", "format_interface"]


def add_parser(subparsers: Any) -> None:
    """Register ``capsvc interfaces``."""
    parser = subparsers.add_parser(
        "interfaces",
        help="list the interfaces to capture on (like tcpdump -D)",
        description="List the network interfaces of this namespace with index, flags, link "
        "type and addresses.",
    )
    parser.set_defaults(run=run)


def format_interface(iface: Interface) -> str:
    """One listing line: ``2.eth0 [Up, Running] EN10MB 10.0.0.5/24``."""
    linktype = linktype_for_arphrd(iface.arphrd)
    kind = linktype.name if linktype is not None else "LINUX_SLL2"
    line = f"{iface.ifindex}.{iface.name} [{', '.join(iface.flags)}] {kind}"
    if iface.addresses:
        line += " " + " ".join(iface.addresses)
    return line


def run(_args: argparse.Namespace) -> int:
    """List the interfaces on standard output; returns the exit status."""
    for iface in list_interfaces():
        print(format_interface(iface))
    print("0.any [Up, Running] LINUX_SLL2 (every interface, cooked frames)")
    return EXIT_OK
