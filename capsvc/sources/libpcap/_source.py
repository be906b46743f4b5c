"""LibpcapSource: a libpcap handle as a Session source.

Waiting is the event loop's (libpcap's selectable fd, non-blocking handle, watched by asyncio's
reader or ``anyio.wait_readable`` on trio: ``capsvc._aio``); each
wake-up collects every packet ready into one batch: in C (``capsvc._speedups.pcap_collect``, a
loop over pcap_next_ex) when it is built, else one ``pcap_dispatch`` whose per-packet work is
the ctypes callback (copy the bytes, build the Packet tuple).

Directions: libpcap reports none per packet for Ethernet, so packets get the direction the
capture was restricted to (``direction=``), UNKNOWN when it was not. On the cooked link types
(LINUX_SLL, LINUX_SLL2, e.g. the "any" device) the direction comes from each packet's pkttype,
and on LINUX_SLL2 the interface index from its header too.
"""

from __future__ import annotations

import contextlib
import ctypes
import struct
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..._accel import speedups
from ..._aio import FdWaiter, Loop
from ..._packet import Direction, LinkType, Packet, PacketBatch
from .._base import SourceStats
from . import _ffi as ffi
from ._handle import Handle
from ._live import InactiveHandle
from ._types import LibpcapError, _status_error

if TYPE_CHECKING:
    from ...filter import Node

__all__ = ["DISPATCH_BATCH", "LibpcapSource"]

#: The most packets one wake-up collects into a batch.
DISPATCH_BATCH = 8192
#: Kernel buffer of a source that opens its own device when ``buffer_size`` is 0 (bytes).
BUFFER_SIZE_DEFAULT = 32 * 1024 * 1024

#: struct pcap_pkthdr: tv_sec, tv_usec (nanoseconds on a nanosecond handle), caplen, len.
PCAP_PKTHDR = struct.Struct("=" + ("q" if ctypes.sizeof(ctypes.c_long) == 8 else "i") * 2 + "II")
_DLT_TO_LINKTYPE = {12: LinkType.RAW, 14: LinkType.RAW}  # DLT_RAW differs by platform
_SLL_PKTTYPE_OFFSET = {LinkType.LINUX_SLL: 1, LinkType.LINUX_SLL2: 10}
_OUTGOING = 4  # PACKET_OUTGOING


def _linktype(dlt: int) -> LinkType:
    if dlt in _DLT_TO_LINKTYPE:
        return _DLT_TO_LINKTYPE[dlt]
    try:
        return LinkType(dlt)
    except ValueError:
        raise LibpcapError(f"link type {dlt} is not supported by capsvc sessions") from None


class LibpcapSource:
    """A Source reading from libpcap: a live device or a capture file.

    Args:
        handle_or_device: an open ``Handle`` (the source takes it over and closes it) or a
            device name to open.
        snaplen: bytes kept of each packet when opening a device; 0 means 262144.
        promisc: promiscuous mode when opening a device (default True).
        filter: a libpcap filter expression (or a parsed ``capsvc.filter.Node``, given to
            libpcap as its text) installed on the handle (in the kernel for live captures);
            None or "" captures everything.
        direction: capture only INBOUND or OUTBOUND packets; UNKNOWN (default) captures both.
        timeout_ms: how long the kernel holds packets to fill a buffer block when opening a
            device (default 100); 0 or less turns immediate mode on instead.
        buffer_size: the kernel buffer in bytes when opening a device; 0 means 32 MiB.
        immediate: deliver every packet at once (more wake-ups, less latency).
        link_type: when opening a device, the DLT_ value to switch it to (``pcap_set_datalink``,
            tcpdump's ``-y``); None keeps the device's default.

    Raises:
        BackendUnavailableError: libpcap is not installed.
        LibpcapPermissionError: capturing needs CAP_NET_RAW.
        LibpcapError: libpcap failed (its message), or its link type is unknown to capsvc.
    """

    def __init__(
        self,
        handle_or_device: Handle | str,
        *,
        snaplen: int = 0,
        promisc: bool = True,
        filter: str | Node | None = None,
        direction: Direction = Direction.UNKNOWN,
        timeout_ms: int = 100,
        buffer_size: int = 0,
        immediate: bool = False,
        link_type: int | None = None,
    ) -> None:
        if isinstance(handle_or_device, Handle):
            handle = handle_or_device
        else:
            handle = _open_device(
                handle_or_device, snaplen, promisc, timeout_ms, buffer_size, immediate
            )
        try:
            if link_type is not None and link_type != handle.link_type:
                handle.set_link_type(link_type)
            if filter is not None and str(filter).strip():
                handle.set_bpf_filter(str(filter))
            if direction != Direction.UNKNOWN:
                handle.set_direction(direction)
            self.linktype = _linktype(handle.link_type)
            self.snaplen = handle.snaplen
        except BaseException:
            handle.close()
            raise
        self.handle = handle
        self.live = handle.live
        #: A live handle's kernel buffer holds packets while the Session's queue is full.
        self.buffered = handle.live
        self._closed = False
        self._fdwait: FdWaiter | None = None  # while being read
        self._delivered = 0
        self._last = SourceStats()
        self._buf: PacketBatch = []
        self._callback = ffi.pcap_handler(self._make_callback())
        self._dispatcher = ffi.lib_holding_gil()
        fast = speedups()
        self._collect = fast.pcap_collect if fast is not None else None
        self._next_ex = ctypes.cast(self._dispatcher.pcap_next_ex, ctypes.c_void_p).value or 0
        offset = _SLL_PKTTYPE_OFFSET.get(self.linktype, -1)
        self._collect_args = (
            1 if self.handle.nanosecond else 1000,
            self.handle.direction,
            self.handle.interface_index,
            offset,
            self.linktype == LinkType.LINUX_SLL2,
            Packet,
            Direction.INBOUND,
            Direction.OUTBOUND,
        )

    def _make_callback(self) -> Callable[[Any, Any, Any], None]:
        append = self._buf.append
        unpack = PCAP_PKTHDR.unpack_from
        mem = ffi.address_space()
        new = tuple.__new__
        packet = Packet
        scale = 1 if self.handle.nanosecond else 1000
        direction = self.handle.direction
        ifindex = self.handle.interface_index
        offset = _SLL_PKTTYPE_OFFSET.get(self.linktype)

        if offset is None:

            def on_packet(_user: Any, hdr: Any, data: Any) -> None:
                sec, frac, caplen, length = unpack(mem, hdr)
                append(
                    new(
                        packet,
                        (
                            sec * 1_000_000_000 + frac * scale,
                            mem[data : data + caplen].tobytes(),
                            length,
                            direction,
                            ifindex,
                        ),
                    )
                )

            return on_packet

        sll2 = self.linktype == LinkType.LINUX_SLL2
        inbound, outbound = Direction.INBOUND, Direction.OUTBOUND

        def on_cooked(_user: Any, hdr: Any, data: Any) -> None:
            sec, frac, caplen, length = unpack(mem, hdr)
            frame = mem[data : data + caplen].tobytes()
            way, index = direction, ifindex
            if caplen > offset:
                way = outbound if frame[offset] == _OUTGOING else inbound
            if sll2 and caplen >= 8:
                index = int.from_bytes(frame[4:8], "big")
            append(new(packet, (sec * 1_000_000_000 + frac * scale, frame, length, way, index)))

        return on_cooked

    def _dispatch(self) -> int:
        """Collect what is ready into the buffer; return how many came (0: nothing ready, or a
        file's end). The C collector (``capsvc._accel``) loops over pcap_next_ex when built;
        else one pcap_dispatch with the ctypes callback."""
        handle = self.handle
        p = handle._p
        if self._collect is not None:
            before = len(self._buf)
            rc = self._collect(self._next_ex, p, DISPATCH_BATCH, *self._collect_args, self._buf)
            if rc == ffi.PCAP_ERROR:
                raise _status_error(p, rc, f"reading from {handle.device or 'the capture file'}")
            return len(self._buf) - before
        rc = self._dispatcher.pcap_dispatch(p, DISPATCH_BATCH, self._callback, None)
        if rc < 0 and rc != ffi.PCAP_ERROR_BREAK:
            raise _status_error(p, rc, f"reading from {handle.device or 'the capture file'}")
        return int(rc)

    async def __aiter__(self) -> AsyncIterator[PacketBatch]:
        """Yield batches until the file ends or ``aclose()`` is called.

        Raises:
            LibpcapError: libpcap failed while reading (e.g. the interface went away).
        """
        fdwait = self._fdwait = Loop.current().fd_waiter()
        buf = self._buf
        try:
            while not self._closed:
                rc = self._dispatch()
                if buf:
                    batch = buf.copy()
                    buf.clear()
                    self._delivered += len(batch)
                    yield batch
                    continue
                if not self.live:
                    if rc <= 0:
                        return
                    continue
                await fdwait.wait(self.handle.fileno())
        finally:
            self._fdwait = None

    def stats(self) -> SourceStats:
        """Return libpcap's counters (pcap_stats) for a live handle; packets read for a file."""
        if self._closed or not self.live:
            return self._last if self.live else SourceStats(received=self._delivered)
        s = self.handle.stats()
        self._last = SourceStats(s.packets_received, s.packets_dropped, s.packets_if_dropped)
        return self._last

    async def aclose(self) -> None:
        """Stop reading, wake a pending wait and close the handle; idempotent."""
        if self._closed:
            return
        if self.live and not self.handle.closed:
            with contextlib.suppress(LibpcapError):  # the counters are lost, the close goes on
                self.stats()
        self._closed = True
        if self._fdwait is not None:
            self._fdwait.release()  # a pending wait ends before the handle is closed
        self.handle.close()


def _open_device(
    device: str, snaplen: int, promisc: bool, timeout_ms: int, buffer_size: int, immediate: bool
) -> Handle:
    with InactiveHandle(device) as inactive:
        inactive.set_snaplen(snaplen)
        inactive.set_promisc(promisc)
        inactive.set_timeout(timeout_ms / 1000 if timeout_ms > 0 else -1.0)
        inactive.set_buffer_size(buffer_size or BUFFER_SIZE_DEFAULT)
        if immediate:
            inactive.set_immediate_mode(True)
        return inactive.activate()
