"""Open a live source by backend name: "afpacket" (built in), "libpcap" or "pfring" (lazy)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, cast

from .._errors import BackendUnavailableError, OptionError
from .._packet import SNAPLEN_DEFAULT, Direction
from ._base import Source

if TYPE_CHECKING:
    from ..filter import Node

__all__ = ["BACKENDS", "open_live_source"]

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
    if backend == "afpacket":
        from .afpacket import AfPacketSource

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
