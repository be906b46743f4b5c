"""The Ring: one PF_RING socket through the ffi layer (open, configure, read, stats).

IO module: every call goes to libpfring through ``_ffi``; the values it returns are plain
Python types (``CaptureInfo``, ``Stats``, enums).
"""

from __future__ import annotations

import ctypes
import enum
import os
import socket
import sys
import threading
from types import TracebackType
from typing import Any, NamedTuple, Self

from ..._errors import OptionError
from ..._packet import Direction as PacketDirection
from ..._packet import Packet, PacketBatch
from . import _ffi as ffi
from ._ffi import PfRingError

__all__ = [
    "CaptureInfo",
    "ClusterType",
    "Direction",
    "Flag",
    "PfRingError",
    "Ring",
    "SocketMode",
    "Stats",
    "parse_cluster",
]

#: The snapshot length used when 0 is given.
SNAPLEN_DEFAULT = 262144


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


_NO_FLAGS = Flag(0)


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


def _interface_index(device: str) -> int:
    """The index of the interface a device name reads (``eth0@1`` -> eth0), 0 if unknown."""
    name = device.partition("@")[0]
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def _program_name() -> str:
    return sys.argv[0] if sys.argv and sys.argv[0] else "capsvc"


class Ring:
    """An open PF_RING handle. Create one with ``Ring.open``; close it with ``close()`` or a
    ``with`` block.

    Reads from several threads are serialised by a lock (like gopacket's mutex); ``close()``
    must not race a read that is blocked waiting for a packet.
    """

    def __init__(self, so: Any, handle: int, device: str, snaplen: int, flags: Flag) -> None:
        """Wrap an already opened handle (use ``Ring.open``)."""
        self._lib = so
        self._handle_value: int | None = handle
        self.device = device
        self.snaplen = snaplen
        self.flags = flags
        self._long_header = bool(flags & Flag.LONG_HEADER)
        self._zero_copy = not flags & Flag.REENTRANT
        self._ifindex = 0 if self._long_header else _interface_index(device)
        self._default_direction = PacketDirection.UNKNOWN
        self._lock = threading.Lock()
        self._hdr = bytearray(ffi.PKTHDR_BUFFER_SIZE)
        self._hdr_c = (ctypes.c_char * len(self._hdr)).from_buffer(self._hdr)
        self._hdr_addr = ctypes.addressof(self._hdr_c)
        self._bufp = ctypes.c_void_p()
        self._bufp_ref = ctypes.byref(self._bufp)
        self._buf: bytearray | None = None  # the copy-read buffer, made on first use
        self._buf_c: ctypes.Array[ctypes.c_char] | None = None

    @classmethod
    def open(
        cls,
        device: str,
        snaplen: int = SNAPLEN_DEFAULT,
        flags: Flag = _NO_FLAGS,
        *,
        library: str | os.PathLike[str] | None = None,
    ) -> Ring:
        """Open a ring on ``device``; it receives nothing until ``enable()``.

        The application name is set to the program name (``sys.argv[0]``), as gopacket does;
        a module that does not support names is not an error.

        Args:
            device: ``eth0``, ``eth0@1`` (a queue), ``any``, ``zc:eth0``, or ``pcap:NAME``
                (through libpcap, no kernel module needed).
            snaplen: bytes kept of each packet; 0 means 262144.
            flags: ``Flag`` bits, e.g. ``Flag.PROMISC | Flag.LONG_HEADER``; default none.
            library: libpfring to load; None means ``$CAPSVC_PFRING_LIBRARY`` or the system's.

        Returns:
            The disabled ring.

        Raises:
            capsvc.BackendUnavailableError: libpfring cannot be loaded (says how to install it).
            PfRingError: ``pfring_open`` failed (the message names errno and what to do).
            ValueError: a negative snaplen.
        """
        if snaplen < 0:
            raise OptionError("snaplen must not be negative")
        snaplen = snaplen or SNAPLEN_DEFAULT
        so = ffi.lib(library)
        handle = so.pfring_open(os.fsencode(device), snaplen, int(flags))
        if not handle:
            err = ctypes.get_errno()
            hint = ffi.OPEN_HINTS.get(err, "")
            detail = f"{device}: {os.strerror(err)}" + (f" ({hint})" if hint else "")
            raise PfRingError(ffi.PF_RING_ERROR_GENERIC, "pfring_open", detail, err)
        ring = cls(so, int(handle), device, snaplen, Flag(flags))
        # As gopacket: the name shows in /proc/net/pf_ring; modules without names say no.
        so.pfring_set_application_name(
            handle, ctypes.create_string_buffer(_program_name().encode())
        )
        return ring

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran."""
        return self._handle_value is None

    def _handle(self) -> int:
        handle = self._handle_value
        if handle is None:
            raise ValueError("PF_RING ring is closed")
        return handle

    def close(self) -> None:
        """Close the ring (``pfring_close``). Idempotent."""
        with self._lock:
            handle, self._handle_value = self._handle_value, None
            if handle is not None:
                self._lib.pfring_close(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, name: str, *args: object) -> int:
        rc = int(getattr(self._lib, name)(self._handle(), *args))
        return ffi.check(rc, name)

    # -- configuration -----------------------------------------------------------------------

    def enable(self) -> None:
        """Start receiving (``pfring_enable_ring``). Raises: PfRingError."""
        self._call("pfring_enable_ring")

    def disable(self) -> None:
        """Stop receiving (``pfring_disable_ring``). Raises: PfRingError."""
        self._call("pfring_disable_ring")

    def set_bpf_filter(self, expr: str) -> None:
        """Set a BPF filter in tcpdump syntax, replacing any earlier one.

        Raises:
            PfRingError: the expression does not compile or the module cannot filter.
        """
        self._call("pfring_set_bpf_filter", ctypes.create_string_buffer(expr.encode()))

    def remove_bpf_filter(self) -> None:
        """Remove the BPF filter. Raises: PfRingError."""
        self._call("pfring_remove_bpf_filter")

    def set_cluster(self, cluster_id: int, cluster_type: ClusterType) -> None:
        """Join cluster ``cluster_id``, whose rings share packets as ``cluster_type`` says.

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        self._call("pfring_set_cluster", cluster_id, int(ClusterType(cluster_type)))

    def remove_from_cluster(self) -> None:
        """Leave the cluster. Raises: PfRingError."""
        self._call("pfring_remove_from_cluster")

    def set_direction(self, direction: Direction) -> None:
        """Capture received, transmitted or both kinds of packets.

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        direction = Direction(direction)
        self._call("pfring_set_direction", int(direction))
        self._default_direction = _DIRECTION_OF[direction]

    def set_socket_mode(self, mode: SocketMode) -> None:
        """Read, write or both; set it before ``enable()``.

        Raises:
            PfRingError: GENERIC when the ring is already enabled.
        """
        self._call("pfring_set_socket_mode", int(SocketMode(mode)))

    def set_sampling_rate(self, rate: int) -> None:
        """Deliver one packet in ``rate`` (1, the default, delivers all). Raises: PfRingError."""
        self._call("pfring_set_sampling_rate", rate)

    def set_application_name(self, name: str) -> None:
        """Name the ring in ``/proc/net/pf_ring``. Raises: PfRingError."""
        self._call("pfring_set_application_name", ctypes.create_string_buffer(name.encode()))

    # -- reading and writing -----------------------------------------------------------------

    def _recv(self, buffer_len: int, wait: int) -> int:
        """One pfring_recv into the header buffer; the caller holds the lock."""
        rc = int(
            self._lib.pfring_recv(self._handle(), self._bufp_ref, buffer_len, self._hdr_addr, wait)
        )
        if rc == 0:
            raise PfRingError(ffi.PF_RING_ERROR_NO_PKT_AVAILABLE, "pfring_recv")
        return ffi.check(rc, "pfring_recv")

    def _copy_buffer(self) -> int:
        """The address of the snaplen-sized buffer copy reads use (made on first use)."""
        if self._buf_c is None:
            self._buf = bytearray(self.snaplen)
            self._buf_c = (ctypes.c_char * self.snaplen).from_buffer(self._buf)
        return ctypes.addressof(self._buf_c)

    def _info(self) -> CaptureInfo:
        sec, usec, cap, length, ts_ns, _f, _rx, _p, _d, ifindex, _h = ffi.PFRING_PKTHDR.unpack_from(
            self._hdr
        )
        return CaptureInfo(
            ts_ns or sec * 1_000_000_000 + usec * 1000,
            cap,
            length,
            ifindex if self._long_header else self._ifindex,
        )

    def read_packet_data(self) -> tuple[bytes, CaptureInfo]:
        """Wait for the next packet and return a copy of it.

        Returns:
            ``(data, info)``; ``len(data) == info.capture_length``.

        Raises:
            PfRingError: RING_NOT_ENABLED before ``enable()``, NO_PKT_AVAILABLE when the wait
                ended without a packet (``pfring_breakloop``, end of a ``pcap:`` file), ...
        """
        with self._lock:
            self._bufp.value = self._copy_buffer()
            self._recv(self.snaplen, 1)
            info = self._info()
            return ctypes.string_at(self._bufp.value, info.capture_length), info

    def read_packet_data_into(self, buffer: bytearray | memoryview) -> CaptureInfo:
        """Wait for the next packet and copy it into ``buffer`` (at most ``len(buffer)`` bytes).

        Args:
            buffer: a writable, non-empty buffer (bytearray, writable memoryview, array).

        Returns:
            The packet's CaptureInfo; ``capture_length`` bytes of ``buffer`` hold the packet.

        Raises:
            ValueError: an empty buffer (length 0 would ask the library for zero copy).
            PfRingError: as ``read_packet_data``.
        """
        view = memoryview(buffer).cast("B")
        size = len(view)
        if size == 0:
            raise OptionError("read_packet_data_into needs a non-empty buffer")
        target = (ctypes.c_char * size).from_buffer(view)
        address = ctypes.addressof(target)
        with self._lock:
            self._bufp.value = address
            self._recv(size, 1)
            info = self._info()
            if self._bufp.value != address:  # a module that hands out its own buffer anyway
                ctypes.memmove(address, self._bufp.value, min(info.capture_length, size))
        return info

    def zero_copy_read_packet_data(self) -> tuple[memoryview, CaptureInfo]:
        """Wait for the next packet and return a view into the ring itself (no copy).

        The view is valid only until the next read on this ring or ``close()``; copy it
        (``bytes(view)``) to keep it.

        Raises:
            PfRingError: INVALID_ARGUMENT on a ring opened with ``Flag.REENTRANT`` (the library
                forbids zero copy there), and as ``read_packet_data``.
        """
        with self._lock:
            self._recv(0, 1)
            info = self._info()
            frame = (ctypes.c_char * info.capture_length).from_address(self._bufp.value or 0)
            return memoryview(frame).cast("B").toreadonly(), info

    def write_packet_data(self, data: bytes | bytearray | memoryview) -> None:
        """Send one frame out of the ring's interface (flushed at once).

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module, NO_TX_SLOT when full.
        """
        frame = bytes(data)
        self._call("pfring_send", frame, len(frame), 1)

    def stats(self) -> Stats:
        """Return the ring's counters.

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        raw = ctypes.create_string_buffer(ffi.PFRING_STAT.size)
        self._call("pfring_stats", raw)
        received, dropped, _shunt = ffi.PFRING_STAT.unpack(raw.raw)
        return Stats(received, dropped)

    # -- used by PfRingSource ----------------------------------------------------------------

    def _selectable_fd(self) -> int:
        """``pfring_get_selectable_fd``: a fd readable while packets wait, or -1."""
        return int(self._lib.pfring_get_selectable_fd(self._handle()))

    def _poll(self, wait: int) -> int:
        """``pfring_poll``: wait up to ``wait`` (ms; seconds on ``pcap:``) for a packet."""
        return ffi.check(int(self._lib.pfring_poll(self._handle(), wait)), "pfring_poll")

    def _read_batch(self, limit: int) -> PacketBatch:
        """Read up to ``limit`` waiting packets without blocking (zero copy unless REENTRANT).

        Returns:
            The packets, possibly none.

        Raises:
            PfRingError: a read failed.
            ValueError: the ring is closed.
        """
        out: PacketBatch = []
        with self._lock:
            handle = self._handle()
            recv = self._lib.pfring_recv
            unpack = ffi.PFRING_PKTHDR.unpack_from
            string_at = ctypes.string_at
            hdr, hdr_addr, bufp, bufp_ref = self._hdr, self._hdr_addr, self._bufp, self._bufp_ref
            long_header, name_ifindex = self._long_header, self._ifindex
            default_direction = self._default_direction
            if self._zero_copy:
                buffer_len, copy_to = 0, 0
            else:
                buffer_len, copy_to = self.snaplen, self._copy_buffer()
            append = out.append
            for _ in range(limit):
                if copy_to:
                    bufp.value = copy_to
                rc = recv(handle, bufp_ref, buffer_len, hdr_addr, 0)
                if rc <= 0:
                    if rc == 0 or out:  # an error after packets surfaces on the next read
                        break
                    raise PfRingError(rc, "pfring_recv")
                sec, usec, cap, length, ts_ns, _f, rx, _p, _d, ifindex, _h = unpack(hdr)
                if ts_ns:  # the module filled the extended header
                    direction = PacketDirection.INBOUND if rx else PacketDirection.OUTBOUND
                else:
                    ts_ns = sec * 1_000_000_000 + usec * 1000
                    direction = default_direction
                append(
                    Packet(
                        ts_ns,
                        string_at(bufp.value or 0, cap),
                        length,
                        direction,
                        ifindex if long_header else name_ifindex,
                    )
                )
        return out


_DIRECTION_OF = {
    Direction.RECEIVE_AND_TRANSMIT: PacketDirection.UNKNOWN,
    Direction.RECEIVE_ONLY: PacketDirection.INBOUND,
    Direction.TRANSMIT_ONLY: PacketDirection.OUTBOUND,
}
