"""Network interfaces: their index, flags, addresses and the link type capturing on them gives.

Thin IO module: reads /sys/class/net and asks ``ip -j addr`` for addresses. The mapping from an
ARPHRD type to a link type is a plain table (``linktype_for_arphrd``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from typing import NamedTuple

from .._errors import CaptureError, NoSuchInterfaceError
from .._packet import LinkType

__all__ = [
    "ARPHRD_ETHER",
    "ARPHRD_LOOPBACK",
    "ARPHRD_NONE",
    "Interface",
    "arphrd_of",
    "check_interface",
    "interface_flags",
    "linktype_for_arphrd",
    "list_interfaces",
]

SYS_NET = "/sys/class/net"

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 65534

IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_PROMISC = 0x100
IFF_MULTICAST = 0x1000

_FLAG_NAMES = (
    (IFF_UP, "Up"),
    (IFF_RUNNING, "Running"),
    (IFF_LOOPBACK, "Loopback"),
    (IFF_POINTOPOINT, "PointToPoint"),
    (IFF_PROMISC, "Promisc"),
)

_LINKTYPES = {
    ARPHRD_ETHER: LinkType.ETHERNET,
    ARPHRD_LOOPBACK: LinkType.ETHERNET,
    ARPHRD_NONE: LinkType.RAW,
}


class Interface(NamedTuple):
    """One interface as ``capsvc interfaces`` lists it.

    Attributes:
        ifindex: the interface index.
        name: the interface name.
        flags: IFF_ flag names that are set ("Up", "Running", "Loopback", ...).
        addresses: addresses with prefix length ("10.0.0.1/24").
        arphrd: the ARPHRD type (/sys/class/net/NAME/type).
    """

    ifindex: int
    name: str
    flags: tuple[str, ...]
    addresses: tuple[str, ...]
    arphrd: int


def linktype_for_arphrd(arphrd: int) -> LinkType | None:
    """The link type of frames read raw from an interface of ARPHRD type ``arphrd``.

    Returns:
        ETHERNET for ARPHRD_ETHER and ARPHRD_LOOPBACK, RAW for ARPHRD_NONE (tun, WireGuard),
        None for anything else (capture such an interface cooked, as LINUX_SLL2).
    """
    return _LINKTYPES.get(arphrd)


def _read_int(name: str, attr: str) -> int:
    with open(os.path.join(SYS_NET, name, attr), encoding="ascii") as f:
        return int(f.read().strip(), 0)


def arphrd_of(name: str) -> int:
    """The ARPHRD type of interface ``name``.

    Raises:
        NoSuchInterfaceError: there is no such interface.
    """
    try:
        return _read_int(name, "type")
    except (OSError, ValueError) as exc:
        raise NoSuchInterfaceError(name) from exc


def interface_flags(name: str) -> int:
    """The IFF_ flags of interface ``name`` (/sys/class/net/NAME/flags).

    Raises:
        NoSuchInterfaceError: there is no such interface.
    """
    try:
        return _read_int(name, "flags")
    except (OSError, ValueError) as exc:
        raise NoSuchInterfaceError(name) from exc


def check_interface(name: str) -> int:
    """Check that ``name`` exists and is up; return its index.

    Raises:
        NoSuchInterfaceError: no such interface.
        CaptureError: the interface is down (the message says how to
            bring it up).
    """
    if not name or "/" in name or name in (".", ".."):
        raise NoSuchInterfaceError(name)
    try:
        index = socket.if_nametoindex(name)
    except OSError as exc:
        raise NoSuchInterfaceError(name) from exc
    if not interface_flags(name) & IFF_UP:
        raise CaptureError(f"interface {name} is down: bring it up first (ip link set {name} up)")
    return index


def _addresses() -> dict[str, tuple[str, ...]]:
    try:
        proc = subprocess.run(
            ["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=10, check=True
        )
        entries = json.loads(proc.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        addrs = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in entry.get("addr_info", ())
            if "local" in a and "prefixlen" in a
        )
        found[str(entry.get("ifname", ""))] = addrs
    return found


def _carrier(name: str) -> bool:
    try:
        return _read_int(name, "carrier") == 1
    except (OSError, ValueError):
        return False


def list_interfaces() -> list[Interface]:
    """Every interface of this network namespace, by index, with flags and addresses.

    Addresses come from ``ip -j addr``; without iproute2 they are left empty.
    """
    addresses = _addresses()
    result: list[Interface] = []
    for index, name in sorted(socket.if_nameindex()):
        try:
            flags = _read_int(name, "flags")
            arphrd = _read_int(name, "type")
        except (OSError, ValueError):
            continue  # gone while listing
        if flags & IFF_UP and _carrier(name):
            flags |= IFF_RUNNING  # /sys shows the administrative flags only
        names = tuple(label for bit, label in _FLAG_NAMES if flags & bit)
        result.append(Interface(index, name, names, addresses.get(name, ()), arphrd))
    return result
