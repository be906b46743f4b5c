"""libpcap handles: the gopacket ``pcap`` surface over the ctypes binding in ``_libpcap_ffi``.

``Handle`` and the capture-file openers live here; live handles are configured in
``_libpcap_live``; types, errors and module functions in ``_libpcap_types``. Rules: every libpcap
status code becomes an exception in one place (``_check``/``_status_error``) carrying libpcap's own
text; every handle is closed explicitly (``close()`` or a ``with`` block); compiled filters are
copied into Python-owned memory at once, so a ``BPF`` needs no closing.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import select
import socket
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import IO, Self

from ..._packet import Direction
from . import _ffi as ffi
from ._types import (
    BLOCK_FOREVER,
    BPF,
    BPFInstruction,
    CaptureInfo,
    Datalink,
    LibpcapError,
    LibpcapFileError,
    NoMorePacketsError,
    Stats,
    TimeoutExpiredError,
    _check,
    _compile,
    _instructions_program,
    _status_error,
    _text,
)

__all__ = [
    "Handle",
    "open_offline",
    "open_offline_file",
]

_PCAP_DIRECTIONS = {
    Direction.UNKNOWN: ffi.PCAP_D_INOUT,
    Direction.INBOUND: ffi.PCAP_D_IN,
    Direction.OUTBOUND: ffi.PCAP_D_OUT,
}


def _ifindex(device: str | None) -> int:
    if not device:
        return 0
    try:
        return socket.if_nametoindex(device)
    except OSError:  # "any", or a device that is not a network interface
        return 0


class Handle:
    """An activated libpcap handle: a live capture or a capture file being read.

    Made by ``open_live``, ``open_offline``, ``open_offline_file`` or ``InactiveHandle.activate``.
    Close it with ``close()`` or a ``with`` block. One thread at a time.

    Reading on a live handle waits according to its timeout (see ``open_live``): a positive
    timeout raises ``TimeoutExpiredError`` when no packet came in time; 0 and a negative one
    (``BLOCK_FOREVER``) wait until a packet comes. A capture file raises ``NoMorePacketsError``
    (an ``EOFError``) at its end; iterating over a handle yields ``(data, CaptureInfo)`` and
    simply stops there.

    Attributes:
        device: the device name of a live handle, None for a capture file.
        live: True for a live capture.
        timeout: the read timeout in seconds (see above); BLOCK_FOREVER for capture files.
        direction: the direction set with ``set_direction`` (UNKNOWN: both).
        warning: libpcap's warning from activation (e.g. promiscuous mode unsupported), or "".
    """

    def __init__(
        self, ptr: int, *, device: str | None = None, timeout: float = BLOCK_FOREVER
    ) -> None:
        self._ptr: int | None = ptr
        self.device = device
        self.live = device is not None
        self.timeout = timeout
        self.direction = Direction.UNKNOWN
        self.warning = ""
        self.interface_index = _ifindex(device)
        dll = ffi.lib()
        self._nano: bool = dll.pcap_get_tstamp_precision(ptr) == ffi.PCAP_TSTAMP_PRECISION_NANO
        self._hdr = ctypes.POINTER(ffi.pcap_pkthdr)()
        self._data = ctypes.c_void_p()
        self._hdr_ref = ctypes.byref(self._hdr)
        self._data_ref = ctypes.byref(self._data)
        self._fd = -1
        if self.live:
            self._fd = dll.pcap_get_selectable_fd(ptr)
            errbuf = ctypes.create_string_buffer(ffi.PCAP_ERRBUF_SIZE)
            # Waiting is done here (poll on the selectable fd), so timeouts work the same for
            # every mode and a closing source can wake its reader.
            if dll.pcap_setnonblock(ptr, 1, errbuf) < 0:
                self.close()
                raise LibpcapError(f"setting non-blocking mode: {_text(errbuf.value)}")

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def _p(self) -> int:
        if self._ptr is None:
            raise LibpcapError("the handle is closed")
        return self._ptr

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._ptr is None

    @property
    def nanosecond(self) -> bool:
        """True when libpcap delivers nanosecond timestamps (always for files and open_live)."""
        return self._nano

    def fileno(self) -> int:
        """The selectable fd of a live handle (readable when packets wait), -1 for a file."""
        self._p  # noqa: B018 - raises on a closed handle
        return self._fd

    def close(self) -> None:
        """Close the handle; idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            ffi.lib().pcap_close(ptr)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def error(self) -> str:
        """Return libpcap's text for the last error on this handle (pcap_geterr)."""
        return _text(ffi.lib().pcap_geterr(self._p))

    # -- reading ------------------------------------------------------------------------------

    def _next(self, timeout: float) -> CaptureInfo:
        """Advance to the next packet (pcap_next_ex), waiting per ``timeout``."""
        dll = ffi.lib()
        deadline = time.monotonic() + timeout if timeout > 0 else 0.0
        poller: select.poll | None = None
        while True:
            p = self._p
            rc = dll.pcap_next_ex(p, self._hdr_ref, self._data_ref)
            if rc == 1:
                h = self._hdr.contents
                frac = h.ts.tv_usec if self._nano else h.ts.tv_usec * 1000
                return CaptureInfo(
                    h.ts.tv_sec * 1_000_000_000 + frac, h.caplen, h.len, self.interface_index
                )
            if rc == -2:
                raise NoMorePacketsError("end of capture file")
            if rc < 0:
                raise _status_error(p, rc, "reading a packet")
            wait_ms: int | None = None
            if timeout > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutExpiredError(f"no packet within {timeout:g} s")
                wait_ms = max(1, math.ceil(left * 1000))
            if poller is None:
                poller = select.poll()
                poller.register(self._fd, select.POLLIN)
            poller.poll(wait_ms)

    def read_packet_data(self) -> tuple[bytes, CaptureInfo]:
        """Read the next packet, copied.

        Returns:
            The captured bytes and their CaptureInfo.

        Raises:
            TimeoutExpiredError: a live handle's timeout passed without a packet.
            NoMorePacketsError: the capture file is at its end (an EOFError).
            LibpcapError: libpcap failed (its message says why), or the handle is closed.
        """
        ci = self._next(self.timeout)
        return ctypes.string_at(self._data.value or 0, ci.capture_length), ci

    def zero_copy_read_packet_data(self) -> tuple[memoryview, CaptureInfo]:
        """Like ``read_packet_data`` but without copying: the view is of libpcap's buffer.

        Returns:
            A read-only memoryview valid only until the next read or ``close()`` (copy what
            you keep), and the CaptureInfo.
        """
        ci = self._next(self.timeout)
        array = (ctypes.c_char * ci.capture_length).from_address(self._data.value or 0)
        return memoryview(array).cast("B").toreadonly(), ci

    def __iter__(self) -> Iterator[tuple[bytes, CaptureInfo]]:
        """Yield ``(data, CaptureInfo)`` until the end of a file or ``close()``.

        A live handle waits as long as it takes (timeouts do not end the iteration).
        """
        while self._ptr is not None:
            try:
                ci = self._next(BLOCK_FOREVER)
            except EOFError:
                return
            yield ctypes.string_at(self._data.value or 0, ci.capture_length), ci

    # -- filters ------------------------------------------------------------------------------

    def compile_bpf_filter(self, expr: str) -> list[BPFInstruction]:
        """Compile a libpcap filter expression for this handle's link type and snaplen.

        Raises:
            LibpcapError: the expression is malformed (libpcap's message).
        """
        return _compile(self._p, expr).instructions()

    def new_bpf(self, expr: str) -> BPF:
        """Compile ``expr`` into a BPF usable with ``BPF.matches`` on this handle's packets."""
        return _compile(self._p, expr)

    def set_bpf_filter(self, expr: str) -> None:
        """Compile ``expr`` and install it (in the kernel for live captures).

        Raises:
            LibpcapError: a malformed expression, or the filter could not be installed.
        """
        self._set_program(_compile(self._p, expr))

    def new_bpf_instruction_filter(self, instructions: Sequence[tuple[int, int, int, int]]) -> BPF:
        """A BPF from ``(code, jt, jf, k)`` tuples, for ``BPF.matches`` on this handle's packets
        (gopacket's Handle.NewBPFInstructionFilter).

        Raises:
            capsvc.OptionError: no instructions, or more than MAX_BPF_INSTRUCTIONS (4096).
            LibpcapError: the handle is closed.
        """
        self._p  # noqa: B018 - raises on a closed handle
        return BPF(_instructions_program(instructions))

    def set_bpf_instruction_filter(self, instructions: Sequence[tuple[int, int, int, int]]) -> None:
        """Install a classic BPF program given as ``(code, jt, jf, k)`` tuples.

        ``tcpdump -dd EXPR`` prints such tuples.

        Raises:
            capsvc.OptionError: no instructions, or more than MAX_BPF_INSTRUCTIONS (4096).
            LibpcapError: libpcap or the kernel refused the program.
        """
        self._set_program(self.new_bpf_instruction_filter(instructions))

    def _set_program(self, bpf: BPF) -> None:
        p = self._p
        _check(p, ffi.lib().pcap_setfilter(p, ctypes.byref(bpf.program)), "setting the filter")

    def set_direction(self, direction: Direction) -> None:
        """Capture only packets of one direction (pcap_setdirection).

        Args:
            direction: capsvc's Direction: INBOUND, OUTBOUND, or UNKNOWN for both (the default).

        Raises:
            LibpcapError: the platform or handle cannot (libpcap's message).
        """
        p = self._p
        code = _PCAP_DIRECTIONS[Direction(direction)]
        _check(p, ffi.lib().pcap_setdirection(p, code), "setting the direction")
        self.direction = Direction(direction)

    # -- link layer ---------------------------------------------------------------------------

    @property
    def link_type(self) -> int:
        """The DLT_ value of the handle's link layer (pcap_datalink; DLT_EN10MB is 1)."""
        return int(ffi.lib().pcap_datalink(self._p))

    @property
    def snaplen(self) -> int:
        """The snapshot length (pcap_snapshot)."""
        return int(ffi.lib().pcap_snapshot(self._p))

    def set_link_type(self, dlt: int) -> None:
        """Switch to another link type the device offers (see ``list_data_links``).

        Raises:
            LibpcapError: the device does not offer it (libpcap's message).
        """
        p = self._p
        _check(p, ffi.lib().pcap_set_datalink(p, int(dlt)), "setting the link type")

    def list_data_links(self) -> list[Datalink]:
        """Return the link types the device offers."""
        dll = ffi.lib()
        p = self._p
        values = ctypes.POINTER(ctypes.c_int)()
        n = _check(p, dll.pcap_list_datalinks(p, ctypes.byref(values)), "listing link types")
        try:
            return [Datalink.of(values[i]) for i in range(n)]
        finally:
            dll.pcap_free_datalinks(values)

    # -- live only ----------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Return libpcap's counters (pcap_stats); live captures only.

        Raises:
            LibpcapError: not available (e.g. for a capture file; libpcap's message).
        """
        p = self._p
        ps = ffi.pcap_stat()
        _check(p, ffi.lib().pcap_stats(p, ctypes.byref(ps)), "reading statistics")
        return Stats(ps.ps_recv, ps.ps_drop, ps.ps_ifdrop)

    def write_packet_data(self, data: bytes | bytearray | memoryview) -> None:
        """Send one raw frame out of the device (pcap_sendpacket).

        Raises:
            LibpcapError: it could not be sent (libpcap's message).
        """
        p = self._p
        frame = bytes(data)
        _check(p, ffi.lib().pcap_sendpacket(p, frame, len(frame)), "sending a packet")


def open_offline(path: str | os.PathLike[str]) -> Handle:
    """Open a pcap or pcapng file, with nanosecond time stamps.

    Raises:
        LibpcapFileError: the file is missing or unreadable, or no capture file (libpcap's
            message, e.g. "unknown file format").
    """
    dll = ffi.lib()
    errbuf = ctypes.create_string_buffer(ffi.PCAP_ERRBUF_SIZE)
    name = os.fsencode(path)
    ptr = dll.pcap_open_offline_with_tstamp_precision(name, ffi.PCAP_TSTAMP_PRECISION_NANO, errbuf)
    if not ptr:
        raise LibpcapFileError(path, _text(errbuf.value))
    return Handle(ptr)


def open_offline_file(fileobj: IO[bytes]) -> Handle:
    """Open a capture from a binary file object, from its current position, nanosecond time stamps.

    A file object with a file descriptor is read through a duplicate of it (the caller's stays
    open, and its position is not trusted afterwards); one without (``io.BytesIO``) is read whole
    into an in-memory file first.

    Raises:
        LibpcapFileError: no capture file (libpcap's message).
    """
    dll, libc = ffi.lib(), ffi.libc()
    name = str(getattr(fileobj, "name", "<stream>"))
    try:
        fd = os.dup(fileobj.fileno())
    except (AttributeError, OSError, ValueError):
        fd = os.memfd_create("capsvc-capture", os.MFD_CLOEXEC)
        with contextlib.ExitStack() as on_error:
            on_error.callback(os.close, fd)
            os.write(fd, fileobj.read())
            on_error.pop_all()
        os.lseek(fd, 0, os.SEEK_SET)
    else:
        with contextlib.suppress(OSError, ValueError):
            os.lseek(fd, fileobj.tell(), os.SEEK_SET)
    fp = libc.fdopen(fd, b"rb")
    if not fp:
        os.close(fd)
        raise LibpcapFileError(name, os.strerror(ctypes.get_errno()))
    errbuf = ctypes.create_string_buffer(ffi.PCAP_ERRBUF_SIZE)
    ptr = dll.pcap_fopen_offline_with_tstamp_precision(fp, ffi.PCAP_TSTAMP_PRECISION_NANO, errbuf)
    if not ptr:
        libc.fclose(fp)
        raise LibpcapFileError(name, _text(errbuf.value))
    return Handle(ptr)
