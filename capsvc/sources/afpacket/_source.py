"""AF_PACKET live source: a TPACKET_V3 memory-mapped ring read a whole block at a time.

Thin IO module: it decides the kernel program (direction prefix, compiled filter), and waits for
readiness on the event loop; the socket and the ring are ``_socket.PacketRing``, block parsing
is the pure ``_tpacket``. No threads: the socket's fd is watched with the loop's reader, every
ready block is copied out and returned to the kernel at once, and one batch is yielded per
wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..._errors import CaptureError, OptionError
from ..._packet import SNAPLEN_DEFAULT, Direction, LinkType, PacketBatch
from .._base import SourceStats
from .._ifaces import (
    ARPHRD_LOOPBACK,
    arphrd_of,
    check_interface,
    linktype_for_arphrd,
)
from ._socket import PacketRing
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
        block_size: bytes per block, a multiple of the page size; default 1 MiB.
        block_timeout_ms: how long a partly filled block waits before it is handed over.
        userspace_fallback: when the filter cannot be compiled to BPF, capture everything in
            the kernel and leave the expression in ``userspace_filter`` for the Session to
            match (``Session(source=src, matcher=src.userspace_filter)``) instead of raising.

    Attributes:
        linktype: ETHERNET, RAW (ARPHRD_NONE: tun, WireGuard) or LINUX_SLL2 (cooked).
        snaplen: the largest frame yielded.
        live: always True.
        userspace_filter: the filter expression the kernel does not apply, or None.
        interface: the interface name.

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
        ring_size: int = 32 * 2**20,
        block_size: int = 2**20,
        block_timeout_ms: int = 8,
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
        self.linktype: LinkType = LinkType.LINUX_SLL2 if cooked else (raw_type or LinkType.RAW)
        self._restore_vlan = self.linktype == LinkType.ETHERNET
        kernel_snaplen = max(1, self.snaplen - SLL2_LEN) if cooked else self.snaplen
        self.userspace_filter: str | None = None
        program = self._compile(filter, kernel_snaplen, userspace_fallback)

        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading = False
        self._totals = [0, 0, 0]  # tp_packets, tp_drops, tp_freeze_q_cnt since open
        self._ring: PacketRing | None = PacketRing(
            interface,
            cooked=cooked,
            any_device=any_device,
            geometry=geometry,
            ignore_outgoing=wanted == Direction.INBOUND,
        )
        try:
            self._configure(ifindex, any_device, promisc, fanout_value, program)
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
        ring.attach([*prefix, *program])

    # -- opening ------------------------------------------------------------------------------

    def _compile(
        self, filter: str | Node | None, snaplen: int, fallback: bool
    ) -> list[Instruction]:
        """The kernel program for ``filter`` (accept-all when the Session has to match)."""
        accept_all: list[Instruction] = [(BPF_RET_K, 0, 0, snaplen)]
        if filter is None or (isinstance(filter, str) and not filter.strip()):
            return accept_all
        from ...filter import FilterCompileError, compile_bpf

        expr = filter if isinstance(filter, str) else str(filter)
        try:
            # On an Ethernet socket the kernel shows received frames without their outermost
            # 802.1Q tag (it is in the metadata): "vlan" has to look there too.
            program: list[Instruction] = list(
                compile_bpf(
                    filter,
                    self.linktype,
                    snaplen,
                    kernel_vlan=self.linktype == LinkType.ETHERNET and not self._cooked,
                )
            )
            if self._cooked:
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
            if not fallback:
                raise
            self.userspace_filter = expr
            return accept_all
        return program

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
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_readable(self, loop: asyncio.AbstractEventLoop) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        """Yield one batch per wake-up (every ready block) until ``aclose()``.

        Raises:
            RuntimeError: the source is already being iterated.
        """
        if self._reading:
            raise RuntimeError("AfPacketSource is already being read")
        return self._batches()

    async def _batches(self) -> AsyncIterator[PacketBatch]:
        ring = self._ring
        if self._closed or ring is None:
            return
        self._reading = True
        loop = asyncio.get_running_loop()
        self._loop = loop
        loop.add_reader(ring.fileno(), self._on_readable)
        idle_wakes = 0
        cooked, vlan = self._cooked, self._restore_vlan
        try:
            while not self._closed:
                if ring.ready():
                    idle_wakes = 0
                    batch = ring.read_ready(cooked=cooked, restore_vlan=vlan)
                    if batch:
                        yield batch
                    if ring.ready():
                        # More is ready already: give the loop (the writer) a turn first.
                        await asyncio.sleep(0)
                    continue
                if idle_wakes > 1:  # readable yet nothing ready (an error state): don't spin
                    await asyncio.sleep(0.001)
                await self._wait_readable(loop)
                idle_wakes += 1
        finally:
            self._reading = False
            if not self._closed:
                self._remove_reader()

    def _remove_reader(self) -> None:
        loop, ring = self._loop, self._ring
        if loop is not None and ring is not None and not loop.is_closed():
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                loop.remove_reader(ring.fileno())
        self._loop = None

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
        """Stop reading: wake a pending wait, unmap the ring, close the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._on_readable()
        self._release()

    def _release(self) -> None:
        self._closed = True
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
