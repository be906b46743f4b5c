"""Where a live capture's time goes: counters around ``capsvc capture -w F udp`` on a veth burst.

The capture process is what ``capsvc capture -p -w F udp`` builds (an AfPacketSource with the
CLI's options, a Session writing pcap, uvloop), with probes added from outside the package:

- the source is a subclass whose ``_on_readable`` and ``_read_ready`` count wake-ups, ring
  blocks ready at each read (the ring's fill), packets per read, time and CPU per read, and how
  late each block is read (now minus the block's ``ts_last_pkt``, stamped by the kernel when the
  block's last packet arrived);
- the Session's ``_enqueue`` records the queue's length and the drops of every batch;
- the pcap sink's ``write_batch`` and ``flush`` record batch sizes and time on the writer thread;
- a timer on the loop samples the kernel's drop counter, so drops can be placed in time;
- at the end each thread's CPU, run-queue wait and context switches (/proc/self/task/*).

Variants (``--variant``, repeatable) change one thing at a time, from outside the package, to
measure a candidate change before anyone makes it: the ring and block geometry, the queue size,
the GIL switch interval, blocks read per wake-up, and three prototypes of a pcap fast path that
bypass the Session (block -> pcap on the loop thread: Packet tuples + the pcap encoder, records
straight from the ring without a Packet per frame, and a C loop loaded with ctypes).

Optionally ``--py-spy`` records the first variant with py-spy (``--threads --idle
--nonblocking``) and ``--py-spy-gil`` again with ``--gil`` (only the thread holding the GIL is
sampled); both are summarised per thread. (perf's sampling events give no samples on this
machine's kernel, so there is no perf profile.)

Run as root: ``python3 bench/profile_live.py [--frames N] [--repeat R] [--variant NAME ...]``.
Prints markdown tables (the figures docs/profile-live.md is written from).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import json
import mmap
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import live  # noqa: E402  (the test network and trafgen config of bench/live.py)

#: One variant: (what it changes, the options of the capture process).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("the defaults: 32 MiB ring of 1 MiB blocks, 8 ms, queue 65,536", {}),
    "queue-1M": ("queue of 1,048,576 packets (larger than the ring)", {"bufsize": 1 << 20}),
    "ring-64M": ("ring 64 MiB", {"ring_size": 64 << 20}),
    "ring-128M": ("ring 128 MiB", {"ring_size": 128 << 20}),
    "ring-2M": ("ring 2 MiB (tcpdump's default buffer)", {"ring_size": 2 << 20}),
    "block-256K": ("blocks of 256 KiB (same 32 MiB ring)", {"block_size": 256 << 10}),
    "block-4M": ("blocks of 4 MiB (same 32 MiB ring)", {"block_size": 4 << 20}),
    "tmo-100": ("block timeout 100 ms", {"block_timeout_ms": 100}),
    "switch-0.5ms": ("GIL switch interval 0.5 ms (default 5 ms)", {"switch_interval": 0.0005}),
    "switch-50ms": ("GIL switch interval 50 ms", {"switch_interval": 0.05}),
    "read-1-block": ("one block per read, then the loop's turn", {"max_blocks": 1}),
    "hold-in-ring": (
        "leave blocks in the ring while the queue has no room for one",
        {"hold_in_ring": True},
    ),
    "text": ("text sink to /dev/null instead of pcap", {"text": True}),
    "loop-packets": (
        "prototype: no Session; parse_block + the pcap encoder on the loop thread",
        {"direct": "packets"},
    ),
    "loop-records": (
        "prototype: no Session, no Packet: records built from the ring on the loop thread",
        {"direct": "records"},
    ),
    "loop-c": ("prototype: no Session; a C loop turns each block into records", {"direct": "c"}),
}

#: The C prototype: one TPACKET_V3 block to pcap records (nanosecond magic), Ethernet, no VLAN
#: restore. Returns the bytes written to ``out`` (0 when ``cap`` is too small).
C_BLOCK = r"""
#include <stdint.h>
#include <string.h>

struct hdr { uint32_t next, sec, nsec, snaplen, len, status; uint16_t mac, net; };

size_t block_to_pcap(const uint8_t *block, uint8_t *out, size_t cap) {
    uint32_t num = *(const uint32_t *)(block + 12);
    uint32_t off = *(const uint32_t *)(block + 16);
    size_t n = 0;
    for (uint32_t i = 0; i < num; i++) {
        const struct hdr *h = (const struct hdr *)(block + off);
        if (n + 16 + h->snaplen > cap) return 0;
        uint32_t rec[4] = {h->sec, h->nsec, h->snaplen, h->len};
        memcpy(out + n, rec, 16);
        memcpy(out + n + 16, block + off + h->mac, h->snaplen);
        n += 16 + h->snaplen;
        if (!h->next) break;
        off += h->next;
    }
    return n;
}
"""


# -- the capture process ---------------------------------------------------------------------


class Probe:
    """Counters the probes fill (lists of ints; a few hundred entries per burst)."""

    def __init__(self) -> None:
        self.readable = 0  # the fd's reader callbacks (epoll wake-ups)
        self.reads: list[tuple[int, int, int, int, int, int]] = []  # t, blocks, pkts, ns, cpu, lag
        self.block_pkts: list[int] = []
        self.block_tmo = 0  # blocks the kernel closed by timeout, not full
        self.enqueues: list[tuple[int, int, int, int]] = []  # t, queue before, batch, dropped
        self.writes: list[tuple[int, int, int, int]] = []  # t, packets, ns, cpu
        self.flush_ns = 0
        self.kernel_drops: list[tuple[int, int]] = []  # t, total kernel drops so far
        self.loop_tid = threading.get_native_id()
        self.writer_tid = 0


def _probed_source_class() -> type:
    from capsvc.sources.afpacket._source import AfPacketSource

    class ProbedSource(AfPacketSource):
        probe: Probe

        def _on_readable(self) -> None:
            self.probe.readable += 1
            super()._on_readable()

    return ProbedSource


class ProbedRing:
    """Stands in for the source's PacketRing: counts and times every read, and can read fewer
    blocks (``max_blocks``) or only what the queue has room for (``room``). Everything else is
    the ring's own."""

    _desc = struct.Struct("<IIIIQIIII")  # version, priv, status, num, first, len, seq, ts x2

    def __init__(self, ring: Any, probe: Probe) -> None:
        self._inner = ring
        self.probe = probe
        self.max_blocks = 0
        self.room: Any = None  # a callable: packets the queue can still take

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _ready_blocks(self) -> list[tuple[int, int, int, int]]:
        from capsvc.sources.afpacket._tpacket import TP_STATUS_USER

        inner = self._inner
        mm = inner._ring
        found: list[tuple[int, int, int, int]] = []
        if mm is None:
            return found
        index = inner.block
        for _ in range(inner.block_nr):
            fields = self._desc.unpack_from(mm, index * inner.block_size)
            if not fields[2] & TP_STATUS_USER:
                break
            found.append((fields[2], fields[3], fields[-2], fields[-1]))
            index = (index + 1) % inner.block_nr
        return found

    def read_ready(self, *, cooked: bool, restore_vlan: bool) -> list[Any]:
        inner, probe = self._inner, self.probe
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        ready = self._ready_blocks()
        take = len(ready)
        if self.max_blocks:
            take = min(take, self.max_blocks)
        if self.room is not None and ready:
            left, fits = self.room(), 0
            for _status, num, _s, _ns in ready[:take]:
                if num > left:
                    break
                left -= num
                fits += 1
            take = fits  # nothing when the queue cannot take the next block: it waits
        lag = 0
        if ready and take:
            _status, _num, sec, nsec = ready[0]
            lag = time.time_ns() - (sec * 1_000_000_000 + nsec)
        batch: list[Any] = []
        if take < len(ready):
            batch = self._read_some(take, cooked, restore_vlan) if take else []
        elif take:
            before = inner.block
            batch = inner.read_ready(cooked=cooked, restore_vlan=restore_vlan)  # the source's
            take = (inner.block - before) % inner.block_nr or inner.block_nr
            # Blocks that became ready while it read: counted, their sizes unknown here.
            ready = ready + [(0, 0, 0, 0)] * max(0, take - len(ready))
        for status, num, _s, _ns in ready[:take]:
            probe.block_pkts.append(num)
            if status & 0x20:  # TP_STATUS_BLK_TMO
                probe.block_tmo += 1
        probe.reads.append(
            (t0, take, len(batch), time.perf_counter_ns() - t0, time.thread_time_ns() - c0, lag)
        )
        return batch

    def _read_some(self, take: int, cooked: bool, restore_vlan: bool) -> list[Any]:
        from capsvc.sources.afpacket._tpacket import parse_block

        inner = self._inner
        mm = inner._ring
        batch: list[Any] = []
        index = inner.block
        for _ in range(take):
            base = index * inner.block_size
            parse_block(mm, base, cooked=cooked, restore_vlan=restore_vlan, out=batch)
            mm[base + 8 : base + 12] = b"\0\0\0\0"
            index = (index + 1) % inner.block_nr
        inner.block = index
        return batch

    def ready(self) -> bool:
        if self.room is not None:
            ready = self._ready_blocks()
            return bool(ready) and ready[0][1] <= self.room()
        return bool(self._inner.ready())


def _thread_table() -> dict[str, dict[str, int]]:
    """CPU ns, run-queue wait ns and context switches of every thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        base = f"/proc/self/task/{tid}"
        try:
            run, wait, slices = (int(x) for x in Path(f"{base}/schedstat").read_text().split())
            status = Path(f"{base}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        out[tid] = {
            "cpu_ns": run,
            "runq_wait_ns": wait,
            "slices": slices,
            "voluntary": int(fields["voluntary_ctxt_switches"]),
            "involuntary": int(fields["nonvoluntary_ctxt_switches"]),
        }
    return out


def worker(interface: str, output: str, options: dict[str, Any]) -> None:
    """Capture like ``capsvc capture -p -w OUTPUT udp`` with the probes; print JSON at the end."""
    import uvloop

    from capsvc import Session
    from capsvc._run import run_session

    if "switch_interval" in options:
        sys.setswitchinterval(options["switch_interval"])
    probe = Probe()
    cls = _probed_source_class()
    kwargs = {
        k: options[k] for k in ("ring_size", "block_size", "block_timeout_ms") if k in options
    }
    source = cls(interface, promisc=False, filter=live.FILTER, userspace_fallback=True, **kwargs)
    source.probe = probe
    geometry = (source._ring.block_nr, source._ring.block_size)
    if not options.get("direct"):
        source._ring = ProbedRing(source._ring, probe)
        source._ring.max_blocks = options.get("max_blocks", 0)
    result: dict[str, Any] = {}

    async def sample_drops() -> None:
        # The thread table is kept from the last sample: the writer thread is gone at the end.
        tick = 0
        while True:
            probe.kernel_drops.append((time.perf_counter_ns(), source.stats().kernel_dropped))
            if tick % 10 == 0:
                result["threads"] = _thread_table()
            tick += 1
            await asyncio.sleep(0.05)

    async def main() -> None:
        sampler = asyncio.ensure_future(sample_drops())
        started = time.perf_counter_ns()
        if options.get("direct"):
            stats = await direct(source, output, options["direct"], probe, result)
        else:
            stats = await via_session(source, output, options, probe)
        sampler.cancel()
        result.update(stats)
        result["wall_ns"] = time.perf_counter_ns() - started

    def via_session(source: Any, output: str, options: dict[str, Any], probe: Probe) -> Any:
        kwargs: dict[str, Any] = {"source": source}
        if options.get("text"):
            kwargs["text_output"] = "/dev/null"
        else:
            kwargs["output"] = output
        if "bufsize" in options:
            kwargs["bufsize"] = options["bufsize"]
        session = Session(**kwargs)
        if options.get("hold_in_ring"):
            source._ring.room = lambda: session.bufsize - len(session._queue)
        _probe_session(session, probe)

        async def run() -> dict[str, Any]:
            result["threads_at_ready"] = _thread_table()
            print("ready", flush=True)
            stats = await run_session(session)
            return {"stats": stats._asdict()}

        return run()

    uvloop.run(main())
    result["probe"] = {
        "readable": probe.readable,
        "reads": probe.reads,
        "block_pkts": probe.block_pkts,
        "block_tmo": probe.block_tmo,
        "enqueues": probe.enqueues,
        "writes": probe.writes,
        "flush_ns": probe.flush_ns,
        "kernel_drops": probe.kernel_drops,
        "loop_tid": probe.loop_tid,
        "writer_tid": probe.writer_tid,
        "block_nr": geometry[0],
        "block_size": geometry[1],
    }
    # To a file: a large line on a pipe is lost whole if the process dies while writing it.
    Path(options["result_path"]).write_text(json.dumps(result))


def _probe_session(session: Any, probe: Probe) -> None:
    """Wrap the Session's enqueue and its first sink's write_batch and flush."""
    enqueue = session._enqueue

    def probed_enqueue(batch: list[Any]) -> None:
        before, dropped = len(session._queue), session._dropped
        enqueue(batch)
        probe.enqueues.append(
            (time.perf_counter_ns(), before, len(batch), session._dropped - dropped)
        )

    session._enqueue = probed_enqueue
    sink = session._sinks[0]
    write_batch, flush = sink.write_batch, sink.flush

    def probed_write(batch: list[Any]) -> None:
        probe.writer_tid = threading.get_native_id()
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        write_batch(batch)
        probe.writes.append(
            (t0, len(batch), time.perf_counter_ns() - t0, time.thread_time_ns() - c0)
        )

    def probed_flush() -> None:
        t0 = time.perf_counter_ns()
        flush()
        probe.flush_ns += time.perf_counter_ns() - t0

    sink.write_batch, sink.flush = probed_write, probed_flush


async def direct(
    source: Any, output: str, how: str, probe: Probe, result: dict[str, Any]
) -> dict[str, Any]:
    """The prototypes: ready blocks -> pcap records -> one write, all on the loop thread."""
    from capsvc.sinks._pcap import encode_records, pcap_header
    from capsvc.sources.afpacket._tpacket import TP_STATUS_USER, parse_block

    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, pcap_header(262144, source.linktype, nanosecond=True))
    packet_ring = source._ring
    ring, size, count = packet_ring._ring, packet_ring.block_size, packet_ring.block_nr
    hdr = struct.Struct("<IIIIIIHH")  # tpacket3_hdr up to tp_net
    record = struct.Struct("<IIII")
    out = bytearray(size * 2)
    c_func = _c_block_to_pcap() if how == "c" else None
    ring_at = ctypes.addressof(ctypes.c_char.from_buffer(ring)) if c_func else 0
    out_at = ctypes.addressof(ctypes.c_char.from_buffer(out)) if c_func else 0
    written = 0
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    loop.add_reader(source.fileno(), wake.set)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    result["threads_at_ready"] = _thread_table()
    print("ready", flush=True)
    index = 0
    while not stop.is_set():
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        blocks = packets = 0
        while struct.unpack_from("<I", ring, index * size + 8)[0] & TP_STATUS_USER:
            base = index * size
            num, first = struct.unpack_from("<II", ring, base + 12)
            data: bytes | memoryview
            if how == "packets":
                batch = parse_block(ring, base)
                data = encode_records(batch, 262144, nanosecond=True)
            elif how == "records":
                parts: list[bytes] = []
                append = parts.append
                off = base + first
                unpack, pack = hdr.unpack_from, record.pack
                for _ in range(num):
                    nxt, sec, nsec, snap, wire, _st, mac, _net = unpack(ring, off)
                    append(pack(sec, nsec, snap, wire))
                    append(ring[off + mac : off + mac + snap])
                    if not nxt:
                        break
                    off += nxt
                data = b"".join(parts)
            else:
                assert c_func is not None
                n = c_func(ring_at + base, out_at, len(out))
                data = memoryview(out)[:n]
            os.write(fd, data)
            ring[base + 8 : base + 12] = b"\0\0\0\0"
            index = (index + 1) % count
            blocks += 1
            packets += num
            probe.block_pkts.append(num)
        if blocks:
            written += packets
            probe.reads.append(
                (t0, blocks, packets, time.perf_counter_ns() - t0, time.thread_time_ns() - c0, 0)
            )
        wake.clear()
        probe.readable += 1
        stopper = asyncio.ensure_future(stop.wait())
        waiter = asyncio.ensure_future(wake.wait())
        await asyncio.wait([stopper, waiter], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        waiter.cancel()
    loop.remove_reader(source.fileno())
    os.close(fd)
    st = source.stats()
    await source.aclose()
    return {
        "stats": {
            "written": written,
            "dropped": 0,
            "kernel_dropped": st.kernel_dropped,
            "received": st.received,
        }
    }


def _c_block_to_pcap() -> Any:
    directory = Path(tempfile.mkdtemp(prefix="capsvc-bench-"))
    source, shared = directory / "block.c", directory / "block.so"
    source.write_text(C_BLOCK)
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", "-o", str(shared), str(source)],
        check=True,
        capture_output=True,
    )
    func = ctypes.CDLL(str(shared)).block_to_pcap
    func.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    func.restype = ctypes.c_size_t
    shutil.rmtree(directory)  # the library stays mapped
    return func


# -- offline: the cost of each stage on one block -------------------------------------------


def kernel_block(count: int, frame: bytes) -> bytearray:
    """A TPACKET_V3 block of ``count`` copies of ``frame`` laid out as the kernel lays it out
    for an Ethernet socket (tp_mac 82, tp_net 96, frames 16-byte aligned), status USER."""
    from capsvc.sources.afpacket._tpacket import (
        SOCKADDR_LL,
        TPACKET3_HDR,
        TPACKET_BLOCK_DESC,
        tpacket_align,
    )

    first = tpacket_align(TPACKET_BLOCK_DESC.size)
    net = tpacket_align(68 + 16)  # TPACKET3_HDRLEN plus 16 bytes for the link header
    mac = net - 14
    step = tpacket_align(mac + len(frame))
    block = bytearray(first + count * step)
    for i in range(count):
        at = first + i * step
        nxt = step if i + 1 < count else 0
        TPACKET3_HDR.pack_into(
            block, at, nxt, 1_700_000_000, i, len(frame), len(frame), 0, mac, net, 0, 0, 0, 0
        )
        SOCKADDR_LL.pack_into(block, at + 48, 17, b"\x08\x00", 3, 1, 0, 6, bytes(8))
        block[at + mac : at + mac + len(frame)] = frame
    TPACKET_BLOCK_DESC.pack_into(block, 0, 3, 0, 1, count, first, len(block), 1, 0, 0, 0, 0)
    return block


def offline(rounds: int = 7) -> list[tuple[str, float, float]]:
    """(stage, CPU ns per packet for a 2,000-packet block, for a 6,553-packet block)."""

    frame = (
        bytes.fromhex("02000000000a02000000000b0800")
        + bytes.fromhex("4500003200004000401100000ac900020ac900019c40100000" + "1e0000")
        + b"capsvc-bench"
        + bytes(10)
    )
    frame = frame[:64]
    c_func = _c_block_to_pcap()
    hdr, record = struct.Struct("<IIIIIIHH"), struct.Struct("<IIII")

    def records(block: Any) -> bytes:
        num, off = struct.unpack_from("<II", block, 12)
        parts: list[bytes] = []
        append = parts.append
        unpack, pack = hdr.unpack_from, record.pack
        for _ in range(num):
            nxt, sec, nsec, snap, wire, _st, mac, _net = unpack(block, off)
            append(pack(sec, nsec, snap, wire))
            append(block[off + mac : off + mac + snap])
            if not nxt:
                break
            off += nxt
        return b"".join(parts)

    rows = []
    with open(os.devnull, "wb") as devnull_b, open(os.devnull, "w") as devnull_t:
        small = _stage_costs(2000, frame, c_func, records, devnull_b, devnull_t, rounds)
        full = _stage_costs(6553, frame, c_func, records, devnull_b, devnull_t, rounds)
    for name, cost in small.items():
        rows.append((name, cost, full[name]))
    return rows


def _stage_costs(
    count: int,
    frame: bytes,
    c_func: Any,
    records: Any,
    devnull_b: Any,
    devnull_t: Any,
    rounds: int,
) -> dict[str, float]:
    """Median CPU ns per packet of each stage on one block of ``count`` packets."""
    from collections import deque

    from capsvc.sinks._pcap import PcapWriter, encode_records
    from capsvc.sinks._text import TextWriter
    from capsvc.sources.afpacket._tpacket import parse_block

    # In an anonymous mapping, so slicing and addressing behave as on the real ring.
    laid_out = kernel_block(count, frame)
    block = mmap.mmap(-1, len(laid_out))
    block[:] = laid_out
    batch = parse_block(block, 0)
    assert len(batch) == count
    out = bytearray(len(block) * 2)
    block_at = ctypes.addressof(ctypes.c_char.from_buffer(block))
    out_at = ctypes.addressof(ctypes.c_char.from_buffer(out))
    pcap, text = PcapWriter(devnull_b, 0, 1, nanosecond=True), TextWriter(devnull_t, linktype=1)
    queue: deque[Any] = deque()

    def handoff() -> None:
        queue.extend(batch)
        popleft = queue.popleft
        _ = [popleft() for _ in range(len(queue))]
        _ = sum(p[2] for p in batch)

    stages: dict[str, Callable[[], object]] = {
        "parse_block: block -> Packet tuples (loop thread)": lambda: parse_block(block, 0),
        "queue hand-off: extend, sum of lengths, popleft each": handoff,
        "encode_records: Packets -> pcap bytes (writer thread)": lambda: encode_records(
            batch, 262144, nanosecond=True
        ),
        "PcapWriter.write_batch to /dev/null (encode + write)": lambda: pcap.write_batch(batch),
        "TextWriter.write_batch to /dev/null": lambda: text.write_batch(batch),
        "prototype: block -> pcap records in Python, no Packet": lambda: records(block),
        "prototype: block -> pcap records in C (ctypes call)": lambda: c_func(
            block_at, out_at, len(out)
        ),
    }
    assert records(block) == encode_records(batch, 262144, nanosecond=True)
    n = c_func(block_at, out_at, len(out))
    assert bytes(out[:n]) == records(block)
    costs = {}
    for name, func in stages.items():
        samples = []
        for _ in range(rounds):
            t0 = time.thread_time_ns()
            func()
            samples.append(time.thread_time_ns() - t0)
        costs[name] = statistics.median(samples) / count
    return costs


# -- the driver ------------------------------------------------------------------------------


def run_variant(
    net: live.Net,
    config: Path,
    workdir: Path,
    options: dict[str, Any],
    frames: int,
    profiler: str = "",
) -> dict[str, Any]:
    out, result_path = workdir / "out.pcap", workdir / "result.json"
    out.unlink(missing_ok=True)
    result_path.unlink(missing_ok=True)
    options = {**options, "result_path": str(result_path)}
    cmd = ["ip", "netns", "exec", net.cap_ns, sys.executable, __file__, "--worker"]
    cmd += [net.cap_if, str(out), json.dumps(options)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise RuntimeError(f"capture did not start: {line}{proc.communicate()}")
    time.sleep(0.5)
    spy: subprocess.Popen[bytes] | None = None
    if profiler == "py-spy":
        spy = subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "py-spy"), "record", "--threads", "--idle"),
                *("--nonblocking", "--rate", "250", "--format", "raw"),
                *("-o", str(workdir / "spy"), "--pid", str(proc.pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    elif profiler == "py-spy-gil":  # only the samples of the thread holding the GIL
        spy = subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "py-spy"), "record", "--threads", "--gil"),
                *("--nonblocking", "--rate", "250", "--format", "raw"),
                *("-o", str(workdir / "spy"), "--pid", str(proc.pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    if spy is not None:
        time.sleep(1.0)
    cpu0, _ = live.cpu_ns(proc.pid)
    before = net.rx_packets()
    seconds = live._send(net, config, frames)
    arrived = net.rx_packets() - before
    live._wait_quiet(proc.pid)
    cpu1, _ = live.cpu_ns(proc.pid)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=300)
    try:
        result: dict[str, Any] = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RuntimeError(
            f"no result from the capture process (exit {proc.returncode}): {stderr[-2000:]}"
        ) from exc
    result.update(frames=frames, arrived=arrived, send_seconds=seconds, cpu_s=(cpu1 - cpu0) / 1e9)
    if profiler:
        result["spy"] = summarise_spy(workdir / "spy", result["probe"])
    return result


def summarise_spy(path: Path, probe: dict[str, Any]) -> dict[str, Any]:
    """py-spy's raw stacks, counted per thread: leaf functions and whether the thread was idle."""
    threads: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0]
        leaf = frames[-1].split(" (")[0] if len(frames) > 1 else "?"
        where = frames[-1]
        # What the thread is inside, by the innermost frame of interest.
        for frame in reversed(frames[1:]):
            name = frame.split(" (")[0]
            if any(
                key in frame
                for key in (
                    "parse_block",
                    "_encode",
                    "encode_records",
                    "write_all",
                    "flush",
                    "wait (threading",
                    "_read_ready",
                    "_enqueue",
                    "format",
                    "_ready_blocks",
                    "run_forever",
                    "_run (capsvc",
                )
            ):
                leaf = name + " [" + frame.split("(")[-1].split(":")[0].split("/")[-1] + "]"
                break
        else:
            leaf = where.split(" (")[0]
        threads[thread][leaf] += int(count)
    return {t: dict(c.most_common(12)) for t, c in threads.items()}


def _pct(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def describe(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of the figures the tables print."""

    def med(func: Any) -> float:
        return float(statistics.median(func(r) for r in runs))

    def captured(r: dict[str, Any]) -> int:
        return int(r["stats"]["written"])

    first = runs[len(runs) // 2]
    probe = first["probe"]
    reads = [r for r in probe["reads"] if r[2]]

    def since_ready(tid: int) -> dict[str, int]:
        """The thread's counters from ready to the end (start-up excluded)."""
        end = first.get("threads", {}).get(str(tid), {})
        start = first.get("threads_at_ready", {}).get(str(tid), {})
        return {k: v - start.get(k, 0) for k, v in end.items()}

    loop, writer = since_ready(probe["loop_tid"]), since_ready(probe["writer_tid"])
    writes = probe["writes"]
    enq = probe["enqueues"]
    return {
        "name": name,
        "frames": first["frames"],
        "captured": med(captured),
        "kernel": med(lambda r: r["stats"]["kernel_dropped"]),
        "queue": med(lambda r: r["stats"]["dropped"]),
        "cpu_per_m": med(lambda r: r["cpu_s"] / (r["frames"] / 1e6)),
        "pps": med(lambda r: r["frames"] / r["send_seconds"]),
        "wakes": probe["readable"],
        "reads": len(reads),
        "blocks_per_read": statistics.mean(r[1] for r in reads) if reads else 0,
        "blocks_per_read_max": max((r[1] for r in reads), default=0),
        "pkts_per_read_p50": _pct([r[2] for r in reads], 0.5),
        "pkts_per_read_max": max((r[2] for r in reads), default=0),
        "read_cpu_per_pkt_ns": sum(r[4] for r in reads) / max(1, sum(r[2] for r in reads)),
        "lag_ms_p50": _pct([r[5] for r in reads[1:]], 0.5) / 1e6,
        "lag_ms_p90": _pct([r[5] for r in reads[1:]], 0.9) / 1e6,
        "lag_ms_p99": _pct([r[5] for r in reads[1:]], 0.99) / 1e6,
        "block_pkts_p50": _pct(probe["block_pkts"], 0.5),
        "block_tmo": probe["block_tmo"],
        "blocks": len(probe["block_pkts"]),
        "writes": len(writes),
        "write_pkts_p50": _pct([w[1] for w in writes], 0.5),
        "write_pkts_max": max((w[1] for w in writes), default=0),
        "write_cpu_per_pkt_ns": sum(w[3] for w in writes) / max(1, sum(w[1] for w in writes)),
        "write_wall_per_pkt_ns": sum(w[2] for w in writes) / max(1, sum(w[1] for w in writes)),
        "flush_ms": probe["flush_ns"] / 1e6,
        "queue_max": max((e[1] + e[2] - e[3] for e in enq), default=0),
        "enqueue_drops": sum(1 for e in enq if e[3]),
        "loop_cpu_s": loop.get("cpu_ns", 0) / 1e9,
        "loop_runq_ms": loop.get("runq_wait_ns", 0) / 1e6,
        "loop_invol": loop.get("involuntary", 0),
        "loop_vol": loop.get("voluntary", 0),
        "writer_cpu_s": writer.get("cpu_ns", 0) / 1e9,
        "writer_runq_ms": writer.get("runq_wait_ns", 0) / 1e6,
        "writer_invol": writer.get("involuntary", 0),
        "writer_vol": writer.get("voluntary", 0),
        "block_nr": probe["block_nr"],
        "block_size": probe["block_size"],
        "timeline": timeline(first),
        "spy": first.get("spy"),
        "spy_gil": first.get("spy_gil"),
    }


def timeline(run: dict[str, Any], step_ms: int = 100) -> list[str]:
    """Per ``step_ms``: packets read, enqueued, written, queue drops, kernel drops."""
    probe = run["probe"]
    events = [r[0] for r in probe["reads"] if r[2]] + [w[0] for w in probe["writes"]]
    if not events:
        return []
    t0 = min(events)
    step = step_ms * 1_000_000
    buckets: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
    for t, _blocks, pkts, _ns, _cpu, _lag in probe["reads"]:
        buckets[(t - t0) // step][0] += pkts
    for t, _before, n, dropped in probe["enqueues"]:
        b = buckets[(t - t0) // step]
        b[1] = max(b[1], _before + n - dropped)
        b[2] += dropped
    for t, n, _ns, _cpu in probe["writes"]:
        buckets[(t - t0) // step][3] += n
    last = 0
    for t, total in probe["kernel_drops"]:
        if t >= t0:
            buckets[(t - t0) // step][4] += total - last
        last = total
    lines = []
    for key in sorted(k for k in buckets if k >= 0):
        read, qmax, qdrop, wrote, kdrop = buckets[key]
        if read or wrote or qdrop or kdrop:
            lines.append(
                f"| {key * step_ms} | {read:,} | {wrote:,} | {qmax:,} | {qdrop:,} | {kdrop:,} |"
            )
    return lines


def print_tables(rows: list[dict[str, Any]]) -> None:
    print(
        "| variant | captured | kernel drops | queue drops | CPU s/Mpkt | sent pps | wake-ups "
        "| reads | blocks/read (max) | pkts/read p50 (max) | read lag p50 / p90 / p99 ms "
        "| writer batches | writer batch p50 (max) | queue max |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['captured']:,.0f} | {r['kernel']:,.0f} | {r['queue']:,.0f} "
            f"| {r['cpu_per_m']:.3f} | {r['pps']:,.0f} | {r['wakes']:,} | {r['reads']:,} "
            f"| {r['blocks_per_read']:.1f} ({r['blocks_per_read_max']}) "
            f"| {r['pkts_per_read_p50']:,.0f} ({r['pkts_per_read_max']:,}) "
            f"| {r['lag_ms_p50']:.1f} / {r['lag_ms_p90']:.1f} / {r['lag_ms_p99']:.1f} "
            f"| {r['writes']:,} "
            f"| {r['write_pkts_p50']:,.0f} ({r['write_pkts_max']:,}) | {r['queue_max']:,} |"
        )
    print()
    print(
        "| variant | ring blocks x size | pkts/block p50 | blocks closed by timeout "
        "| loop thread CPU s | its run-queue wait ms | its ctx switches vol/invol "
        "| read CPU ns/pkt | writer thread CPU s | its run-queue wait ms "
        "| its ctx switches vol/invol | write CPU ns/pkt | write wall ns/pkt | flush ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['block_nr']} x {r['block_size'] >> 10} KiB "
            f"| {r['block_pkts_p50']:,.0f} | {r['block_tmo']} of {r['blocks']} "
            f"| {r['loop_cpu_s']:.2f} | {r['loop_runq_ms']:.0f} "
            f"| {r['loop_vol']:,}/{r['loop_invol']:,} | {r['read_cpu_per_pkt_ns']:.0f} "
            f"| {r['writer_cpu_s']:.2f} | {r['writer_runq_ms']:.0f} "
            f"| {r['writer_vol']:,}/{r['writer_invol']:,} | {r['write_cpu_per_pkt_ns']:.0f} "
            f"| {r['write_wall_per_pkt_ns']:.0f} | {r['flush_ms']:.0f} |"
        )
    for r in rows:
        if r["timeline"]:
            print(f"\nTimeline of one `{r['name']}` run (100 ms buckets):\n")
            print("| ms | read | written | queue max | queue drops | kernel drops |")
            print("|---|---|---|---|---|---|")
            print("\n".join(r["timeline"]))
        for key, what in (("spy", "idle included"), ("spy_gil", "only while holding the GIL")):
            if not r[key]:
                continue
            print(f"\npy-spy samples of `{r['name']}` (250 Hz, {what}), per thread:\n")
            for thread, counts in r[key].items():
                total = sum(counts.values())
                print(f"- {thread}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
                print(f"  ({total} samples)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    parser.add_argument("--py-spy", action="store_true", help="profile the baseline with py-spy")
    parser.add_argument(
        "--py-spy-gil", action="store_true", help="py-spy again, only samples holding the GIL"
    )
    parser.add_argument("--json", help="also write every run's raw figures to this file")
    parser.add_argument(
        "--offline", action="store_true", help="only the cost of each stage on one block"
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        interface, output, options = args.worker
        worker(interface, output, json.loads(options))
        return 0
    if args.offline:
        print("| stage | CPU ns/pkt, 2,000-packet block | CPU ns/pkt, 6,553-packet block |")
        print("|---|---|---|")
        for name, small, full in offline():
            print(f"| {name} | {small:.0f} | {full:.0f} |")
        return 0
    if os.geteuid() != 0:
        print("bench/profile_live.py needs root", file=sys.stderr)
        return 1
    names = args.variant or ["default"]
    net = live.build_net()
    rows = []
    raw: dict[str, list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="capsvc-bench-") as tmp:
            workdir = Path(tmp)
            config = workdir / "frame.cfg"
            live.trafgen_config(net, config)
            runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            for _ in range(args.repeat):
                for name in names:
                    try:
                        result = run_variant(net, config, workdir, VARIANTS[name][1], args.frames)
                    except RuntimeError as exc:  # said, and measured again once
                        print(f"{name}: {exc}; again", file=sys.stderr)
                        result = run_variant(net, config, workdir, VARIANTS[name][1], args.frames)
                    print(
                        f"{name:<14} captured {result['stats']['written']:>9,} "
                        f"cpu {result['cpu_s']:.2f} s",
                        file=sys.stderr,
                    )
                    runs[name].append(result)
            profiled: dict[str, Any] = {}
            for profiler, key, wanted in (
                ("py-spy", "spy", args.py_spy),
                ("py-spy-gil", "spy_gil", args.py_spy_gil),
            ):
                if wanted:
                    options = VARIANTS[names[0]][1]
                    done = run_variant(net, config, workdir, options, args.frames, profiler)
                    profiled[key] = done["spy"]
                    print(f"{profiler} run captured {done['stats']['written']:,}", file=sys.stderr)
            for name in names:
                rows.append(describe(name, runs[name]))
            rows[0].update(profiled)
            raw = runs
    finally:
        live.remove_net(net)
    print(f"{args.frames:,}-frame bursts at trafgen's top rate; medians of {args.repeat} runs.\n")
    print("\n".join(f"- `{n}`: {VARIANTS[n][0]}" for n in names) + "\n")
    print_tables(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
