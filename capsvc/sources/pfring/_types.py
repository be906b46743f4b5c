"""The value types of the PF_RING binding: flags, enums, what a read returns, and device names.

Pure module: no library calls. The enums keep pfring.h's values; ``module_of`` and
``pcap_module_name`` say which PF_RING module a device name selects, the way ``pfring_open``
decides it (by the prefix before the first ``:``).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from ..._errors import OptionError
from . import _ffi as ffi

__all__ = [
    "DEFAULT_MODULE",
    "CaptureInfo",
    "ClusterType",
    "Direction",
    "Flag",
    "NextResult",
    "SocketMode",
    "Stats",
    "module_of",
    "parse_cluster",
    "pcap_module_name",
]

#: The name ``module_of`` gives the kernel module's rings (device names without a prefix).
DEFAULT_MODULE = "pf_ring"

#: The prefixes pfring_open recognises (libpfring 8.9's module list, optional ones included).
_PREFIXED_MODULES = frozenset(
    {"stack", "sysdig", "pcap", "xdp", "fbcard", "nt", "mlx", "zc", "timeline"}
)


class Flag(enum.IntFlag):
    """Flags of ``Ring.open`` (PF_RING_* of pfring.h)."""

    ZC_SYMMETRIC_RSS = ffi.PF_RING_ZC_SYMMETRIC_RSS
    DNA_SYMMETRIC_RSS = ffi.PF_RING_ZC_SYMMETRIC_RSS  # gopacket's older name
    REENTRANT = ffi.PF_RING_REENTRANT
    LONG_HEADER = ffi.PF_RING_LONG_HEADER
    PROMISC = ffi.PF_RING_PROMISC
    TIMESTAMP = ffi.PF_RING_TIMESTAMP
    HW_TIMESTAMP = ffi.PF_RING_HW_TIMESTAMP
    RX_PACKET_BOUNCE = ffi.PF_RING_RX_PACKET_BOUNCE
    ZC_FIXED_RSS_Q_0 = ffi.PF_RING_ZC_FIXED_RSS_Q_0
    STRIP_HW_TIMESTAMP = ffi.PF_RING_STRIP_HW_TIMESTAMP
    DO_NOT_PARSE = ffi.PF_RING_DO_NOT_PARSE
    DO_NOT_TIMESTAMP = ffi.PF_RING_DO_NOT_TIMESTAMP
    USERSPACE_BPF = ffi.PF_RING_USERSPACE_BPF
    TX_BPF = ffi.PF_RING_TX_BPF


class ClusterType(enum.IntEnum):
    """How a cluster spreads packets over its rings (C ``cluster_type``)."""

    PER_FLOW = 0
    ROUND_ROBIN = 1
    PER_FLOW_2_TUPLE = 2
    PER_FLOW_4_TUPLE = 3
    PER_FLOW_5_TUPLE = 4
    PER_FLOW_TCP_5_TUPLE = 5
    PER_INNER_FLOW = 6
    PER_INNER_FLOW_2_TUPLE = 7
    PER_INNER_FLOW_4_TUPLE = 8
    PER_INNER_FLOW_5_TUPLE = 9
    PER_INNER_FLOW_TCP_5_TUPLE = 10
    PER_FLOW_IP_5_TUPLE = 11
    PER_INNER_FLOW_IP_5_TUPLE = 12
    PER_FLOW_IP_WITH_DUP_TUPLE = 13

    @classmethod
    def parse(cls, text: str) -> ClusterType:
        """Return the type named by ``text``: a member name in any case, with or without the
        C prefix ``cluster_`` and with ``-`` for ``_`` (``round_robin``, ``per-flow-5-tuple``),
        or its number.

        Raises:
            ValueError: no such cluster type.
        """
        key = text.strip().upper().replace("-", "_").removeprefix("CLUSTER_")
        if key.isdigit():
            return cls(int(key))
        try:
            return cls[key]
        except KeyError:
            names = ", ".join(m.name.lower() for m in cls)
            raise OptionError(f"unknown cluster type {text!r} (one of: {names})") from None


class NextResult(enum.IntEnum):
    """gopacket's pfring NextResult: what ``pfring_recv`` returned to a read, and what capsvc
    does for it. gopacket turns every result but NextOk into an error; capsvc's reads wait for
    a packet and raise a ``PfRingError`` whose ``code`` is the library's return code.

    =======================  ====  ===========================================================
    gopacket                 code  capsvc
    =======================  ====  ===========================================================
    NextOk                      1  the packet is returned (a copy read of the ``pcap:``
                                   module answers 0 with the header filled: also a packet)
    NextNoPacketNonblocking     0  reads wait, so no packet means the wait ended without one
                                   (``pfring_breakloop``, a second of quiet on a live
                                   ``pcap:`` ring): PfRingError, code NO_PKT_AVAILABLE (-3);
                                   at the end of a ``pcap:FILE``: PfRingEndOfFile
    NextError                  -1  PfRingError, code GENERIC (-1)
    NextNotEnabled             -7  pfring.h calls -7 NOT_SUPPORTED: PfRingError naming the
                                   feature and the module; a ring read before ``enable()``
                                   answers RING_NOT_ENABLED (-12), also a PfRingError
    =======================  ====  ===========================================================

    Other codes keep pfring.h's names (``PfRingError.code_name``): INVALID_ARGUMENT (-2) ends
    a zero-copy read of a ``pcap:FILE`` (PfRingEndOfFile) and is an error elsewhere.
    """

    NO_PACKET_NONBLOCKING = 0
    ERROR = -1
    OK = 1
    NOT_ENABLED = -7


class Direction(enum.IntEnum):
    """Which packets a ring captures (C ``packet_direction``)."""

    RECEIVE_AND_TRANSMIT = 0
    RECEIVE_ONLY = 1
    TRANSMIT_ONLY = 2


class SocketMode(enum.IntEnum):
    """Whether a ring sends, receives or both (C ``socket_mode``)."""

    WRITE_AND_READ = 0
    WRITE_ONLY = 1
    READ_ONLY = 2
    MANAGEMENT_ONLY = 3


class CaptureInfo(NamedTuple):
    """What the ring says about one packet.

    Attributes:
        timestamp_ns: capture time in nanoseconds since the epoch.
        capture_length: bytes captured (at most the snapshot length or the buffer's size).
        length: the packet's length on the wire.
        interface_index: the interface the packet came from, 0 when unknown.
    """

    timestamp_ns: int
    capture_length: int
    length: int
    interface_index: int


class Stats(NamedTuple):
    """A ring's counters (``pfring_stats``): packets received and dropped by the ring."""

    received: int
    dropped: int


def parse_cluster(text: str) -> tuple[int, ClusterType]:
    """Parse the command line's ``ID[:TYPE]`` (``"7"``, ``"7:round_robin"``).

    Args:
        text: a cluster id (a non-negative integer), optionally ``:`` and a cluster type name
            or number (see ``ClusterType.parse``); the type defaults to ``PER_FLOW``.

    Returns:
        ``(cluster_id, cluster_type)``, as ``PfRingSource(cluster=...)`` takes it.

    Raises:
        ValueError: the id is no non-negative integer, or the type is unknown.
    """
    ident, _, kind = text.partition(":")
    ident = ident.strip()
    if not ident.isdigit():
        raise OptionError(f"cluster id must be a non-negative integer, not {ident!r}")
    return int(ident), ClusterType.parse(kind) if kind else ClusterType.PER_FLOW


def module_of(device: str) -> str:
    """The PF_RING module a device name selects: ``"pcap"`` for ``pcap:lo``, ``"zc"`` for
    ``zc:eth0``, ``DEFAULT_MODULE`` (the kernel module) for ``eth0``, ``eth0@1``, ``any`` or
    ``default:eth0``."""
    prefix, colon, _ = device.partition(":")
    return prefix if colon and prefix in _PREFIXED_MODULES else DEFAULT_MODULE


def pcap_module_name(device: str) -> str | None:
    """What the ``pcap:`` module opens for ``device`` (a file or an interface name), or None
    when ``device`` selects another module."""
    return device[5:] if module_of(device) == "pcap" else None
