"""Network interfaces: their index, flags, addresses and the link type capturing on them gives.

Thin IO module: reads /sys/class/net and asks ``ip -j addr`` for addresses. The mapping from an
ARPHRD type to a link type is a plain table (``linktype_for_arphrd``).
"""

from __future__ import annotations

import array
import errno
import fcntl
import json
import os
import socket
import struct
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
    "pcap_devices",
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


#: PCAP_IF_ flags of pcap_findalldevs, as tcpdump -D shows them.
PCAP_IF_LOOPBACK = 0x1
PCAP_IF_UP = 0x2
PCAP_IF_RUNNING = 0x4
PCAP_IF_WIRELESS = 0x8
PCAP_IF_CONNECTED = 0x10
PCAP_IF_DISCONNECTED = 0x20
PCAP_IF_NOT_APPLICABLE = 0x30
ANY_DESCRIPTION = "Pseudo-device that captures on all interfaces"


def pcap_devices() -> list[tuple[str, str, int]]:
    """The interfaces to capture on as libpcap's pcap_findalldevs lists them on Linux:
    ``(name, description, PCAP_IF_ flags)``, "any" among them, in libpcap's order (running
    before not, up before down, connected before disconnected, loopback after the rest, then
    by the number ending the name, "any" after every numbered one; ties by index).

    The flags are libpcap's: up and running from the kernel's interface flags, wireless where
    /sys says so, and the connection status from ethtool's link state (not applicable for
    loopback and drivers that do not tell).
    """
    found: list[tuple[str, str, int]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in sorted(socket.if_nameindex()):
            try:
                iff = _ioctl_flags(sock, name)
            except OSError:
                continue  # gone while listing
            flags = PCAP_IF_UP if iff & IFF_UP else 0
            flags |= PCAP_IF_RUNNING if iff & IFF_RUNNING else 0
            if os.path.isdir(os.path.join(SYS_NET, name, "wireless")):
                flags |= PCAP_IF_WIRELESS
            if iff & IFF_LOOPBACK:
                flags |= PCAP_IF_LOOPBACK | PCAP_IF_NOT_APPLICABLE
            else:
                flags |= _link_status(sock, name)
            found.append((name, "", flags))
    found.append(("any", ANY_DESCRIPTION, PCAP_IF_UP | PCAP_IF_RUNNING | PCAP_IF_NOT_APPLICABLE))
    return sorted(found, key=_merit)  # stable: ties keep the index order


_SIOCGIFFLAGS = 0x8913
_SIOCETHTOOL = 0x8946
_ETHTOOL_GLINK = 0xA


def _ioctl_flags(sock: socket.socket, name: str) -> int:
    """The interface's flags as the kernel reports them (IFF_RUNNING included, unlike /sys)."""
    ifreq = struct.pack("16sh22x", name.encode(), 0)
    flags: int = struct.unpack_from("16sH", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, ifreq))[1]
    return flags


def _link_status(sock: socket.socket, name: str) -> int:
    """libpcap's connection status: ethtool's link state (ETHTOOL_GLINK); not applicable where
    the driver does not say (EOPNOTSUPP, EINVAL), unknown (0) on any other failure."""
    value = array.array("I", [_ETHTOOL_GLINK, 0])
    ifreq = struct.pack("16sP16x", name.encode(), value.buffer_info()[0])
    try:
        fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, ifreq)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            return PCAP_IF_NOT_APPLICABLE
        return 0
    return PCAP_IF_CONNECTED if value[1] else PCAP_IF_DISCONNECTED


def _merit(device: tuple[str, str, int]) -> int:
    """libpcap's figure of merit: lower sorts first."""
    name, _, flags = device
    if name == "any":
        n = 0x0FFFFFFF  # after every other interface that is not a loopback one
    else:
        digits = len(name) - len(name.rstrip("0123456789"))
        n = int(name[-digits:]) & 0x0FFFFFFF if digits else 0
    if not flags & PCAP_IF_RUNNING:
        n |= 0x80000000
    if not flags & PCAP_IF_UP:
        n |= 0x40000000
    if not flags & PCAP_IF_WIRELESS and flags & 0x30 == PCAP_IF_DISCONNECTED:
        n |= 0x20000000
    if flags & PCAP_IF_LOOPBACK:
        n |= 0x10000000
    return n
