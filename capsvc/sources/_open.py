"""Open a live source by backend name: "afpacket" (built in), "libpcap" or "pfring" (lazy)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, cast

from .._errors import BackendUnavailableError, OptionError
from .._packet import SNAPLEN_DEFAULT, Direction, LinkType
from ._base import Source

if TYPE_CHECKING:
    from ..filter import Node

__all__ = ["BACKENDS", "link_types", "open_live_source"]

#: Backend names ``open_live_source`` accepts.
BACKENDS = ("afpacket", "libpcap", "pfring")


def _backend_module(module: str, backend: str) -> Any:
    try:
        return importlib.import_module(f".{module}", __package__)
    except ImportError as exc:
        raise BackendUnavailableError(f"the {backend} backend is not available: {exc}") from exc


_PFRING_DIRECTIONS = {
    Direction.INBOUND: "RECEIVE_ONLY",
    Direction.OUTBOUND: "TRANSMIT_ONLY",
    Direction.UNKNOWN: "RECEIVE_AND_TRANSMIT",
}


def open_live_source(
    backend: str,
    interface: str,
    *,
    snaplen: int = SNAPLEN_DEFAULT,
    promisc: bool = True,
    filter: str | Node | None = None,
    direction: Direction | str = Direction.UNKNOWN,
    buffer_size: int = 0,
    linktype: LinkType | None = None,
    **options: Any,
) -> Source:
    """Open a live capture on ``interface`` with the named backend.

    Args:
        backend: "afpacket" (AF_PACKET TPACKET_V3 ring, needs only the kernel), "libpcap" or
            "pfring".
        interface: the interface name ("any" for every interface where the backend allows it).
        snaplen: bytes kept of each packet; 0 means 262144.
        promisc: promiscuous mode.
        filter: a filter expression (or a parsed ``capsvc.filter.Node``) applied in the kernel
            or library; None captures everything.
        direction: INBOUND, OUTBOUND or UNKNOWN (both; default), or tcpdump's ``-Q`` words
            "in", "out", "inout" (``Direction.parse``).
        buffer_size: the capture buffer in bytes, as ``tcpdump -B`` (which counts KiB); 0
            keeps the backend's default. afpacket: the TPACKET_V3 ring's total size, rounded
            up to whole blocks as libpcap rounds its own ring (at least 2 blocks; overrides
            ``ring_size``); libpcap: ``pcap_set_buffer_size``; pfring: refused (PF_RING's ring
            is sized by its kernel module's ``min_num_slots``).
        linktype: the link type to capture as (tcpdump's ``-y``), one of ``link_types``;
            None keeps the interface's default. afpacket: the interface's own or LINUX_SLL2
            (cooked); libpcap: any the device offers (``pcap_set_datalink``); pfring: refused.
        **options: backend-specific keywords, passed on: for afpacket ``cooked``, ``fanout``,
            ``ring_size``, ``block_size``, ``block_timeout_ms``, ``userspace_fallback``; for
            libpcap ``timeout_ms``, ``buffer_size``, ``immediate``; for pfring ``flags``,
            ``cluster`` (``(id, ClusterType)`` or the command line's ``"ID[:TYPE]"``),
            ``sampling_rate``.

    Returns:
        The open source.

    Raises:
        capsvc.OptionError: an unknown backend or direction.
        capsvc.BackendUnavailableError: the backend's library cannot be loaded.
        capsvc.CaptureError: the backend could not open the interface.
    """
    snaplen = snaplen or SNAPLEN_DEFAULT
    wanted = Direction.parse(direction)
    if buffer_size < 0:
        raise OptionError(f"buffer_size must not be negative: {buffer_size}")
    if backend == "afpacket":
        from .afpacket import AfPacketSource
        from .afpacket._source import BLOCK_SIZE_DEFAULT

        if buffer_size:
            # A ring of about buffer_size (tcpdump's -B), in at least 4 blocks of a power of
            # two from 64 KiB up to the default block (a smaller ring would be 2 huge blocks).
            block = int(options.get("block_size", 0)) or max(
                2**16, min(BLOCK_SIZE_DEFAULT, 1 << max(0, (buffer_size // 4).bit_length() - 1))
            )
            options["block_size"] = block
            options["ring_size"] = max(2, -(-buffer_size // block)) * block
        if linktype is not None:
            offered = link_types(backend, interface)
            if linktype not in offered:
                raise OptionError(_not_offered(linktype, interface, backend, offered))
            if linktype == LinkType.LINUX_SLL2:
                options["cooked"] = True

        return AfPacketSource(
            interface,
            snaplen=snaplen,
            promisc=promisc,
            filter=filter,
            direction=wanted,
            **options,
        )
    if backend == "libpcap":
        libpcap = _backend_module("libpcap", backend)
        if buffer_size:
            options["buffer_size"] = buffer_size
        if linktype is not None:
            options["link_type"] = libpcap.datalink_name_to_val(_name(linktype))
        return cast(
            Source,
            libpcap.LibpcapSource(
                interface,
                snaplen=snaplen,
                promisc=promisc,
                filter=filter,
                direction=wanted,
                **options,
            ),
        )
    if backend == "pfring":
        if linktype is not None:
            raise OptionError("the pfring backend captures Ethernet frames only (no -y)")
        if buffer_size:
            raise OptionError(
                "the pfring backend takes no buffer size: PF_RING's ring is sized by its "
                "kernel module (min_num_slots)"
            )
        pfring = _backend_module("pfring", backend)
        cls = pfring.PfRingSource
        cluster = options.pop("cluster", None)
        if isinstance(cluster, str):
            cluster = pfring.parse_cluster(cluster)
        options.setdefault("flags", pfring.Flag.PROMISC if promisc else pfring.Flag(0))
        return cast(
            Source,
            cls(
                interface,
                snaplen=snaplen,
                filter=filter,
                cluster=cluster,
                direction=pfring.Direction[_PFRING_DIRECTIONS[wanted]],
                **options,
            ),
        )
    raise OptionError(f"unknown backend {backend!r} (one of: {', '.join(BACKENDS)})")


def link_types(backend: str, interface: str) -> list[LinkType]:
    """The link types a backend can capture ``interface`` as (tcpdump's ``-L``): for afpacket
    the interface's own (Ethernet, or RAW for a tun device; the default) and LINUX_SLL2
    (cooked; the only one for "any" and for interfaces without a link type of their own); for
    libpcap what the device offers, in libpcap's order (``pcap_list_datalinks``, opening the
    device); for pfring Ethernet.

    Raises:
        capsvc.NoSuchInterfaceError: there is no such interface (afpacket).
        capsvc.OptionError: an unknown backend.
        capsvc.BackendUnavailableError, capsvc.CaptureError: libpcap cannot open the device.
    """
    if backend == "afpacket":
        from ._ifaces import arphrd_of, linktype_for_arphrd

        own = None if interface == "any" else linktype_for_arphrd(arphrd_of(interface))
        return [own, LinkType.LINUX_SLL2] if own is not None else [LinkType.LINUX_SLL2]
    if backend == "libpcap":
        libpcap = _backend_module("libpcap", backend)
        handle = libpcap.open_live(interface, 0, False, 0.1)
        try:
            dlts = [d.value for d in handle.list_data_links()]
        finally:
            handle.close()
        found: list[LinkType] = []
        for dlt in dlts:
            kind = LinkType.RAW if dlt in (12, 14) else LinkType(dlt)
            if kind not in found:
                found.append(kind)
        return found
    if backend == "pfring":
        return [LinkType.ETHERNET]
    raise OptionError(f"unknown backend {backend!r} (one of: {', '.join(BACKENDS)})")


def _name(kind: LinkType) -> str:
    from .._linktypes import LINKTYPE_NAMES

    return LINKTYPE_NAMES.get(int(kind), (kind.name, ""))[0]


def _not_offered(kind: LinkType, interface: str, backend: str, offered: list[LinkType]) -> str:
    names = ", ".join(_name(k) for k in offered)
    return f"{interface} cannot be captured as {_name(kind)} with {backend} (it offers {names})"
