"""AF_PACKET live source: a TPACKET_V3 memory-mapped ring read a whole block at a time.

Thin IO module: it decides the kernel program (direction prefix, compiled filter), and waits for
readiness on the event loop; the socket and the ring are ``_socket.PacketRing``, block parsing
is the pure ``_tpacket``. No threads: the socket's fd is watched by the loop (asyncio's reader,
or ``anyio.wait_readable`` on trio: ``capsvc._aio``) only while the ring is empty, every ready
block is copied out and returned to the kernel at once, and one batch is yielded per wake-up.

The rule it keeps: every packet the kernel counts is read. Replacing the filter and closing both
go through the same quiet point: the drop-all program is attached, the block the kernel is still
filling is waited for (it is handed over within the block timeout), and everything in the ring
is read out, so ``stats().received`` is exactly what was delivered plus ``kernel_dropped``, and
no packet of an old filter comes after ``set_filter`` returns.
"""

from __future__ import annotations

import contextlib
import mmap
import select
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, NamedTuple

from ..._aio import FdWaiter, Flag, Loop
from ..._errors import CaptureError, FilterCompileError, OptionError
from ..._packet import SNAPLEN_DEFAULT, Direction, LinkType, Packet, PacketBatch
from ..._records import RecordBlock, packets_only
from ..._records import available as records_available
from .._base import SourceStats
from .._ifaces import (
    ARPHRD_ETHER,
    ARPHRD_LOOPBACK,
    arphrd_of,
    check_interface,
    linktype_for_arphrd,
)
from ._cook import ETH_LEN, cook, mac_of
from ._socket import DROP_ALL, PacketRing
from ._tpacket import (
    BPF_RET_K,
    SLL2_LEN,
    Instruction,
    bpf_direction_prefix,
    bpf_loopback_outgoing_prefix,
    fanout_arg,
    ring_geometry,
    uncook_program,
)

if TYPE_CHECKING:
    from ...filter import Node

__all__ = ["AfPacketSource"]

#: Ring memory and block size when none is asked for (bytes), and the block timeout (ms): see
#: ``AfPacketSource``'s arguments.
RING_SIZE_DEFAULT = 32 * 2**20
BLOCK_SIZE_DEFAULT = 4 * 2**20
BLOCK_TIMEOUT_DEFAULT_MS = 50
#: How long a quiet point waits past the block timeout for the last block (seconds).
_QUIET_SLACK = 0.05


class _Filter(NamedTuple):
    """A filter made ready for the socket: the kernel program, the expression left for the
    Session (None: the kernel does it all), and whether frames are read raw and cooked here."""

    program: list[Instruction]
    userspace: str | None
    cook_here: bool


class AfPacketSource:
    """Live capture from a Linux interface through an AF_PACKET TPACKET_V3 ring.

    Args:
        interface: an interface name, or "any" for every interface of the namespace (frames
            are then cooked, LINKTYPE_LINUX_SLL2, so each keeps its interface index).
        snaplen: bytes kept of each packet; 0 means 262144. The kernel truncates.
        promisc: put the interface in promiscuous mode while the source is open (not for "any").
        filter: a filter expression or parsed AST (``capsvc.filter.parse``), compiled to
            classic BPF for the socket's link type and attached before the first packet is
            read; None (or a blank expression) captures everything.
        direction: which packets are captured: INBOUND, OUTBOUND or UNKNOWN (both, the
            default), or tcpdump's words "in", "out", "inout" (``Direction.parse``). Each
            packet carries its Direction (PACKET_OUTGOING is OUTBOUND, anything else INBOUND).
            On a loopback interface, where each packet goes out and comes back in, both
            directions keep the incoming copy only, as libpcap does.
        cooked: read without link-layer headers (SOCK_DGRAM) and build LINUX_SLL2 frames.
            Interfaces whose ARPHRD type has no raw link type are always read cooked.
        fanout: ``(group_id, mode)`` to share the interface's packets with the other sockets of
            the group; mode is hash, lb, cpu, rollover, random or qm, optionally with flags
            joined by "+": ``(7, "hash+defrag")``, ``(7, "lb+rollover")``.
        ring_size: bytes of ring memory (whole blocks, at least 2); default 32 MiB.
        block_size: bytes per block, a multiple of the page size; default 4 MiB (8 blocks
            in the default ring). Every block handed over costs a wake-up of the reading
            thread, which costs more CPU than reading the block's frames: large blocks make
            few of them (see docs/architecture.md, "Live capture").
        block_timeout_ms: how long a partly filled block waits before it is handed over;
            default 50 (a packet of a quiet interface reaches the sinks within about 50 ms;
            tcpdump's blocks wait up to 1000 ms).
        userspace_fallback: when the filter cannot be compiled to BPF for the socket, do not
            raise: on a cooked socket of an interface with its own link-layer header (Ethernet)
            the socket reads the frames raw, the kernel filters them with the program for that
            header (``ether src ...`` included), and the cooked LINUX_SLL2 frames are built
            here; otherwise the kernel captures everything and the expression is left in
            ``userspace_filter``, which a Session given this source applies. An expression
            neither can express still raises.

    Attributes:
        linktype: ETHERNET, RAW (ARPHRD_NONE: tun, WireGuard) or LINUX_SLL2 (cooked).
        snaplen: the largest frame yielded.
        live: always True.
        userspace_filter: the filter expression the kernel does not apply, or None.
        interface: the interface name.

    Reading: ``async for batch in source`` (one batch per wake-up), or, for code that is not
    async, ``read_packet_data(timeout)`` (one packet at a time); not both at once.

    Raises:
        NoSuchInterfaceError: there is no such interface.
        CaptureError: the interface is down, the ring is too large for the memory limits, or
            the kernel refused a setting (the message says which).
        PermissionNeededError: the process lacks CAP_NET_RAW.
        capsvc.FilterCompileError: the filter cannot be expressed as classic BPF (and
            ``userspace_fallback`` is False).
        capsvc.FilterSyntaxError: the filter is malformed.
        capsvc.OptionError: a malformed argument (direction, fanout, sizes).
    """

    live = True
    #: The ring holds packets while the Session's queue is full (see ``Source.buffered``).
    buffered = True

    def __init__(
        self,
        interface: str,
        *,
        snaplen: int = SNAPLEN_DEFAULT,
        promisc: bool = True,
        filter: str | Node | None = None,
        direction: Direction | str = Direction.UNKNOWN,
        cooked: bool = False,
        fanout: tuple[int, str] | None = None,
        ring_size: int = RING_SIZE_DEFAULT,
        block_size: int = BLOCK_SIZE_DEFAULT,
        block_timeout_ms: int = BLOCK_TIMEOUT_DEFAULT_MS,
        userspace_fallback: bool = False,
    ) -> None:
        wanted = Direction.parse(direction)
        if snaplen < 0:
            raise OptionError(f"snaplen must not be negative: {snaplen}")
        fanout_value = fanout_arg(fanout)
        geometry = ring_geometry(ring_size, block_size, block_timeout_ms, page_size=mmap.PAGESIZE)
        self.interface = interface
        self.direction = wanted
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        any_device = interface == "any"
        ifindex, raw_type, loopback = (0, None, False) if any_device else _describe(interface)
        cooked = cooked or any_device or raw_type is None
        # On a loopback interface every packet is seen twice, going out and coming in: keep
        # one copy, the incoming one, as libpcap does ("any": see bpf_loopback_outgoing_prefix).
        if loopback and wanted == Direction.UNKNOWN:
            wanted = Direction.INBOUND
        self._wanted = wanted
        self._cooked = cooked
        self._raw_type = None if any_device else raw_type
        self._fallback = userspace_fallback
        self._block_timeout = block_timeout_ms / 1000
        self.linktype: LinkType = LinkType.LINUX_SLL2 if cooked else (raw_type or LinkType.RAW)
        self.userspace_filter: str | None = None
        prepared = self._prepare_filter(filter)
        self.userspace_filter = prepared.userspace
        # Fixed when the socket opens: a cooked capture whose filter needs the link-layer
        # header reads raw frames and cooks them here (see userspace_fallback).
        self._cook_here = prepared.cook_here
        self._restore_vlan = self.linktype == LinkType.ETHERNET
        self._hatype = ARPHRD_LOOPBACK if loopback else ARPHRD_ETHER
        self._own_mac = mac_of(interface) if self._cook_here else b""

        self._closed = False
        self._closing = False
        self._drained = Flag()
        self._fdwait: FdWaiter | None = None  # while being read
        self._reading = False
        self._pending: PacketBatch = []  # read at a quiet point, not yet handed out
        self._single: deque[Packet] = deque()  # read_packet_data's packets
        self._totals = [0, 0, 0]  # tp_packets, tp_drops, tp_freeze_q_cnt since open
        self._ring: PacketRing | None = PacketRing(
            interface,
            cooked=cooked and not self._cook_here,
            any_device=any_device,
            geometry=geometry,
            ignore_outgoing=wanted == Direction.INBOUND,
        )
        try:
            self._configure(ifindex, any_device, promisc, fanout_value, prepared.program)
        except BaseException:
            self._release()
            raise

    def _configure(
        self,
        ifindex: int,
        any_device: bool,
        promisc: bool,
        fanout_value: int | None,
        program: list[Instruction],
    ) -> None:
        """Bind, join what was asked for, then swap the drop-all program for the real one."""
        ring = self._live_ring()
        if not any_device:
            ring.bind()
            if promisc:
                ring.add_promisc(ifindex)
        if fanout_value is not None:
            ring.join_fanout(fanout_value)
        ring.drain_ring()
        prefix = bpf_direction_prefix(self._kernel_direction())
        if any_device and self._wanted == Direction.UNKNOWN:
            prefix = bpf_loopback_outgoing_prefix(_loopback_indexes())
        self._prefix = prefix
        ring.attach([*prefix, *program])

    # -- opening ------------------------------------------------------------------------------

    def _prepare_filter(self, filter: str | Node | None) -> _Filter:
        """Compile ``filter`` for this socket (pure CPU work: no socket is touched, so a caller
        may run it in a worker thread and ``_swap_filter`` the result in on the loop).

        Raises:
            capsvc.FilterSyntaxError: the expression is malformed.
            capsvc.FilterCompileError: neither the kernel nor (with ``userspace_fallback``) a
                Session can express it.
        """
        cooked = self._cooked
        snaplen = max(1, self.snaplen - SLL2_LEN) if cooked else self.snaplen
        accept_all: list[Instruction] = [(BPF_RET_K, 0, 0, snaplen)]
        if filter is None or (isinstance(filter, str) and not filter.strip()):
            return _Filter(accept_all, None, False)
        from ...filter import compile_bpf, parse_filter

        expr = filter if isinstance(filter, str) else str(filter)
        try:
            # On an Ethernet socket the kernel shows received frames without their outermost
            # 802.1Q tag (it is in the metadata): "vlan" has to look there too.
            program: list[Instruction] = list(
                compile_bpf(
                    filter,
                    self.linktype,
                    snaplen,
                    kernel_vlan=self.linktype == LinkType.ETHERNET and not cooked,
                )
            )
            if cooked:
                uncooked = uncook_program(program)
                if uncooked is None:
                    raise FilterCompileError(
                        "the filter reads the link-layer address, which a cooked socket's "
                        "kernel filter cannot see",
                        expr,
                        0,
                    )
                program = list(uncooked)
        except FilterCompileError:
            if not self._fallback:
                raise
            if cooked and self._raw_type == LinkType.ETHERNET:
                # The frames keep their Ethernet header on the socket; the kernel filters them
                # with the Ethernet program, and the SLL2 header is built here.
                # Cooked frames are SLL2_LEN - ETH_LEN bytes longer than the raw ones.
                raw_snaplen = max(1, self.snaplen - (SLL2_LEN - ETH_LEN))
                with contextlib.suppress(FilterCompileError):
                    raw = compile_bpf(filter, LinkType.ETHERNET, raw_snaplen, kernel_vlan=True)
                    return _Filter(list(raw), None, True)
            parse_filter(expr, self.linktype)  # raises when the Session could not match it
            return _Filter(accept_all, expr, False)
        return _Filter(program, None, False)

    def _kernel_direction(self) -> Direction:
        """What the BPF prefix must keep: nothing to do for INBOUND when the kernel already
        leaves outgoing packets out."""
        if self._wanted == Direction.INBOUND and self._live_ring().ignores_outgoing():
            return Direction.UNKNOWN
        return self._wanted

    def _live_ring(self) -> PacketRing:
        ring = self._ring
        if ring is None:
            raise CaptureError(f"the capture on {self.interface} is closed")
        return ring

    # -- reading ------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        """End a wait for the socket: it is readable, or ``aclose`` wants the last batch."""
        if self._fdwait is not None:
            self._fdwait.wake()

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        """Yield one batch per wake-up (every ready block) until ``aclose()``.

        Raises:
            RuntimeError: the source is already being iterated.
        """
        if self._reading:
            raise RuntimeError("AfPacketSource is already being read")
        return packets_only(self._batches(records=False))

    def record_batches(self) -> AsyncIterator[PacketBatch | RecordBlock]:
        """As ``async for``, but ring blocks come as RecordBlocks where the C speed-ups are
        built (``capsvc._records``; a Session reads a live AF_PACKET source this way), and
        packets read at a quiet point still as a list of Packets.

        Raises:
            RuntimeError: the source is already being read.
        """
        if self._reading:
            raise RuntimeError("AfPacketSource is already being read")
        return self._batches(records=records_available())

    async def _batches(self, *, records: bool) -> AsyncIterator[PacketBatch | RecordBlock]:
        ring = self._ring
        if self._closed or ring is None:
            return
        self._reading = True
        self._drained.clear()
        loop = Loop.current()
        # The fd is watched only while waiting: epoll is level-triggered, so a reader left
        # registered while the Session holds the source back would run on every turn.
        fdwait = self._fdwait = loop.fd_waiter(self._on_readable)
        fd = ring.fileno()
        idle_wakes = 0
        try:
            while True:
                if self._pending or self._single:
                    batch = [*self._single, *self._pending]
                    self._single.clear()
                    self._pending = []
                    yield batch
                    continue
                if self._closing:
                    await self._quiet_async(ring, loop)
                    last = self._read(ring)
                    if last:
                        yield last
                    return
                if ring.ready():
                    idle_wakes = 0
                    ready = self._read_records(ring) if records else self._read(ring)
                    if ready:
                        yield ready
                    if ring.ready():
                        # More is ready already: give the loop (the writer) a turn first.
                        await loop.sleep(0)
                    continue
                if idle_wakes > 1:
                    # Readable, yet the block to read next is not ready: another one is (the
                    # kernel's and our position parted). Start again at the oldest ready one.
                    if not ring.resync():
                        await loop.sleep(0.001)
                    idle_wakes = 0
                    continue
                await fdwait.wait(fd)
                idle_wakes += 1
        finally:
            self._reading = False
            self._fdwait = None
            self._drained.set()

    def _read(self, ring: PacketRing) -> PacketBatch:
        """Every block ready, as one batch (cooked here when the socket reads raw for it)."""
        if self._cook_here:
            batch = ring.read_ready(cooked=False, restore_vlan=False)
            return cook(batch, self._hatype, self._own_mac)
        return ring.read_ready(cooked=self._cooked, restore_vlan=self._restore_vlan)

    def _read_records(self, ring: PacketRing) -> PacketBatch | RecordBlock:
        """``_read`` as a RecordBlock, unless the packets are cooked here (in Python)."""
        if self._cook_here:
            return self._read(ring)
        return ring.read_records(cooked=self._cooked, restore_vlan=self._restore_vlan)

    # -- quiet points: replacing the filter, closing ---------------------------------------

    def _quiet_deadline(self) -> float:
        return time.monotonic() + 2 * self._block_timeout + _QUIET_SLACK

    def _quiet(self, ring: PacketRing) -> None:
        """Attach drop-all and wait (blocking, at most twice the block timeout) until the kernel
        has handed over the block it was filling."""
        ring.attach(DROP_ALL)
        deadline = self._quiet_deadline()
        time.sleep(0.001)  # a packet past the old program on another CPU lands meanwhile
        while ring.filling() and time.monotonic() < deadline:
            time.sleep(0.001)

    async def _quiet_async(self, ring: PacketRing, loop: Loop) -> None:
        """``_quiet`` without blocking the loop."""
        ring.attach(DROP_ALL)
        deadline = self._quiet_deadline()
        await loop.sleep(0.001)
        while ring.filling() and time.monotonic() < deadline:
            await loop.sleep(0.001)

    def set_filter(self, filter: str | Node | None) -> None:
        """Replace the kernel filter of the open socket (go-pcap's SetBPFFilter).

        In order: the new expression is compiled (a bad one raises and changes nothing), the
        drop-all program is attached, the block the kernel was filling is waited for (at most
        twice ``block_timeout_ms``, blocking), every packet already in the ring is read (they
        passed the old filter and are handed out first, by the next batch or
        ``read_packet_data``), and the new program is attached. No packet of the old filter
        comes after it returns, and none is lost. ``userspace_filter`` follows the new
        expression.

        Args:
            filter: an expression or parsed AST; None or blank captures everything.

        Raises:
            capsvc.FilterError: the expression is malformed or cannot be expressed (see
                ``userspace_fallback``).
            CaptureError: the source is closed, or the kernel refused the program.
        """
        drained = self._swap_filter(self._prepare_filter(filter))
        self._pending = drained  # _swap_filter took what was pending before

    def _swap_filter(self, prepared: _Filter) -> PacketBatch:
        """Put a prepared filter in place (the quiet point above); return the packets read at
        the quiet point, which passed the old filter. A change of ``cook_here`` (which fixes
        how the socket was opened) is refused with FilterCompileError."""
        ring = self._live_ring()
        if prepared.cook_here != self._cook_here:
            raise FilterCompileError(
                "this filter needs the socket opened another way (raw frames cooked here, or "
                "not): open a new source for it",
                prepared.userspace or "",
                0,
            )
        self._quiet(ring)
        drained = [*self._pending, *self._read(ring)]
        self._pending = []
        ring.attach([*self._prefix, *prepared.program])
        self.userspace_filter = prepared.userspace
        return drained

    def read_packet_data(self, timeout: float | None = None) -> Packet | None:
        """Read one packet, blocking (go-pcap's ReadPacketData), for code that is not async.

        Blocks are taken from the ring as ``async for`` takes them; the packets are handed out
        one per call, in order.

        Args:
            timeout: seconds to wait for a packet; None waits for ever, 0 only looks.

        Returns:
            The next packet, or None when ``timeout`` passed first.

        Raises:
            RuntimeError: the source is being read with ``async for``.
            CaptureError: the source is closed.
        """
        if self._reading:
            raise RuntimeError("AfPacketSource is being read with async for")
        single = self._single
        if self._pending:
            single.extend(self._pending)
            self._pending = []
        deadline = None if timeout is None else time.monotonic() + timeout
        while not single:
            ring = self._live_ring()
            if ring.ready():
                single.extend(self._read(ring))
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            poller = select.poll()
            poller.register(ring.fileno(), select.POLLIN | select.POLLERR)
            poller.poll(None if left is None else max(1, int(left * 1000)))
        return single.popleft()

    def _remove_reader(self) -> None:
        """End a wait on the socket before it is closed."""
        if self._fdwait is not None:
            self._fdwait.release()

    # -- statistics and closing ---------------------------------------------------------------

    def _poll_stats(self) -> None:
        """Add the kernel's counters (reset on each read) to the totals."""
        if self._ring is None:
            return
        packets, drops, freezes = self._ring.statistics()
        totals = self._totals
        totals[0] += packets
        totals[1] += drops
        totals[2] += freezes

    def stats(self) -> SourceStats:
        """Counters since the source was opened (PACKET_STATISTICS, accumulated).

        Returns:
            received: packets that passed the kernel filter (including those dropped);
            kernel_dropped: packets the ring had no room for; if_dropped: 0; freezes: times
            the ring was full and froze.
        """
        self._poll_stats()
        packets, drops, freezes = self._totals
        return SourceStats(packets, drops, 0, freezes)

    async def aclose(self) -> None:
        """Stop reading, keeping what the kernel counted: the drop-all program is attached, the
        block being filled is waited for, and the reader (``async for``) gets every packet left
        in the ring as its last batch; then the ring is unmapped and the socket closed.
        Idempotent; a reader that does not take its last batch within a second or so is not
        waited for."""
        if self._closed or self._closing:
            return
        self._closing = True
        if self._reading:
            self._on_readable()
            await Loop.current().wait_for(self._drained, 4 * self._block_timeout + 1.0)
        self._release()

    def _release(self) -> None:
        self._closed = self._closing = True
        self._poll_stats()
        self._remove_reader()
        ring, self._ring = self._ring, None
        if ring is not None:
            ring.close()

    def fileno(self) -> int:
        """The packet socket's fd (-1 once closed), for callers that poll it themselves."""
        return self._ring.fileno() if self._ring is not None else -1

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AfPacketSource {self.interface} {self.linktype.name} {state}>"


def _describe(interface: str) -> tuple[int, LinkType | None, bool]:
    """Index, raw link type (None: only cooked) and whether it is a loopback interface."""
    ifindex = check_interface(interface)
    arphrd = arphrd_of(interface)
    return ifindex, linktype_for_arphrd(arphrd), arphrd == ARPHRD_LOOPBACK


def _loopback_indexes() -> list[int]:
    """Interface indexes of the namespace's loopback interfaces (ARPHRD_LOOPBACK)."""
    found = []
    for index, name in socket.if_nameindex():
        with contextlib.suppress(CaptureError):  # gone while looking
            if arphrd_of(name) == ARPHRD_LOOPBACK:
                found.append(index)
    return found
