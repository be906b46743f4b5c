"""PfRingSource: a Session source reading a PF_RING ring.

How it waits: on ``pfring_get_selectable_fd`` through the event loop (asyncio's or trio's:
``capsvc._aio``) where the module has such a fd (the kernel module), watched only while the
ring is empty; else a worker thread waits and hands whole batches to the loop (at most
``PENDING_BATCHES`` in flight, so a slow consumer makes the ring drop, counted, rather than
memory grow). The thread waits in ``pfring_poll`` on kernel rings without a fd. A live ``pcap:``
ring has no fd, its ``pfring_poll`` counts whole seconds and its reads can block in libpcap, so
there the thread never waits inside the library: it sleeps on its stop event for ``IDLE_WAIT``
between reads that cannot block (see ``_ring``), and stopping takes no longer than that. A
``pcap:FILE`` is read to its end, which ends the source. Either way one wake drains up to
``batch_size`` packets with non-blocking reads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ... import _aio
from ..._errors import OptionError
from ..._packet import LinkType, PacketBatch
from .._base import SourceStats
from . import _ffi as ffi
from ._ffi import PfRingError
from ._ring import Ring
from ._types import ClusterType, Direction, Flag, SocketMode

if TYPE_CHECKING:
    from ...filter import Node

__all__ = ["BATCH_MAX", "IDLE_WAIT", "PfRingSource"]

log = logging.getLogger("capsvc")

#: Packets read per wake at most (the default ``batch_size``).
BATCH_MAX = 1024
#: Batches the poll thread may hand over before the loop took them.
PENDING_BATCHES = 8
#: pfring_poll's wait for kernel rings (ms); also bounds how long closing waits for the thread.
POLL_WAIT_MS = 100
#: pfring_poll's wait for the ``pcap:`` module, which counts it in seconds.
POLL_WAIT_PCAP_MODULE = 1
#: Seconds between reads of a drained live ``pcap:`` ring; bounds how long stopping takes.
#: libpcap hands packets over in blocks at most a second old anyway, so this adds little.
IDLE_WAIT = 0.02


class PfRingSource:
    """Packets from a PF_RING ring, in batches (a ``capsvc.sources.Source``).

    The ring is opened, configured and enabled by the constructor; ``aclose()`` closes it.

    Args:
        device: ``eth0``, ``eth0@1``, ``any``, ``zc:eth0`` or ``pcap:NAME`` (see ``Ring.open``).
            ``pcap:FILE`` reads a capture file to its end, which ends the iteration.
        snaplen: bytes kept of each packet; 0 means 262144; PF_RING keeps at most 65600.
        flags: ``Flag`` bits for ``pfring_open``; default ``Flag.PROMISC``. With
            ``Flag.REENTRANT`` packets are read by copy, else by zero copy (one copy either way).
        filter: a BPF expression (tcpdump syntax, or a parsed ``capsvc.filter.Node`` given as
            its text) set on the ring, or None.
        cluster: ``(cluster_id, ClusterType)`` to join a cluster (see ``parse_cluster``), or None.
        direction: which packets to capture; the default (both) is not sent to the module.
        sampling_rate: deliver one packet in this many; 1 (default) delivers all. Where the
            module ignores the rate (``pcap:``) the ring samples its reads itself.
        batch_size: packets read per wake at most; default 1024.
        linktype: the frames' link type; None reads it from the interface (ARPHRD type) or, for
            ``pcap:FILE``, from the file's header (pcap or pcapng); Ethernet when neither says.
        library: libpfring to load; None means ``$CAPSVC_PFRING_LIBRARY`` or the system's.

    Attributes:
        live: False for a ``pcap:FILE`` (the Session waits for it rather than dropping), else
            True.

    Raises:
        capsvc.BackendUnavailableError: libpfring cannot be loaded (the message says how to
            install PF_RING).
        PfRingFilterError: the library cannot compile ``filter`` (a ``capsvc.FilterError``).
        PfRingError: opening or configuring the ring failed: a missing capture file, or a
            cluster or direction on a module without them ("... is not supported by this
            PF_RING module (pcap)"); the ring is closed again.
        ValueError: a sampling rate or batch size below 1, or a negative snaplen.
    """

    def __init__(
        self,
        device: str,
        *,
        snaplen: int = 262144,
        flags: Flag = Flag.PROMISC,
        filter: str | Node | None = None,
        cluster: tuple[int, ClusterType] | None = None,
        direction: Direction = Direction.RECEIVE_AND_TRANSMIT,
        sampling_rate: int = 1,
        batch_size: int = BATCH_MAX,
        linktype: LinkType | None = None,
        library: str | os.PathLike[str] | None = None,
    ) -> None:
        if sampling_rate < 1 or batch_size < 1:
            raise OptionError("sampling_rate and batch_size must be at least 1")
        self.device = device
        self.batch_size = batch_size
        self._ring = Ring.open(device, snaplen, flags, library=library)
        try:
            self.linktype = LinkType(linktype) if linktype is not None else self._ring.linktype
            text = None if filter is None else str(filter)
            _configure(
                self._ring, text, cluster, Direction(direction), sampling_rate, self.linktype
            )
        except BaseException:
            self._ring.close()
            raise
        self.snaplen = self._ring.snaplen
        self.live = not self._ring.reads_file
        self._closed = False
        self._stop = threading.Event()
        self._fdwait: _aio.FdWaiter | None = None  # while waiting on the selectable fd
        self._handed = _aio.Flag()  # the poll thread handed something over
        self._worker: _aio.Job | None = None
        self._kernel_stats = True
        self._last = SourceStats()
        self.stats()  # learn now whether the module counts, and say so once if it does not

    # -- Source -------------------------------------------------------------------------------

    async def __aiter__(self) -> AsyncIterator[PacketBatch]:
        """Yield batches of packets until ``aclose()`` or the end of a ``pcap:FILE``.

        Raises:
            PfRingError: a read or poll failed.
        """
        if self._closed:
            return
        fd = self._ring._selectable_fd()
        batches = self._iter_selectable(fd) if fd >= 0 else self._iter_polling()
        async for batch in batches:
            yield batch

    @property
    def kernel_stats(self) -> bool:
        """False when the module keeps no counters (the ``pcap:`` module): ``stats()`` then
        stays at zero, which means "not known", not "nothing received"."""
        return self._kernel_stats

    def stats(self) -> SourceStats:
        """The ring's counters: received and kernel_dropped from ``pfring_stats``.

        Zeros where the module does not count (see ``kernel_stats``; a warning says so once);
        the last values after ``aclose()``.
        """
        if self._closed or not self._kernel_stats:
            return self._last
        try:
            ring_stats = self._ring.stats()
        except PfRingError as exc:
            if exc.code == ffi.PF_RING_ERROR_NOT_SUPPORTED:
                self._kernel_stats = False
                log.warning(
                    "%s: kernel statistics are %s (%s): packets received and dropped "
                    "before capsvc are not counted",
                    self.device,
                    ffi.NOT_SUPPORTED_TEXT,
                    self._ring.module,
                )
            return self._last
        self._last = SourceStats(received=ring_stats.received, kernel_dropped=ring_stats.dropped)
        return self._last

    async def aclose(self) -> None:
        """Stop reading and close the ring; idempotent."""
        if self._closed:
            return
        self.stats()
        self._closed = True
        self._stop.set()
        if self._fdwait is not None:
            self._fdwait.release()
        self._handed.set()
        worker = self._worker
        try:
            if worker is not None and not worker.done():
                await worker.wait()
        finally:
            # Cancelled while the thread still runs: the worker closes the ring when it ends.
            if worker is None or worker.done():
                self._ring.close()

    # -- the two ways to wait -----------------------------------------------------------------

    async def _iter_selectable(self, fd: int) -> AsyncIterator[PacketBatch]:
        loop = _aio.Loop.current()
        fdwait = self._fdwait = loop.fd_waiter()
        ring = self._ring
        try:
            while not self._closed:
                batch = ring._read_batch(self.batch_size)
                if batch:
                    yield batch
                if not ring._drained:
                    await loop.sleep(0)  # more may wait; let the loop run first
                    continue
                if not self._closed:
                    await fdwait.wait(fd)
        finally:
            self._fdwait = None

    async def _iter_polling(self) -> AsyncIterator[PacketBatch]:
        loop = _aio.Loop.current()
        queue: deque[PacketBatch | Exception | None] = deque()
        handed = self._handed
        slots = threading.Semaphore(PENDING_BATCHES)
        ring, stop, limit = self._ring, self._stop, self.batch_size
        idle_only = ring._live_pcap  # waiting in its library would block stop for a second
        wait = POLL_WAIT_PCAP_MODULE if ring.module == "pcap" else POLL_WAIT_MS

        def put(item: PacketBatch | Exception | None) -> None:
            queue.append(item)
            handed.set()

        def hand_over(item: PacketBatch | Exception | None) -> None:
            loop.call_soon_threadsafe(put, item)  # nothing when the loop is gone

        def work() -> None:
            ready = True  # read first; after a drain came back empty, read only when poll says so
            try:
                while not stop.is_set():
                    if not ready:
                        if idle_only:
                            stop.wait(IDLE_WAIT)
                            ready = True
                        else:
                            ready = ring._poll(wait) > 0
                        continue
                    if not slots.acquire(timeout=POLL_WAIT_MS / 1000):
                        continue
                    batch = ring._read_batch(limit)
                    if batch:
                        hand_over(batch)
                    else:
                        slots.release()
                    if ring.at_end:
                        return
                    ready = not ring._drained
            except Exception as exc:  # handed to the reader, which raises it
                hand_over(exc)
            finally:
                hand_over(None)

        async def run() -> None:
            try:
                await loop.run_thread(work)
            finally:
                if self._closed:  # aclose() may have stopped waiting for the thread
                    ring.close()

        self._worker = loop.spawn(run, name="capsvc-pfring-poll")
        try:
            while True:
                while not queue:
                    if self._closed:
                        return
                    handed.clear()
                    await handed.wait()
                item = queue.popleft()
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise item
                slots.release()
                yield item
        finally:
            stop.set()


def _configure(
    ring: Ring,
    filter: str | None,
    cluster: tuple[int, ClusterType] | None,
    direction: Direction,
    sampling_rate: int,
    linktype: LinkType,
) -> None:
    """Set up an opened ring for reading and enable it."""
    try:
        ring.set_socket_mode(SocketMode.READ_ONLY)
    except PfRingError as exc:  # a hint to the module only; modules without modes say no
        if exc.code != ffi.PF_RING_ERROR_NOT_SUPPORTED:
            raise
    if direction != Direction.RECEIVE_AND_TRANSMIT:
        ring.set_direction(direction)
    if cluster is not None:
        cluster_id, cluster_type = cluster
        ring.set_cluster(cluster_id, ClusterType(cluster_type))
    if sampling_rate != 1:
        ring.set_sampling_rate(sampling_rate)
    if filter:
        ring.set_bpf_filter(filter, linktype=linktype)
    ring.enable()
