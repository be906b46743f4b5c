"""Open a live source by backend name: "afpacket" (built in), "libpcap" or "pfring" (lazy)."""

from __future__ import annotations

import importlib
from typing import Any, cast

from .._errors import BackendUnavailableError, OptionError
from .._packet import SNAPLEN_DEFAULT, Direction
from ._base import Source

__all__ = ["BACKENDS", "direction_of", "open_live_source"]

#: Backend names ``open_live_source`` accepts.
BACKENDS = ("afpacket", "libpcap", "pfring")

_DIRECTIONS = {"in": Direction.INBOUND, "out": Direction.OUTBOUND, "inout": Direction.UNKNOWN}


def direction_of(direction: str) -> Direction:
    """The Direction for "in", "out" or "inout" (UNKNOWN: both), as libpcap and PF_RING take it.

    Raises:
        ValueError: any other word.
    """
    try:
        return _DIRECTIONS[direction]
    except KeyError:
        raise OptionError(f"direction must be 'in', 'out' or 'inout': {direction!r}") from None


def _backend_module(module: str, backend: str) -> Any:
    try:
        return importlib.import_module(f".{module}", __package__)
    except ImportError as exc:
        raise BackendUnavailableError(f"the {backend} backend is not available: {exc}") from exc


def _backend_class(modules: tuple[str, ...], name: str, backend: str) -> Any:
    """``name`` from the first of ``modules`` that has it (the public module first)."""
    for module in modules:
        found = getattr(_backend_module(module, backend), name, None)
        if found is not None:
            return found
    raise BackendUnavailableError(f"the {backend} backend is not available: no {name}")


_PFRING_DIRECTIONS = {"in": "RECEIVE_ONLY", "out": "TRANSMIT_ONLY", "inout": "RECEIVE_AND_TRANSMIT"}


def open_live_source(
    backend: str,
    interface: str,
    *,
    snaplen: int = SNAPLEN_DEFAULT,
    promisc: bool = True,
    filter: str | None = None,
    direction: str = "inout",
    **options: Any,
) -> Source:
    """Open a live capture on ``interface`` with the named backend.

    Args:
        backend: "afpacket" (AF_PACKET TPACKET_V3 ring, needs only the kernel), "libpcap" or
            "pfring".
        interface: the interface name ("any" for every interface where the backend allows it).
        snaplen: bytes kept of each packet; 0 means 262144.
        promisc: promiscuous mode.
        filter: a filter expression applied in the kernel or library; None captures everything.
        direction: "in", "out" or "inout".
        **options: backend-specific keywords, passed on: for afpacket ``cooked``, ``fanout``,
            ``ring_size``, ``block_size``, ``block_timeout_ms``, ``userspace_fallback``; for
            libpcap ``timeout_ms``, ``buffer_size``, ``immediate``; for pfring ``flags``,
            ``cluster`` (``(id, ClusterType)`` or the command line's ``"ID[:TYPE]"``),
            ``sampling_rate``.

    Returns:
        The open source.

    Raises:
        ValueError: an unknown backend or direction.
        capsvc.BackendUnavailableError: the backend's library cannot be loaded.
        capsvc.CaptureError: the backend could not open the interface.
    """
    snaplen = snaplen or SNAPLEN_DEFAULT
    if backend == "afpacket":
        from .afpacket._source import AfPacketSource

        direction_of(direction)
        return AfPacketSource(
            interface,
            snaplen=snaplen,
            promisc=promisc,
            filter=filter,
            direction=direction,
            **options,
        )
    if backend == "libpcap":
        cls = _backend_class(("libpcap", "_libpcap_source"), "LibpcapSource", backend)
        return cast(
            Source,
            cls(
                interface,
                snaplen=snaplen,
                promisc=promisc,
                filter=filter,
                direction=direction_of(direction),
                **options,
            ),
        )
    if backend == "pfring":
        direction_of(direction)
        pfring = _backend_module("pfring", backend)
        cls = _backend_class(("pfring", "_pfring_source"), "PfRingSource", backend)
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
                direction=pfring.Direction[_PFRING_DIRECTIONS[direction]],
                **options,
            ),
        )
    raise OptionError(f"unknown backend {backend!r} (one of: {', '.join(BACKENDS)})")
