"""The reading half of a Ring: what ``pfring_recv``'s answers mean, one read or a batch.

IO module: every call goes to libpfring through ``_ffi``; ``RingReader`` holds a ring's handle
and its read state, ``Ring`` (in ``_ring``) adds opening and configuring.

What a read makes of ``pfring_recv``'s answer (libpfring 8.9; docs/pfring.md has the detail):

- above 0: a packet.
- 0 in copy mode (``buffer_len > 0``): a packet when the header's ``ts``, ``caplen`` or ``len``
  is set, since the ``pcap:`` module returns 0 after copying one. The ring zeroes those 24
  bytes before every copy read, so an untouched header means no packet.
- 0 otherwise: no packet yet on a live ring; the end of the file on a ``pcap:FILE`` ring.
- INVALID_ARGUMENT (-2) on a ``pcap:FILE`` ring: the end of the file (libpcap's answer),
  except for the refusal of zero copy on a REENTRANT ring, which comes before any read.
- any other negative code: ``PfRingError``.

A live ``pcap:`` ring can block inside ``pcap_next_ex`` even when asked not to wait (libpcap's
TPACKET_V3 reader polls without a timeout until the kernel hands over a block), so a
non-blocking read there first asks ``pfring_poll(ring, 0)``, a select that does not wait.
Captured lengths are cut to the ring's snaplen and to the copy buffer: the ``pcap:`` module does
not apply the snaplen to files, and the kernel module leaves the header's caplen above a small
copy buffer. Where the module ignores the sampling rate (``pcap:``), the reads sample.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from typing import Any

from ... import _packet
from ..._errors import OptionError
from ..._packet import Packet, PacketBatch
from . import _ffi as ffi
from ._ffi import PfRingEndOfFile, PfRingError
from ._types import CaptureInfo, Flag, module_of, pcap_module_name

__all__ = ["RingReader"]

#: Bytes of the header a copy read must see filled: ts (16), caplen, len.
_FILLED_BYTES = 24
_ZEROS = bytes(_FILLED_BYTES)


def _interface_index(device: str) -> int:
    """The index of the interface a device name reads (``eth0@1`` -> eth0), 0 if unknown."""
    name = device.partition("@")[0]
    name = pcap_module_name(name) or name.removeprefix("zc:")
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


class RingReader:
    """An open PF_RING handle and its reads (the base of ``Ring``, which opens one).

    Reads from several threads are serialised by a lock (like gopacket's mutex).
    """

    def __init__(self, so: Any, handle: int, device: str, snaplen: int, flags: Flag) -> None:
        """Wrap an already opened handle (use ``Ring.open``)."""
        self._lib = so
        self._handle_value: int | None = handle
        self.device = device
        self.module = module_of(device)
        self.snaplen = snaplen
        self.flags = flags
        name = pcap_module_name(device)
        # The pcap: module tries the name as a file first (pcap_open_offline), then as a device.
        self.reads_file = name is not None and (name == "-" or os.path.isfile(name))
        self._live_pcap = name is not None and not self.reads_file
        self._long_header = bool(flags & Flag.LONG_HEADER)
        self._zero_copy = not flags & Flag.REENTRANT
        self._ifindex = 0 if self._long_header else _interface_index(device)
        self._default_direction = _packet.Direction.UNKNOWN
        self._lock = threading.Lock()
        self._hdr = bytearray(ffi.PKTHDR_BUFFER_SIZE)
        self._hdr_c = (ctypes.c_char * len(self._hdr)).from_buffer(self._hdr)
        self._hdr_addr = ctypes.addressof(self._hdr_c)
        self._bufp = ctypes.c_void_p()
        self._bufp_ref = ctypes.byref(self._bufp)
        self._buf: bytearray | None = None  # the copy-read buffer, made on first use
        self._buf_c: ctypes.Array[ctypes.c_char] | None = None
        self._sample_rate = 1  # sampling done here: keep one packet in this many
        self._skip = 0  # packets still to skip before the next kept one
        self._eof = False
        self._drained = False  # the last _read_batch ended on "no packet now"
        self._pending = 0  # an error code met after packets, raised by the next read

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran."""
        return self._handle_value is None

    @property
    def at_end(self) -> bool:
        """True once a ``pcap:FILE`` ring has delivered the file's last packet."""
        return self._eof

    def _handle(self) -> int:
        handle = self._handle_value
        if handle is None:
            raise ValueError("PF_RING ring is closed")
        return handle

    def _error(self, rc: int, operation: str, feature: str = "") -> PfRingError:
        """The error for a negative code; NOT_SUPPORTED names the feature and the module."""
        if rc == ffi.PF_RING_ERROR_NOT_SUPPORTED:
            what = feature or operation
            return PfRingError(rc, operation, f"{what} is {ffi.NOT_SUPPORTED_TEXT} ({self.module})")
        return PfRingError(rc, operation)

    def _copy_buffer(self) -> int:
        """The address of the snaplen-sized buffer copy reads use (made on first use)."""
        if self._buf_c is None:
            self._buf = bytearray(self.snaplen)
            self._buf_c = (ctypes.c_char * self.snaplen).from_buffer(self._buf)
        return ctypes.addressof(self._buf_c)

    def _raise_pending(self) -> None:
        rc, self._pending = self._pending, 0
        if rc:
            raise PfRingError(rc, "pfring_recv")

    def _is_end(self, rc: int, buffer_len: int) -> bool:
        """Whether a non-packet answer of pfring_recv is the end of a ``pcap:FILE``."""
        if not self.reads_file:
            return False
        refused = buffer_len == 0 and self.flags & Flag.REENTRANT  # before any read
        return rc == 0 or (rc == ffi.PF_RING_ERROR_INVALID_ARGUMENT and not refused)

    def _wait_one(self, buffer_len: int, address: int) -> CaptureInfo:
        """pfring_recv with wait until a packet is kept; the caller holds the lock.

        ``address`` is the copy buffer (0 for zero copy); on return ``self._bufp`` points at
        the packet's bytes.
        """
        self._raise_pending()
        hdr, copy = self._hdr, buffer_len > 0
        while True:
            if self._eof:
                raise PfRingEndOfFile(self.device)
            if copy:
                self._bufp.value = address
                hdr[:_FILLED_BYTES] = _ZEROS
            rc = int(
                self._lib.pfring_recv(self._handle(), self._bufp_ref, buffer_len, self._hdr_addr, 1)
            )
            sec, usec, cap, length, ts_ns, _f, _rx, _p, _d, ifindex, _h = (
                ffi.PFRING_PKTHDR.unpack_from(hdr)
            )
            if rc > 0 or (rc == 0 and copy and (sec or usec or cap or length)):
                if self._skip:
                    self._skip -= 1
                    continue
                self._skip = self._sample_rate - 1
                cap = min(cap, self.snaplen, buffer_len or cap)
                return CaptureInfo(
                    ts_ns or sec * 1_000_000_000 + usec * 1000,
                    cap,
                    length,
                    ifindex if self._long_header else self._ifindex,
                )
            if self._is_end(rc, buffer_len):
                self._eof = True
                raise PfRingEndOfFile(self.device)
            if rc == 0:  # the wait ended without a packet (the pcap: module waits 1 s)
                raise PfRingError(ffi.PF_RING_ERROR_NO_PKT_AVAILABLE, "pfring_recv")
            raise self._error(rc, "pfring_recv")

    def read_packet_data(self) -> tuple[bytes, CaptureInfo]:
        """Wait for the next packet and return a copy of it.

        Returns:
            ``(data, info)``; ``len(data) == info.capture_length``.

        Raises:
            PfRingEndOfFile: a ``pcap:FILE`` ring has no packet left (code NO_PKT_AVAILABLE).
            PfRingError: RING_NOT_ENABLED before ``enable()``; NO_PKT_AVAILABLE when the wait
                ended without a packet (``pfring_breakloop``, or a second without one on a
                live ``pcap:`` ring, whose module waits no longer), ...
        """
        with self._lock:
            address = self._copy_buffer()
            info = self._wait_one(self.snaplen, address)
            return ctypes.string_at(self._bufp.value or address, info.capture_length), info

    def read_packet_data_into(self, buffer: bytearray | memoryview) -> CaptureInfo:
        """Wait for the next packet and copy it into ``buffer`` (at most ``len(buffer)`` bytes).

        Args:
            buffer: a writable, non-empty buffer (bytearray, writable memoryview, array).

        Returns:
            The packet's CaptureInfo; ``capture_length`` bytes of ``buffer`` hold the packet.

        Raises:
            ValueError: an empty buffer (length 0 would ask the library for zero copy).
            PfRingEndOfFile, PfRingError: as ``read_packet_data``.
        """
        view = memoryview(buffer).cast("B")
        size = len(view)
        if size == 0:
            raise OptionError("read_packet_data_into needs a non-empty buffer")
        target = (ctypes.c_char * size).from_buffer(view)
        address = ctypes.addressof(target)
        with self._lock:
            info = self._wait_one(size, address)
            if self._bufp.value != address:  # a module that hands out its own buffer anyway
                ctypes.memmove(address, self._bufp.value or address, info.capture_length)
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
            info = self._wait_one(0, 0)
            frame = (ctypes.c_char * info.capture_length).from_address(self._bufp.value or 0)
            return memoryview(frame).cast("B").toreadonly(), info

    def _read_batch(self, limit: int) -> PacketBatch:
        """Read up to ``limit`` waiting packets without blocking (zero copy unless REENTRANT).

        At most ``limit`` pfring_recv calls (sampled-out packets count), so a caller on the
        event loop is never held long. Afterwards ``_drained`` says whether the last call found
        no packet, and ``at_end`` whether a ``pcap:FILE`` ended.

        Returns:
            The packets, possibly none.

        Raises:
            PfRingError: a read failed (after packets: on the next call).
            ValueError: the ring is closed.
        """
        out: PacketBatch = []
        with self._lock:
            handle = self._handle()
            self._raise_pending()
            self._drained = True
            if self._eof:
                return out
            recv, poll = self._lib.pfring_recv, self._lib.pfring_poll
            unpack = ffi.PFRING_PKTHDR.unpack_from
            string_at = ctypes.string_at
            hdr, hdr_addr, bufp, bufp_ref = self._hdr, self._hdr_addr, self._bufp, self._bufp_ref
            long_header, name_ifindex = self._long_header, self._ifindex
            default_direction = self._default_direction
            inbound, outbound = _packet.Direction.INBOUND, _packet.Direction.OUTBOUND
            guard, snaplen = self._live_pcap, self.snaplen
            copy = not self._zero_copy
            buffer_len, copy_to = (snaplen, self._copy_buffer()) if copy else (0, 0)
            rate, skip = self._sample_rate, self._skip
            append = out.append
            drained = False
            for _ in range(limit):
                if guard:  # a live pcap: ring blocks in pcap_next_ex unless a block is ready
                    ready = int(poll(handle, 0))
                    if ready == 0:
                        drained = True
                        break
                    if ready < 0:
                        if not out:
                            self._skip = skip
                            raise PfRingError(ready, "pfring_poll")
                        self._pending = ready
                        break
                if copy:
                    bufp.value = copy_to
                    hdr[:_FILLED_BYTES] = _ZEROS
                rc = recv(handle, bufp_ref, buffer_len, hdr_addr, 0)
                sec, usec, cap, length, ts_ns, _f, rx, _p, _d, ifindex, _h = unpack(hdr)
                if rc <= 0 and not (rc == 0 and copy and (sec or usec or cap or length)):
                    if rc == 0 or self._is_end(rc, buffer_len):
                        self._eof = self.reads_file
                        drained = True
                    elif out:  # surfaces on the next read, after these packets
                        self._pending = rc
                    else:
                        self._skip = skip
                        raise self._error(rc, "pfring_recv")
                    break
                if skip:
                    skip -= 1
                    continue
                skip = rate - 1
                if ts_ns:  # the module filled the extended header
                    direction = inbound if rx else outbound
                else:
                    ts_ns = sec * 1_000_000_000 + usec * 1000
                    direction = default_direction
                append(
                    Packet(
                        ts_ns,
                        string_at(bufp.value or 0, cap if cap < snaplen else snaplen),
                        length,
                        direction,
                        ifindex if long_header else name_ifindex,
                    )
                )
            self._skip = skip
            self._drained = drained
        return out
