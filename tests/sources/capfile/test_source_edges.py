"""The capture-file source at its edges: given streams, pipes, closing during a read, read
errors, the pipe reader thread, the choice of the C filter program, batches and pacing.

Real pipes (``os.pipe``), a FIFO, a pseudo-terminal whose other side hangs up (the kernel's
EIO), real files. Where a thread must be blocked in its read before the test goes on, the test
waits until the kernel says so (``/proc/self/task/TID/syscall``), not for a guessed time.
Each test names the mutations (scripts/mutation.sh, group ``capfile``) it kills.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import io
import os
import platform
import struct
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _helpers import ether, ipv4, tcp, udp
from test_pcapfile import epb, idb, pcap_file, shb

import capsvc._records
from capsvc import CaptureFileError, LinkType, Packet
from capsvc._aio import Loop
from capsvc._bpf import pack_program
from capsvc._records import RecordBlock
from capsvc._records import available as records_available
from capsvc.filter import compile_bpf, parse
from capsvc.sources.capfile._source import (
    BATCH_SIZE,
    CaptureFile,
    PcapFileSource,
    _ChunkReader,
    _program,
    read_capture,
)

NEEDS_C = pytest.mark.skipif(not records_available(), reason="capsvc._speedups is not built")
RAW = b"\x45" + b"\0" * 19  # a 20-byte IPv4 header, link type RAW (101)
HEADER = pcap_file([], linktype=101)  # the 24-byte pcap file header alone
#: The read(2) system call's number, as /proc/PID/task/TID/syscall gives it first.
READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "riscv64": 63, "ppc64le": 3, "s390x": 3}.get(
    platform.machine()
)


def record(sec: int, usec: int = 0, data: bytes = RAW) -> bytes:
    """One pcap record (little-endian, microseconds), as ``pcap_file`` writes them."""
    return struct.pack("<IIII", sec, usec, len(data), len(data)) + data


def wait_in_read(thread: threading.Thread, timeout: float = 10.0) -> None:
    """Return once ``thread`` is blocked in read(2) (its kernel stack says so), or after a
    short pause where /proc or the architecture's numbering is not known."""
    tid = thread.native_id
    if READ_SYSCALL is None or tid is None:
        time.sleep(0.3)
        return
    path = f"/proc/self/task/{tid}/syscall"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                first = f.read().split(" ", 1)[0]
        except OSError:
            time.sleep(0.3)
            return
        if first == str(READ_SYSCALL):
            return
        time.sleep(0.005)
    raise AssertionError(f"{thread.name} did not block in read(2)")


def fds_open_on(path: Path) -> int:
    """How many of this process's descriptors refer to ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass
    return count


def pending_bytes(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


class Pipe:
    """A pipe whose read end is a buffered (or raw) binary stream; both ends closed at exit."""

    def __init__(self, *, buffering: int = -1) -> None:
        read_fd, self.write_fd = os.pipe()
        self.reader = os.fdopen(read_fd, "rb", buffering=buffering)

    def write(self, data: bytes) -> None:
        os.write(self.write_fd, data)

    def close_writer(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_writer()
        self.reader.close()


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    p = Pipe()
    try:
        yield p
    finally:
        p.close()


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``fn`` in a daemon thread; the list gets its result (or the exception it raised)."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# --- CaptureFile: streams, names, ownership ---------------------------------------------------


def test_a_given_file_stream_is_named_by_its_path_and_stays_open(tmp_path: Path) -> None:
    """A stream given is called what its ``name`` says, is read to its end and is left open
    unless ``owned``; ``name=`` overrides what errors call it.

    Mutation guarded: the stream's name not read (``getattr`` of another attribute, or of
    nothing) or taken only for a non-str name (``CaptureFile.__init__`` 13-20, 22); the given
    ``name`` ignored (28, 29); ``owned`` ignored (27); the default ``owned=True`` (1)."""
    path = tmp_path / "given.pcap"
    path.write_bytes(pcap_file([(7, 0, RAW, 20), (8, 0, RAW, 20)], linktype=101))
    with open(path, "rb") as stream:
        cap = CaptureFile(stream)
        assert cap.name == str(path)
        assert cap.regular
        assert [p.ts_ns for b in cap for p in b] == [7_000_000_000, 8_000_000_000]
        cap.close()
        assert not stream.closed
    with open(path, "rb") as stream:
        cap = CaptureFile(stream, name="capture one")
        assert cap.name == "capture one"
        cap.close()
        assert not stream.closed
    stream = open(path, "rb")  # noqa: SIM115 - closed by the CaptureFile that owns it
    cap = CaptureFile(stream, owned=True)
    assert not stream.closed
    cap.close()
    assert stream.closed


def test_a_path_is_opened_and_closed_here(tmp_path: Path) -> None:
    """A path is opened by the file and closed with it, also when its header is refused.

    Mutation guarded: a path not owned (``_owned`` None or False, ``CaptureFile.__init__``
    11, 12): its descriptor would stay open after ``close()``."""
    good = tmp_path / "good.pcap"
    good.write_bytes(pcap_file([(1, 0, RAW, 20)], linktype=101))
    cap = CaptureFile(good)
    assert fds_open_on(good) == 1
    assert cap.name == str(good)
    cap.close()
    assert fds_open_on(good) == 0
    cap.close()  # idempotent
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"no capture file at all, just text\n")
    with pytest.raises(CaptureFileError):
        CaptureFile(bad)
    assert fds_open_on(bad) == 0


def test_errors_use_the_given_name_and_an_owned_stream_is_closed_on_them() -> None:
    """A header error names the file as ``name`` says; the constructor closes a stream it
    owns when it fails, and leaves one it does not own open.

    Mutation guarded: the decoder made without the name (``CaptureFile.__init__`` 32, 34) or
    the given name not used (28, 29), an in-memory stream taken for a pipe (``_is_regular``
    3)."""
    junk = b"\x00\x01\x02\x03" * 16
    stream = io.BytesIO(junk)
    with pytest.raises(CaptureFileError) as caught:
        CaptureFile(stream, name="upload 7")
    assert caught.value.path == "upload 7"
    assert str(caught.value).startswith("upload 7: ")
    assert not stream.closed
    memory = io.BytesIO(HEADER + record(4))
    with CaptureFile(memory) as cap:  # an in-memory stream never blocks: read inline
        assert (cap.name, cap.regular, cap.size) == ("<stream>", True, 0)
    owned = io.BytesIO(junk)
    with pytest.raises(CaptureFileError) as caught:
        CaptureFile(owned, owned=True)
    assert caught.value.path == "<stream>"
    assert owned.closed


def test_a_huge_idb_snaplen_makes_batches_of_one(tmp_path: Path) -> None:
    """An IDB whose snaplen is 4 GiB - 1 (pcapng allows it) bounds a batch to one packet: at
    most BATCH_BYTES (64 MiB) of packet data per batch, and never an empty batch.

    Mutation guarded: at least two packets per batch (``max(2, ...)``, ``CaptureFile.__init__``
    49), a float batch size (``/`` for ``//``, 54)."""
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2)))
    data = shb() + idb("<", 1, 0xFFFFFFFF) + b"".join(epb("<", 0, i, frame) for i in range(3))
    path = tmp_path / "huge.pcapng"
    path.write_bytes(data)
    head = len(shb() + idb("<", 1))  # read the header alone: packets read with it are one batch
    with CaptureFile(path, chunk_size=head) as cap:
        assert cap.snaplen == 0xFFFFFFFF
        assert [len(b) for b in cap] == [1, 1, 1]
    # 40 MiB: 64 MiB // 40 MiB is 1 as well; 20 MiB gives 3 per batch.
    for snaplen, sizes in ((40 << 20, [1, 1, 1]), (20 << 20, [3])):
        data = shb() + idb("<", 1, snaplen) + b"".join(epb("<", 0, i, frame) for i in range(3))
        path.write_bytes(data)
        with CaptureFile(path, chunk_size=head) as cap:
            assert [len(b) for b in cap] == sizes


# --- read_chunk and read_chunk_unlocked -------------------------------------------------------


def test_reads_are_chunk_size_long(tmp_path: Path) -> None:
    """A read of a regular file returns ``chunk_size`` bytes (the file has more), as
    ``read_capture`` passes it on.

    Mutation guarded: the size of a read lost (``read_chunk`` 1: ``read1(None)`` reads what
    one read of the 8 KiB buffer gives), ``chunk_size`` not passed on (``read_capture`` 5), a
    raw stream's missing ``read1`` looked up without a default (``read_chunk`` 11)."""
    path = tmp_path / "big.pcap"
    path.write_bytes(pcap_file([(1, i, RAW, 20) for i in range(20_000)], linktype=101))
    with CaptureFile(path, chunk_size=1 << 16) as cap:
        assert len(cap.read_chunk()) == 1 << 16
        assert len(cap.read_chunk_unlocked()) == 1 << 16
    with read_capture(path, chunk_size=1 << 14) as cap:
        assert len(cap.read_chunk()) == 1 << 14
    with open(path, "rb", buffering=0) as raw, CaptureFile(raw, chunk_size=1 << 15) as cap:
        assert len(cap.read_chunk()) == 1 << 15  # a raw stream has no read1: read(size)


@pytest.mark.parametrize("buffering", [-1, 0], ids=["buffered", "raw"])
def test_the_header_of_a_pipe_is_read_while_the_writer_stays(buffering: int) -> None:
    """The constructor returns once the header is there, the writer still writing: a read of a
    pipe returns what is there (``read1``; a raw stream's ``read`` does so by itself).

    Mutation guarded: ``read`` for ``read1`` on a buffered stream (``read_chunk`` 18, 21: it
    waits for the whole chunk), ``read1`` called on a raw stream that has none (19), a raw
    stream read to its end (``read(None)``, 22)."""
    p = Pipe(buffering=buffering)
    try:
        p.write(HEADER + record(3))
        thread, out = in_thread(lambda: CaptureFile(p.reader))
        thread.join(10)
        assert not thread.is_alive(), "the constructor waited for the writer"
        cap = out[0]
        assert isinstance(cap, CaptureFile)
        assert (cap.linktype, cap.regular, cap.size) == (LinkType.RAW, False, 0)
        p.close_writer()
        assert [p.ts_ns for b in cap for p in b] == [3_000_000_000]
    finally:
        p.close()


def test_a_closed_file_reads_nothing_more(pipe: Pipe) -> None:
    """After ``close()`` a read returns b"" (the end) without reading: what the pipe holds
    stays there for the stream's owner.

    Mutation guarded: ``close`` not marking the file closed (``close`` 1, 2), b"XXXX" for the
    end (``read_chunk`` 14, ``read_chunk_unlocked`` 7)."""
    pipe.write(HEADER)
    cap = CaptureFile(pipe.reader)
    pipe.write(record(1))
    cap.close()
    assert cap.read_chunk() == b""
    assert cap.read_chunk_unlocked() == b""
    assert not pipe.reader.closed
    assert os.read(pipe.reader.fileno(), 100) == record(1)


def test_a_stream_closed_by_its_owner_is_the_end(tmp_path: Path) -> None:
    """A stream its owner closed reads as the end of the file, not as an error.

    Mutation guarded: b"XXXX" for the end (``read_chunk`` 23)."""
    path = tmp_path / "f.pcap"
    path.write_bytes(pcap_file([(1, 0, RAW, 20)] * 500, linktype=101))
    stream = open(path, "rb")  # noqa: SIM115 - closed below, as its owner would
    cap = CaptureFile(stream, chunk_size=64)
    stream.close()
    assert cap.read_chunk() == b""
    cap.close()


def test_a_read_of_nothing_yet_on_a_non_blocking_stream_is_no_error() -> None:
    """``read_chunk`` gives bytes, never None: a raw non-blocking pipe with nothing to read
    yet (its ``read`` returns None) gives b"", taken as the end of the input, so the packets
    read before it are delivered and the iteration ends without a TypeError.

    Mutation guarded: ``bytes(data) if data or True`` (``read_chunk`` 33: ``bytes(None)``)."""
    pipe = Pipe(buffering=0)
    try:
        pipe.write(HEADER + record(1) + record(2))
        os.set_blocking(pipe.reader.fileno(), False)
        assert not hasattr(pipe.reader, "read1")  # a raw FileIO: read() is what is called
        with read_capture(pipe.reader) as cap:
            assert cap.regular is False
            assert [p.ts_ns for b in cap for p in b] == [1_000_000_000, 2_000_000_000]
            assert pipe.reader.read(64) is None  # the writer is still there: nothing yet
            assert cap.read_chunk() == b""
    finally:
        pipe.close()


@pytest.mark.parametrize("method", ["read_chunk", "read_chunk_unlocked"])
def test_close_during_a_blocked_read_is_done_by_the_reader(pipe: Pipe, method: str) -> None:
    """``close()`` while a thread is blocked reading an owned pipe returns at once and leaves
    the stream open under the read (closing a buffered stream would wait for the read); the
    reading thread closes it once its read returns, with what it read. A later ``close()``
    of a file no read is in closes at once.

    Mutation guarded: the read not marked as running (``read_chunk`` 15, 16,
    ``read_chunk_unlocked`` 8, 9), the close after the read skipped (``read_chunk`` 31,
    ``read_chunk_unlocked`` 21), the mark left set after the read (``read_chunk`` 30,
    ``read_chunk_unlocked`` 20: a later close would never close)."""
    pipe.write(HEADER)
    cap = CaptureFile(pipe.reader, owned=True)
    reader, got = in_thread(getattr(cap, method))
    try:
        wait_in_read(reader)
        closer, _ = in_thread(cap.close)
        closer.join(10)
        assert not closer.is_alive(), "close() waited for the read"
        assert not pipe.reader.closed
        pipe.write(record(5))
        reader.join(10)
        assert got == [record(5)]
        assert pipe.reader.closed
    finally:
        pipe.close_writer()  # ends a read still blocked
        reader.join(10)
    # After a read that returned, close() closes at once.
    again = Pipe()
    try:
        again.write(HEADER)
        cap = CaptureFile(again.reader, owned=True, chunk_size=16)
        again.write(record(6))
        assert getattr(cap, method)() == record(6)[:16]
        cap.close()
        assert again.reader.closed
    finally:
        again.close()


def test_a_failing_close_of_an_owned_stream_is_not_raised(pipe: Pipe) -> None:
    """``close()`` of an owned stream whose own close fails (its descriptor was closed behind
    its back: EBADF) does not raise: the file is done with either way.

    Mutation guarded: the OSError of the close let through (``_close_now`` 1)."""
    pipe.write(HEADER)
    cap = CaptureFile(pipe.reader, owned=True)
    os.close(pipe.reader.fileno())
    cap.close()  # EBADF from the stream's close, swallowed
    assert pipe.reader.closed


def pty_capture(name: str) -> tuple[CaptureFile, int]:
    """A CaptureFile reading a pseudo-terminal's master whose header has been read, and the
    slave's descriptor: once the slave is closed, reading the master fails with EIO."""
    master, slave = os.openpty()
    tty.setraw(slave)  # bytes pass unchanged
    os.write(slave, HEADER)
    stream = os.fdopen(master, "rb")
    return CaptureFile(stream, owned=True, name=name), slave


def test_a_read_error_names_the_file_and_the_cause() -> None:
    """A read that fails (a terminal hung up: EIO) raises CaptureFileError naming the file and
    the system's words for the error.

    Mutation guarded: the name or reason dropped from the error (``read_chunk`` 24-27), the
    errno's text replaced by the exception's (``exc.strerror and exc``, 28)."""
    cap, slave = pty_capture("tty capture")
    try:
        assert not cap.regular
        os.close(slave)
        with pytest.raises(CaptureFileError) as caught:
            list(cap)
    finally:
        cap.close()
    assert caught.value.path == "tty capture"
    assert caught.value.reason == f"read failed: {os.strerror(errno.EIO)}"
    assert str(caught.value) == f"tty capture: read failed: {os.strerror(errno.EIO)}"


def test_a_read_error_comes_after_the_packets_read_before_it() -> None:
    """Iterating a pipe whose read fails: every complete packet read before the failure is
    yielded, then the error is raised.

    Bug guarded: the iterator waited to fill a batch, so the packets it held were lost with
    the error."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.write(slave, HEADER + record(9) + record(10))
    cap = CaptureFile(os.fdopen(master, "rb"), owned=True, name="tty capture")
    got: list[Packet] = []
    try:
        os.close(slave)
        with pytest.raises(CaptureFileError) as caught:
            for batch in cap:
                got.extend(batch)
    finally:
        cap.close()
    assert [p.ts_ns for p in got] == [9_000_000_000, 10_000_000_000]
    assert str(caught.value) == f"tty capture: read failed: {os.strerror(errno.EIO)}"


async def test_a_read_error_of_the_pipe_reader_reaches_the_source() -> None:
    """The reader thread's read error is raised where the source is iterated, with the same
    words, and the thread ends.

    Mutation guarded: the error not handed over (``_ChunkReader._run`` 3-5), the name or reason
    dropped (``read_chunk_unlocked`` 14-17), the errno's text replaced (18)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.write(slave, HEADER + record(9))
    source = PcapFileSource(os.fdopen(master, "rb"), owned=True, name="tty capture")
    got: list[Packet] = []
    try:
        os.close(slave)
        with pytest.raises(CaptureFileError) as caught:
            async with asyncio.timeout(10):
                async for batch in source:
                    got.extend(batch)
    finally:
        await source.aclose()
    assert [p.ts_ns for p in got] == [9_000_000_000]
    assert str(caught.value) == f"tty capture: read failed: {os.strerror(errno.EIO)}"


# --- the pipe reader thread -------------------------------------------------------------------


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before]


async def test_a_cancelled_request_keeps_its_chunk_for_the_next() -> None:
    """A ``next_chunk`` whose caller gave up stays asked for: the next call takes its chunk,
    and the thread reads again only when asked (what comes meanwhile stays in the pipe), so
    nothing read is lost or overwritten. The thread is a daemon named capsvc-pipe-reader.

    Mutation guarded: the request not remembered (``next_chunk`` 3, 4: the thread reads twice
    and a chunk nobody asked for is overwritten), never asked (2, ``__init__`` 7) or never
    asked again (6), the thread not a daemon or not named (``__init__`` 13-20)."""
    p = Pipe()
    try:
        p.write(HEADER)
        cap = CaptureFile(p.reader)
        before = set(threading.enumerate())
        reader = _ChunkReader(cap, Loop.current())
        (thread,) = new_threads(before)
        assert (thread.name, thread.daemon) == ("capsvc-pipe-reader", True)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.next_chunk(), 0.2)
        p.write(b"A" * 10)
        assert await asyncio.wait_for(reader.next_chunk(), 10) == b"A" * 10
        p.write(b"B" * 10)
        deadline = time.monotonic() + 0.5  # a thread reading unasked takes B meanwhile
        while pending_bytes(p.reader.fileno()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        p.write(b"C" * 10)
        chunks = []
        p.close_writer()
        while chunk := await asyncio.wait_for(reader.next_chunk(), 10):
            chunks.append(chunk)
        assert b"".join(chunks) == b"B" * 10 + b"C" * 10
        thread.join(10)
        assert not thread.is_alive()  # it ends at the end of the input
    finally:
        p.close()


async def test_stop_ends_a_pending_request_and_the_thread() -> None:
    """``stop()`` ends a pending ``next_chunk`` with b"" at once; a stopped reader answers b""
    without reading, and its thread ends once its blocked read returns, reading no further.

    Mutation guarded: ``stop`` not marking the reader stopped (``stop`` 1, 2: the thread reads
    on), b"XXXX" for a stopped reader's chunk (``next_chunk`` 1, 7), a reader stopped from the
    start (``__init__`` 5)."""
    p = Pipe()
    try:
        p.write(HEADER)
        cap = CaptureFile(p.reader)
        before = set(threading.enumerate())
        reader = _ChunkReader(cap, Loop.current())
        (thread,) = new_threads(before)
        pending = asyncio.ensure_future(reader.next_chunk())
        await asyncio.to_thread(wait_in_read, thread)
        assert not pending.done()
        reader.stop()
        assert await asyncio.wait_for(pending, 10) == b""
        p.write(b"X" * 8)  # the blocked read returns it; nobody takes it
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()
        p.write(b"Y" * 8)
        assert await reader.next_chunk() == b""
        assert os.read(p.reader.fileno(), 100) == b"Y" * 8
    finally:
        p.close()


async def test_chunks_come_in_order_until_the_end() -> None:
    """Each ``next_chunk`` gives the next bytes the writer sent, then b"" at its end.

    Mutation guarded: the thread ending after its first chunk (``_run`` 9), chunks lost
    (``_run`` 2, 6, ``_deliver`` 3), b"XXXX" at the end (``_deliver`` 4)."""
    p = Pipe()
    try:
        p.write(HEADER)
        cap = CaptureFile(p.reader)
        reader = _ChunkReader(cap, Loop.current())
        for part in (b"one", b"two", b"three"):
            p.write(part)
            assert await asyncio.wait_for(reader.next_chunk(), 10) == part
        p.close_writer()
        assert await asyncio.wait_for(reader.next_chunk(), 10) == b""
    finally:
        p.close()


# --- PcapFileSource over a pipe ---------------------------------------------------------------


async def test_aclose_ends_a_read_blocked_on_a_fifo(tmp_path: Path) -> None:
    """``aclose()`` ends an iteration blocked on a FIFO whose writer is silent, at once; the
    owned stream is closed by the reader thread once its read returns, and the thread ends.

    Mutation guarded: ``aclose`` not stopping the reader (``aclose`` 4), the thread not stopped
    (``stop`` 1, 2), the late close skipped (``read_chunk_unlocked`` 21)."""
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    write_fd = os.open(fifo, os.O_RDWR)  # opens at once: a reader is not needed yet
    try:
        os.write(write_fd, HEADER + record(1))
        stream = open(fifo, "rb")  # noqa: SIM115 - owned by the source
        before = set(threading.enumerate())
        source = PcapFileSource(stream, owned=True)
        assert source.name == str(fifo)
        got: list[Packet] = []

        async def drain() -> None:
            async for batch in source:
                got.extend(batch)

        task = asyncio.ensure_future(drain())
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        (thread,) = new_threads(before)
        await asyncio.to_thread(wait_in_read, thread)
        await source.aclose()
        await asyncio.wait_for(task, 10)
        assert [p.ts_ns for p in got] == [1_000_000_000]
        assert not stream.closed  # the read is still blocked
        os.write(write_fd, record(2))
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()
        assert stream.closed
    finally:
        os.close(write_fd)


async def test_pcapng_records_from_a_pipe_flow_before_the_writer_is_done(pipe: Pipe) -> None:
    """A pcapng stream read for records (as a Session does) gives its packets as they come,
    not once a batch is full.

    Mutation guarded: ``next_records`` told to fill batches on a pipe (``_batches`` 14)."""
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2)))
    pipe.write(shb() + idb("<", 1) + epb("<", 0, 1_000_000, frame))
    source = PcapFileSource(pipe.reader)
    batches = aiter(source.record_batches())
    batch = await asyncio.wait_for(anext(batches), 10)
    assert isinstance(batch, list)  # pcapng: packets, not C records
    assert [p.data for p in batch] == [frame]
    pipe.write(epb("<", 0, 2_000_000, frame))
    batch = await asyncio.wait_for(anext(batches), 10)
    assert isinstance(batch, list)
    assert [p.ts_ns for p in batch] == [2_000_000_000]
    pipe.close_writer()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(batches), 10)
    await source.aclose()


# --- PcapFileSource over a regular file -------------------------------------------------------


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
async def test_a_regular_file_gives_full_batches_without_delay(tmp_path: Path, kind: str) -> None:
    """A regular file comes in full batches (BATCH_SIZE packets, the rest last), though reads
    end within records; and the loop is only yielded to between them, never slept on.

    Mutation guarded: batches not filled on a regular file (``_batches`` 13, 15, 16: reads of
    256 KiB end every ~170 records here), a sleep of a second between batches (20)."""
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, b"p" * 1446)))  # 1500 bytes
    n = 8 * BATCH_SIZE + 100
    if kind == "pcap":
        data = pcap_file([(1, i, frame, len(frame)) for i in range(n)])
    else:  # snaplen 65535 as the pcap file's: BATCH_SIZE packets per batch for both
        data = shb() + idb("<", 1, 65535) + b"".join(epb("<", 0, i, frame) for i in range(n))
    path = tmp_path / f"f.{kind}"
    path.write_bytes(data)
    source = PcapFileSource(path)
    start = time.monotonic()
    sizes = [len(b) async for b in source]
    elapsed = time.monotonic() - start
    await source.aclose()
    assert sizes == [BATCH_SIZE] * 8 + [100]
    assert elapsed < 4.0
    if kind == "pcapng":  # records of a pcapng file come as packet batches, filled too
        source = PcapFileSource(path)
        sizes = [len(b) async for b in source.record_batches()]
        await source.aclose()
        assert sizes == [BATCH_SIZE] * 8 + [100]


# --- the C filter program ---------------------------------------------------------------------


class OddLength:
    """A Matcher of its own: frames of odd length."""

    def match(self, data: bytes) -> bool:
        return len(data) % 2 == 1


@NEEDS_C
async def test_a_string_filter_runs_in_c_a_matcher_object_in_python(tmp_path: Path) -> None:
    """A filter expression (or a parsed one) is compiled to a BPF program the C reader runs:
    the records come as RecordBlocks. A Matcher object decides by its own code: Packets.

    Mutation guarded: no program for an expression (``_program`` 3-10, 12-14: the Python
    matcher would run, and Packets come), the program compiled for no link type
    (``_set_filter`` 20-22), records not asked for (``record_batches`` 1, ``_batches`` 11)."""
    frames = [
        ether(ipv4("10.0.0.1", "10.0.0.2", udp(1000 + i, 53, b"q" * (i % 7))))
        if i % 3 == 0
        else ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1000 + i, 80, b"t" * (i % 5))))
        for i in range(300)
    ]
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap_file([(1, i, f, len(f)) for i, f in enumerate(frames)]))
    udp_frames = [f for i, f in enumerate(frames) if i % 3 == 0]
    for spec in ("udp", parse("udp")):
        source = PcapFileSource(path, filter=spec)
        items = [b async for b in source.record_batches()]
        await source.aclose()
        blocks = [b for b in items if isinstance(b, RecordBlock)]
        assert blocks and len(blocks) == len(items)
        assert [p.data for b in blocks for p in b.packets()] == udp_frames
    # Link type RAW: the program is compiled for the file's link type, not Ethernet's.
    raw_path = tmp_path / "raw.pcap"
    raw_frames = [f[14:] for f in frames]
    raw_path.write_bytes(
        pcap_file([(1, i, f, len(f)) for i, f in enumerate(raw_frames)], linktype=101)
    )
    source = PcapFileSource(raw_path, filter="udp")
    items = [b async for b in source.record_batches()]
    await source.aclose()
    blocks = [b for b in items if isinstance(b, RecordBlock)]
    assert blocks and len(blocks) == len(items)
    assert [p.data for b in blocks for p in b.packets()] == [f[14:] for f in udp_frames]
    source = PcapFileSource(path, filter=OddLength())
    items = [b async for b in source.record_batches()]
    await source.aclose()
    lists = [b for b in items if isinstance(b, list)]
    assert lists and len(lists) == len(items)
    assert [p.data for b in lists for p in b] == [f for f in frames if len(f) % 2]


@NEEDS_C
def test_program_is_none_without_a_program_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_program`` gives the packed program of an expression, and None for a blank one
    (everything passes: nothing to run), for one reading a live socket's metadata (``inbound``
    on Ethernet: a file has none), and when the speed-ups are off (no C reader to run it).

    Mutation guarded: a program for a blank expression (``_program`` 1), for one reading
    metadata (11), without the speed-ups (2)."""
    assert _program("udp", LinkType.ETHERNET) == pack_program(compile_bpf("udp"))
    assert _program("   ", LinkType.ETHERNET) is None
    assert _program("", LinkType.ETHERNET) is None
    assert _program("inbound", LinkType.ETHERNET) is None
    assert _program("ifindex 2", LinkType.ETHERNET) is None
    monkeypatch.setattr(capsvc._records, "_C", None)  # as CAPSVC_NO_SPEEDUPS=1 at import
    assert not records_available()
    assert _program("udp", LinkType.ETHERNET) is None


# --- realtime pacing --------------------------------------------------------------------------


async def test_realtime_paces_packets_across_batches(pipe: Pipe) -> None:
    """A realtime replay of a pipe keeps the gaps from the first packet of the file, also for
    packets of later batches: packets 0.5 s and 0.6 s after the first are yielded no sooner,
    and the second 0.1 s after the other, not later; no batch is empty.

    Mutation guarded: the pacer's first timestamp taken from another packet or field
    (``_Pacer.replay`` 1-4), the first packet of a batch skipped (7), empty runs yielded while
    waiting (``j >= i``, 21), the time already passed added to a wait instead of taken off it
    (25: the third packet would come 0.5 s late)."""
    pipe.write(HEADER + record(50, 0))
    source = PcapFileSource(pipe.reader, realtime=True)
    batches = aiter(source)
    start = time.monotonic()  # no later than the pacer's own start
    batch = await asyncio.wait_for(anext(batches), 10)
    assert [p.ts_ns for p in batch] == [50_000_000_000]
    pipe.write(record(50, 500_000) + record(50, 600_000))  # one write: one chunk, one batch
    got: list[tuple[int, float]] = []
    while len(got) < 2:
        batch = await asyncio.wait_for(anext(batches), 10)
        assert batch
        got += [(p.ts_ns, time.monotonic() - start) for p in batch]
    assert [ts for ts, _ in got] == [50_500_000_000, 50_600_000_000]
    assert got[0][1] >= 0.49 and got[1][1] >= 0.59
    assert got[1][1] - got[0][1] < 0.4
    assert got[1][1] < 5.0
    await source.aclose()
