"""AF_PACKET live source: a TPACKET_V3 memory-mapped ring read a whole block at a time.

Thin IO module: it opens the packet socket, attaches the classic BPF program, maps the ring,
waits for readiness on the event loop and hands each ready block to the pure parser in
``_tpacket``. No threads: the socket's fd is watched with the loop's reader, every ready block is
copied out and returned to the kernel at once, and one batch is yielded per wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import mmap
import socket
import struct
from collections.abc import AsyncIterator, Iterable
from typing import cast

from ..._errors import CaptureError, OptionError, PermissionNeededError
from ..._packet import SNAPLEN_DEFAULT, LinkType, PacketBatch
from ...decode._const import ETH_P_ALL
from .._base import SourceStats
from .._ifaces import (
    ARPHRD_LOOPBACK,
    arphrd_of,
    check_interface,
    linktype_for_arphrd,
)
from ._tpacket import (
    BPF_RET_K,
    SLL2_LEN,
    TP_STATUS_USER,
    Instruction,
    block_status,
    bpf_direction_prefix,
    bpf_loopback_outgoing_prefix,
    fanout_arg,
    parse_block,
    ring_geometry,
    uncook_program,
)

__all__ = ["AfPacketSource"]

# -- C constants (linux/if_packet.h, linux/filter.h, asm-generic/socket.h) -----------------

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
PACKET_MR_PROMISC = 1
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26

#: struct packet_mreq: mr_ifindex, mr_type, mr_alen, mr_address[8].
PACKET_MREQ = struct.Struct("iHH8s")
#: struct tpacket_stats_v3: tp_packets, tp_drops, tp_freeze_q_cnt.
TPACKET_STATS_V3 = struct.Struct("III")
#: struct sock_filter: code, jt, jf, k.
SOCK_FILTER = struct.Struct("HBBI")
#: struct sock_fprog: len, then a pointer to the instructions (native alignment).
SOCK_FPROG = struct.Struct("@HP")

_DIRECTIONS = ("in", "out", "inout")


class AfPacketSource:
    """Live capture from a Linux interface through an AF_PACKET TPACKET_V3 ring.

    Args:
        interface: an interface name, or "any" for every interface of the namespace (frames
            are then cooked, LINKTYPE_LINUX_SLL2, so each keeps its interface index).
        snaplen: bytes kept of each packet; 0 means 262144. The kernel truncates.
        promisc: put the interface in promiscuous mode while the source is open (not for "any").
        filter: a filter expression or AST, compiled to classic BPF for the socket's link type
            and attached before the first packet is read; None captures everything.
        direction: "in", "out" or "inout" (default): which packets are captured. Each packet
            carries its Direction (PACKET_OUTGOING is OUTBOUND, anything else INBOUND). On a
            loopback interface, where each packet goes out and comes back in, "inout" keeps
            the incoming copy only, as libpcap does.
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
        CaptureError: no such interface, interface down, ring too large for the memory limits,
            or the kernel refused a setting (the message says which).
        PermissionNeededError: the process lacks CAP_NET_RAW.
        capsvc.filter.FilterCompileError: the filter cannot be expressed as classic BPF (and
            ``userspace_fallback`` is False).
        capsvc.FilterSyntaxError: the filter is malformed.
        ValueError: a malformed argument (direction, fanout, sizes).
    """

    live = True

    def __init__(
        self,
        interface: str,
        *,
        snaplen: int = SNAPLEN_DEFAULT,
        promisc: bool = True,
        filter: object | None = None,
        direction: str = "inout",
        cooked: bool = False,
        fanout: tuple[int, str] | None = None,
        ring_size: int = 32 * 2**20,
        block_size: int = 2**20,
        block_timeout_ms: int = 8,
        userspace_fallback: bool = False,
    ) -> None:
        if direction not in _DIRECTIONS:
            raise OptionError(f"direction must be 'in', 'out' or 'inout': {direction!r}")
        if snaplen < 0:
            raise OptionError(f"snaplen must not be negative: {snaplen}")
        fanout_value = fanout_arg(fanout)
        geometry = ring_geometry(ring_size, block_size, block_timeout_ms, page_size=mmap.PAGESIZE)
        self.interface = interface
        self.direction = direction
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        any_device = interface == "any"
        if any_device:
            ifindex, raw_type = 0, None
            cooked = True
            loopback = False
        else:
            ifindex = check_interface(interface)
            arphrd = arphrd_of(interface)
            raw_type = linktype_for_arphrd(arphrd)
            cooked = cooked or raw_type is None
            loopback = arphrd == ARPHRD_LOOPBACK
        # On a loopback interface every packet is seen twice, going out and coming in: keep
        # one copy, the incoming one, as libpcap does ("any": see bpf_loopback_outgoing_prefix).
        self._wanted = "in" if loopback and direction == "inout" else direction
        self._cooked = cooked
        self.linktype: LinkType = LinkType.LINUX_SLL2 if cooked else (raw_type or LinkType.RAW)
        self._restore_vlan = self.linktype == LinkType.ETHERNET
        kernel_snaplen = max(1, self.snaplen - SLL2_LEN) if cooked else self.snaplen
        self.userspace_filter: str | None = None
        program = self._compile(filter, kernel_snaplen, userspace_fallback)

        self._closed = False
        self._sock: socket.socket | None = None
        self._ring: mmap.mmap | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading = False
        self._totals = [0, 0, 0]  # tp_packets, tp_drops, tp_freeze_q_cnt since open
        self._block = 0
        self._block_size = geometry.block_size
        self._block_nr = geometry.block_nr

        sock = self._open_socket(cooked, any_device)
        self._sock = sock
        try:
            self._attach([(BPF_RET_K, 0, 0, 0)])
            if any_device:
                self._drain_queue()
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            if self._wanted == "in":
                # Older kernels lack it: the BPF prefix below then does the same job.
                with contextlib.suppress(OSError):
                    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            try:
                sock.setsockopt(SOL_PACKET, PACKET_RX_RING, geometry.pack())
                self._ring = mmap.mmap(
                    sock.fileno(),
                    geometry.ring_size,
                    mmap.MAP_SHARED,
                    mmap.PROT_READ | mmap.PROT_WRITE,
                )
            except OSError as exc:
                if exc.errno in (errno.ENOMEM, errno.EPERM, errno.EAGAIN):
                    raise CaptureError(
                        f"ring of {geometry.ring_size} bytes on {interface} is too large for "
                        f"the memory limits ({exc.strerror}): lower ring_size"
                    ) from exc
                raise CaptureError(
                    f"setting up the capture ring on {interface} failed: {exc.strerror}"
                ) from exc
            if not any_device:
                self._bind(interface)
                if promisc:
                    mreq = PACKET_MREQ.pack(ifindex, PACKET_MR_PROMISC, 0, b"")
                    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            if fanout_value is not None:
                try:
                    sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", fanout_value))
                except OSError as exc:
                    raise CaptureError(
                        f"joining fanout group {fanout_value & 0xFFFF} on {interface} failed: "
                        f"{exc.strerror} (the group exists with another mode or socket type?)"
                    ) from exc
            self._drain_ring()
            prefix = bpf_direction_prefix(self._kernel_direction())
            if any_device and self._wanted == "inout":
                prefix = bpf_loopback_outgoing_prefix(_loopback_indexes())
            self._attach([*prefix, *program])
        except BaseException:
            self._release()
            raise

    # -- opening ------------------------------------------------------------------------------

    def _compile(self, filter: object | None, snaplen: int, fallback: bool) -> list[Instruction]:
        """The kernel program for ``filter`` (accept-all when the Session has to match)."""
        accept_all: list[Instruction] = [(BPF_RET_K, 0, 0, snaplen)]
        if filter is None or (isinstance(filter, str) and not filter.strip()):
            return accept_all
        from ...filter import FilterCompileError, Node, compile_bpf

        expr = filter if isinstance(filter, str) else str(filter)
        node = cast(Node | str, filter)
        try:
            # On an Ethernet socket the kernel shows received frames without their outermost
            # 802.1Q tag (it is in the metadata): "vlan" has to look there too.
            program: list[Instruction] = list(
                compile_bpf(
                    node,
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

    def _open_socket(self, cooked: bool, any_device: bool) -> socket.socket:
        kind = socket.SOCK_DGRAM if cooked else socket.SOCK_RAW
        # Bound to one interface later; "any" cannot be bound by name, so it listens from here.
        proto = socket.htons(ETH_P_ALL) if any_device else 0
        try:
            sock = socket.socket(socket.AF_PACKET, kind | socket.SOCK_NONBLOCK, proto)
        except PermissionError as exc:
            raise PermissionNeededError(
                f"capturing on {self.interface} needs CAP_NET_RAW: run as root or grant the "
                "capability (setcap cap_net_raw+ep)"
            ) from exc
        return sock

    def _bind(self, interface: str) -> None:
        assert self._sock is not None
        try:
            self._sock.bind((interface, ETH_P_ALL))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise CaptureError(f"no such interface: {interface}") from exc
            if exc.errno == errno.ENETDOWN:
                raise CaptureError(
                    f"interface {interface} is down: bring it up first (ip link set {interface} up)"
                ) from exc
            raise CaptureError(f"binding to {interface} failed: {exc.strerror}") from exc

    def _kernel_direction(self) -> str:
        if self._wanted == "in":
            return "inout" if self._ignores_outgoing() else "in"
        return self._wanted

    def _ignores_outgoing(self) -> bool:
        assert self._sock is not None
        try:
            return bool(self._sock.getsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING))
        except OSError:
            return False

    def _attach(self, program: Iterable[Instruction]) -> None:
        """SO_ATTACH_FILTER with ``program`` (replaces the one attached before)."""
        assert self._sock is not None
        code = b"".join(SOCK_FILTER.pack(c, jt, jf, k) for c, jt, jf, k in program)
        count = len(code) // SOCK_FILTER.size
        if count > 4096:
            raise CaptureError(f"BPF program of {count} instructions exceeds the kernel's 4096")
        buf = ctypes.create_string_buffer(code, len(code))
        fprog = SOCK_FPROG.pack(count, ctypes.addressof(buf))
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError as exc:
            raise CaptureError(f"the kernel refused the BPF program: {exc.strerror}") from exc

    def _drain_queue(self) -> None:
        """Discard packets queued on the socket before the drop-all program was attached."""
        assert self._sock is not None
        while True:
            try:
                self._sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
            except (BlockingIOError, InterruptedError):
                return

    def _drain_ring(self) -> None:
        """Hand every ready block back unread (packets that came before the real program)."""
        ring = self._ring
        assert ring is not None
        for _ in range(self._block_nr):
            base = self._block * self._block_size
            if not block_status(ring, base) & TP_STATUS_USER:
                return
            struct.pack_into("<I", ring, base + 8, 0)
            self._block = (self._block + 1) % self._block_nr

    # -- reading ------------------------------------------------------------------------------

    def _read_ready(self) -> PacketBatch:
        """Copy out every block the kernel has handed over, returning each one at once."""
        ring = self._ring
        batch: PacketBatch = []
        if ring is None:
            return batch
        size, count = self._block_size, self._block_nr
        index = self._block
        cooked, vlan = self._cooked, self._restore_vlan
        for _ in range(count):
            base = index * size
            if not block_status(ring, base) & TP_STATUS_USER:
                break
            parse_block(ring, base, cooked=cooked, restore_vlan=vlan, out=batch)
            ring[base + 8 : base + 12] = b"\0\0\0\0"  # TP_STATUS_KERNEL: the block is theirs again
            index = index + 1 if index + 1 < count else 0
        self._block = index
        return batch

    def _ready(self) -> bool:
        ring = self._ring
        return ring is not None and bool(
            block_status(ring, self._block * self._block_size) & TP_STATUS_USER
        )

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
        if self._closed or self._sock is None:
            return
        self._reading = True
        loop = asyncio.get_running_loop()
        self._loop = loop
        fd = self._sock.fileno()
        loop.add_reader(fd, self._on_readable)
        idle_wakes = 0
        try:
            while not self._closed:
                if self._ready():
                    idle_wakes = 0
                    batch = self._read_ready()
                    if batch:
                        yield batch
                    if self._ready():
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
        loop, sock = self._loop, self._sock
        if loop is not None and sock is not None and not loop.is_closed():
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                loop.remove_reader(sock.fileno())
        self._loop = None

    # -- statistics and closing ---------------------------------------------------------------

    def _poll_stats(self) -> None:
        """Add the kernel's counters (reset on each read) to the totals."""
        sock = self._sock
        if sock is None:
            return
        try:
            raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS_V3.size)
        except OSError:
            return
        packets, drops, freezes = TPACKET_STATS_V3.unpack(raw)
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
        sock, self._sock = self._sock, None
        try:
            if ring is not None:
                ring.close()
        finally:
            if sock is not None:
                sock.close()

    def fileno(self) -> int:
        """The packet socket's fd (-1 once closed), for callers that poll it themselves."""
        return self._sock.fileno() if self._sock is not None else -1

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AfPacketSource {self.interface} {self.linktype.name} {state}>"


def _loopback_indexes() -> list[int]:
    """Interface indexes of the namespace's loopback interfaces (ARPHRD_LOOPBACK)."""
    found = []
    for index, name in socket.if_nameindex():
        with contextlib.suppress(CaptureError):  # gone while looking
            if arphrd_of(name) == ARPHRD_LOOPBACK:
                found.append(index)
    return found
