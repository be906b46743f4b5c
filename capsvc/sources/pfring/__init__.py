"""PF_RING through ctypes: the surface of gopacket's ``pfring`` package.

``Ring.open(device, snaplen, flags)`` opens a ring (disabled until ``enable()``); the setters
(BPF filter, cluster, direction, socket mode, sampling rate, application name) configure it;
``read_packet_data``/``read_packet_data_into``/``zero_copy_read_packet_data`` read one packet
each; ``stats()`` reads the ring's counters. Negative return codes become ``PfRingError``
naming the code (NOT_SUPPORTED ones also the feature and the module); the end of a
``pcap:FILE`` is ``PfRingEndOfFile``, a filter the library refuses ``PfRingFilterError`` (a
``capsvc.FilterError``); ``NextResult`` lists gopacket's read results beside what capsvc
raises for each. Timestamps come from ``extended_hdr.timestamp_ns`` when the module
filled it, else from ``ts`` (microseconds). The interface index comes from the long header with
``Flag.LONG_HEADER``, else from the interface name.

The library is found through ``library=``, else ``$CAPSVC_PFRING_LIBRARY``, else the system's
libpfring; without one, ``capsvc.BackendUnavailableError`` says how to install PF_RING.
"""

from ._ffi import PfRingEndOfFile, PfRingError, PfRingFilterError
from ._ring import Ring
from ._source import PfRingSource
from ._types import (
    CaptureInfo,
    ClusterType,
    Direction,
    Flag,
    NextResult,
    SocketMode,
    Stats,
    parse_cluster,
)

__all__ = [
    "CaptureInfo",
    "ClusterType",
    "Direction",
    "Flag",
    "NextResult",
    "PfRingEndOfFile",
    "PfRingError",
    "PfRingFilterError",
    "PfRingSource",
    "Ring",
    "SocketMode",
    "Stats",
    "parse_cluster",
]
