"""The AF_PACKET socket and its memory-mapped TPACKET_V3 ring: the IO under AfPacketSource.

Thin IO module: socket options, the mmap, and block hand-over. Parsing a block is the pure
``_tpacket.parse_block``; deciding which program to attach and when is the source's business.
Every method raises ``CaptureError`` with what the kernel said and what to do about it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import socket
import struct
from collections.abc import Iterable

from ..._bpf import SOCK_FILTER, pack_program
from ..._errors import CaptureError, NoSuchInterfaceError, PermissionNeededError
from ..._packet import PacketBatch
from ..._records import RecordBlock
from ...decode._const import ETH_P_ALL
from ._tpacket import (
    BPF_RET_K,
    TP_STATUS_USER,
    Instruction,
    RingGeometry,
    block_records,
    block_status,
    parse_block,
)

__all__ = ["DROP_ALL", "PacketRing"]

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
#: struct sock_fprog: len, then a pointer to the instructions (native alignment).
SOCK_FPROG = struct.Struct("@HP")
#: The kernel's limit on a socket filter's length.
BPF_MAXINSNS = 4096
#: A block's status word (tpacket_block_desc.hdr.bh1.block_status).
_STATUS_OFFSET = 8
#: A block's sequence number (tpacket_block_desc.hdr.bh1.seq_num), numbering blocks as filled.
_SEQ_OFFSET = 24
_U64 = struct.Struct("<Q")
#: A block's packet count (tpacket_block_desc.hdr.bh1.num_pkts), which the kernel raises as it
#: fills the block and sets to 0 when it opens the block.
_NUM_PKTS_OFFSET = 12
#: The program that takes nothing.
DROP_ALL: list[Instruction] = [(BPF_RET_K, 0, 0, 0)]
_ZERO = b"\0\0\0\0"


class PacketRing:
    """A non-blocking AF_PACKET socket with a TPACKET_V3 receive ring mapped.

    Opening attaches a drop-all program first, so nothing is captured until ``attach`` puts
    the real one in place (after ``drain_ring`` has thrown away what slipped in before).

    Args:
        interface: the interface (for messages; binding is ``bind``).
        cooked: SOCK_DGRAM (no link-layer header) instead of SOCK_RAW.
        any_device: the socket listens on every interface (it cannot be bound by name).
        geometry: the ring's blocks and frames.
        ignore_outgoing: ask the kernel to leave outgoing packets out (PACKET_IGNORE_OUTGOING);
            older kernels lack it, which ``ignores_outgoing`` then tells.

    Raises:
        PermissionNeededError: the process lacks CAP_NET_RAW.
        CaptureError: the ring is too large for the memory limits, or the kernel refused it.
    """

    def __init__(
        self,
        interface: str,
        *,
        cooked: bool,
        any_device: bool,
        geometry: RingGeometry,
        ignore_outgoing: bool = False,
    ) -> None:
        self.interface = interface
        self.block_size = geometry.block_size
        self.block_nr = geometry.block_nr
        #: The block to read next.
        self.block = 0
        self._ring: mmap.mmap | None = None
        self._sock: socket.socket | None = _open_socket(interface, cooked, any_device)
        try:
            self.attach(DROP_ALL)  # nothing until the real program is in place
            if any_device:
                self._drain_queue()
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            if ignore_outgoing:
                with contextlib.suppress(OSError):
                    self.sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self._map(geometry)
        except BaseException:
            self.close()
            raise

    @property
    def sock(self) -> socket.socket:
        """The socket (RuntimeError once closed)."""
        if self._sock is None:
            raise RuntimeError(f"the packet socket on {self.interface} is closed")
        return self._sock

    def _map(self, geometry: RingGeometry) -> None:
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, geometry.pack())
            self._ring = mmap.mmap(
                self.sock.fileno(),
                geometry.ring_size,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
        except OSError as exc:
            if exc.errno in (errno.ENOMEM, errno.EPERM, errno.EAGAIN):
                raise CaptureError(
                    f"ring of {geometry.ring_size} bytes on {self.interface} is too large for "
                    f"the memory limits ({exc.strerror}): lower ring_size"
                ) from exc
            raise CaptureError(
                f"setting up the capture ring on {self.interface} failed: {exc.strerror}"
            ) from exc

    # -- configuring --------------------------------------------------------------------------

    def bind(self) -> None:
        """Bind to the interface (every protocol)."""
        name = self.interface
        try:
            self.sock.bind((name, ETH_P_ALL))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise NoSuchInterfaceError(name) from exc
            if exc.errno == errno.ENETDOWN:
                raise CaptureError(
                    f"interface {name} is down: bring it up first (ip link set {name} up)"
                ) from exc
            raise CaptureError(f"binding to {name} failed: {exc.strerror}") from exc

    def add_promisc(self, ifindex: int) -> None:
        """Put the interface in promiscuous mode while the socket is open."""
        mreq = PACKET_MREQ.pack(ifindex, PACKET_MR_PROMISC, 0, b"")
        self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)

    def join_fanout(self, value: int) -> None:
        """Join a fanout group (``PACKET_FANOUT`` with group id and mode packed in ``value``)."""
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", value))
        except OSError as exc:
            raise CaptureError(
                f"joining fanout group {value & 0xFFFF} on {self.interface} failed: "
                f"{exc.strerror} (the group exists with another mode or socket type?)"
            ) from exc

    def ignores_outgoing(self) -> bool:
        """True when the kernel leaves outgoing packets out (PACKET_IGNORE_OUTGOING is on)."""
        try:
            return bool(self.sock.getsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING))
        except OSError:
            return False

    def attach(self, program: Iterable[Instruction]) -> None:
        """SO_ATTACH_FILTER with ``program`` (replaces the one attached before)."""
        code = pack_program(program)
        count = len(code) // SOCK_FILTER.size
        if count > BPF_MAXINSNS:
            raise CaptureError(f"BPF program of {count} instructions exceeds the kernel's 4096")
        buf = ctypes.create_string_buffer(code, len(code))
        fprog = SOCK_FPROG.pack(count, ctypes.addressof(buf))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError as exc:
            raise CaptureError(f"the kernel refused the BPF program: {exc.strerror}") from exc

    def _drain_queue(self) -> None:
        """Discard packets queued on the socket before the drop-all program was attached."""
        while True:
            try:
                self.sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
            except (BlockingIOError, InterruptedError):
                return

    def drain_ring(self) -> None:
        """Hand every ready block back unread (packets that came before the real program)."""
        ring = self._ring
        assert ring is not None
        for _ in range(self.block_nr):
            base = self.block * self.block_size
            if not block_status(ring, base) & TP_STATUS_USER:
                return
            _give_back(ring, base)
            self.block = (self.block + 1) % self.block_nr

    def filling(self) -> bool:
        """True while the kernel holds a block it has put packets in but not handed over yet
        (it hands it over when the block is full or its timeout passes).

        A block handed back has its packet count cleared (see ``read_ready``), so a count
        the kernel owns is one it wrote since it opened the block.
        """
        ring = self._ring
        if ring is None:
            return False
        index = self.block
        for _ in range(self.block_nr):
            base = index * self.block_size
            if not block_status(ring, base) & TP_STATUS_USER:
                count: int = struct.unpack_from("=I", ring, base + _NUM_PKTS_OFFSET)[0]
                return count > 0
            index = (index + 1) % self.block_nr
        return False

    # -- reading ------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True when the next block belongs to userspace."""
        ring = self._ring
        return ring is not None and bool(
            block_status(ring, self.block * self.block_size) & TP_STATUS_USER
        )

    def resync(self) -> bool:
        """Move the read position to the oldest block userspace holds (by the kernel's block
        sequence number); False when none is ready."""
        ring = self._ring
        if ring is None:
            return False
        found: tuple[int, int] | None = None
        for index in range(self.block_nr):
            base = index * self.block_size
            if block_status(ring, base) & TP_STATUS_USER:
                seq = _U64.unpack_from(ring, base + _SEQ_OFFSET)[0]
                if found is None or seq < found[0]:
                    found = (seq, index)
        if found is None:
            return False
        self.block = found[1]
        return True

    def read_ready(self, *, cooked: bool, restore_vlan: bool) -> PacketBatch:
        """Copy out every block the kernel has handed over, returning each one at once."""
        ring = self._ring
        batch: PacketBatch = []
        if ring is None:
            return batch
        size, count = self.block_size, self.block_nr
        index = self.block
        for _ in range(count):
            base = index * size
            if not block_status(ring, base) & TP_STATUS_USER:
                break
            parse_block(ring, base, cooked=cooked, restore_vlan=restore_vlan, out=batch)
            # TP_STATUS_KERNEL: the block is the kernel's again; its count cleared first (the
            # kernel does so itself when it opens the block), so ``filling`` can trust it.
            _give_back(ring, base)
            index = index + 1 if index + 1 < count else 0
        self.block = index
        return batch

    def read_records(self, *, cooked: bool, restore_vlan: bool) -> RecordBlock:
        """``read_ready`` as a RecordBlock (one bytes object a ring block; C only)."""
        ring = self._ring
        parts: list[bytes] = []
        count = wire = 0
        if ring is not None:
            size, blocks = self.block_size, self.block_nr
            index = self.block
            for _ in range(blocks):
                base = index * size
                if not block_status(ring, base) & TP_STATUS_USER:
                    break
                records, n, w = block_records(ring, base, cooked=cooked, restore_vlan=restore_vlan)
                _give_back(ring, base)
                if n:
                    parts.append(records)
                    count += n
                    wire += w
                index = index + 1 if index + 1 < blocks else 0
            self.block = index
        return RecordBlock(parts, count, wire)

    def statistics(self) -> tuple[int, int, int]:
        """PACKET_STATISTICS since the last call (the kernel resets them on each read):
        packets, drops, ring freezes; zeros once closed."""
        sock = self._sock
        if sock is None:
            return (0, 0, 0)
        try:
            raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS_V3.size)
        except OSError:
            return (0, 0, 0)
        packets, drops, freezes = TPACKET_STATS_V3.unpack(raw)
        return packets, drops, freezes

    def fileno(self) -> int:
        """The socket's fd, -1 once closed."""
        return self._sock.fileno() if self._sock is not None else -1

    def close(self) -> None:
        """Unmap the ring and close the socket; idempotent."""
        ring, self._ring = self._ring, None
        sock, self._sock = self._sock, None
        try:
            if ring is not None:
                ring.close()
        finally:
            if sock is not None:
                sock.close()


def _give_back(ring: mmap.mmap, base: int) -> None:
    """Hand a block back to the kernel: its packet count cleared first, then TP_STATUS_KERNEL
    (in that order: once the status is written the kernel may open the block and count)."""
    ring[base + _NUM_PKTS_OFFSET : base + _NUM_PKTS_OFFSET + 4] = _ZERO
    ring[base + _STATUS_OFFSET : base + _STATUS_OFFSET + 4] = _ZERO


def _open_socket(interface: str, cooked: bool, any_device: bool) -> socket.socket:
    kind = socket.SOCK_DGRAM if cooked else socket.SOCK_RAW
    # Bound to one interface later; "any" cannot be bound by name, so it listens from here.
    proto = socket.htons(ETH_P_ALL) if any_device else 0
    try:
        return socket.socket(socket.AF_PACKET, kind | socket.SOCK_NONBLOCK, proto)
    except PermissionError as exc:
        raise PermissionNeededError(
            f"capturing on {interface} needs CAP_NET_RAW: run as root or grant the "
            "capability (setcap cap_net_raw+ep)"
        ) from exc
