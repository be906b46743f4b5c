"""Live libpcap captures: ``InactiveHandle`` (pcap_create, configure, activate) and ``open_live``.

Defaults differ from libpcap's where capsvc needs it: nanosecond time stamps, a 262144-byte
snaplen, and immediate mode whenever the read timeout is 0 or negative.
"""

from __future__ import annotations

import ctypes
import math
from types import TracebackType
from typing import Self

from ..._errors import OptionError
from ..._packet import SNAPLEN_DEFAULT
from . import _ffi as ffi
from ._handle import Handle
from ._types import (
    BLOCK_FOREVER,
    CannotSetRFMonError,
    LibpcapError,
    TimestampSource,
    _check,
    _status_error,
    _text,
    timestamp_source_from_string,
)

__all__ = ["InactiveHandle", "open_live"]

_PRECISIONS = {"micro": ffi.PCAP_TSTAMP_PRECISION_MICRO, "nano": ffi.PCAP_TSTAMP_PRECISION_NANO}


class InactiveHandle:
    """A live handle being configured (pcap_create); ``activate()`` turns it into a Handle.

    Defaults: snaplen 262144, promiscuous off, timeout BLOCK_FOREVER, libpcap's buffer size,
    nanosecond timestamps. Use it in a ``with`` block or call ``cleanup()``; after a successful
    ``activate()`` the Handle owns the capture and ``cleanup()`` does nothing.

    Args:
        device: the interface name ("any" for all interfaces).

    Raises:
        LibpcapError: libpcap refused the device name (its message).
    """

    def __init__(self, device: str) -> None:
        dll = ffi.lib()
        errbuf = ctypes.create_string_buffer(ffi.PCAP_ERRBUF_SIZE)
        ptr = dll.pcap_create(device.encode(), errbuf)
        if not ptr:
            raise LibpcapError(f"{device}: {_text(errbuf.value)}")
        self._ptr: int | None = ptr
        self.device = device
        self.timeout = BLOCK_FOREVER
        self._immediate_set = False  # set_immediate_mode was called: the timeout leaves it be
        try:
            self.set_snaplen(SNAPLEN_DEFAULT)
            self.set_timeout(BLOCK_FOREVER)
            self.set_timestamp_precision("nano")
        except LibpcapError:
            self.cleanup()
            raise

    @property
    def _p(self) -> int:
        if self._ptr is None:
            raise LibpcapError("the inactive handle was activated or cleaned up")
        return self._ptr

    def _set(self, what: str, rc: int) -> None:
        _check(self._p, rc, what)

    def set_snaplen(self, snaplen: int) -> None:
        """Set the snapshot length; 0 means 262144."""
        self._set("setting the snaplen", ffi.lib().pcap_set_snaplen(self._p, snaplen or 262144))

    def set_promisc(self, promisc: bool) -> None:
        """Capture in promiscuous mode or not."""
        self._set("setting promiscuous mode", ffi.lib().pcap_set_promisc(self._p, int(promisc)))

    def set_timeout(self, timeout: float) -> None:
        """Set the read timeout in seconds (see ``open_live`` for 0 and negative values).

        Unless ``set_immediate_mode`` was called, a timeout <= 0 turns immediate mode on (so
        packets arrive at once) and a positive one turns it off (so the kernel hands packets
        over a buffer block at a time, which costs far fewer wake-ups).
        """
        dll = ffi.lib()
        ms = max(1, math.ceil(abs(timeout) * 1000)) if timeout else 0
        self._set("setting the timeout", dll.pcap_set_timeout(self._p, ms))
        if not self._immediate_set:
            rc = dll.pcap_set_immediate_mode(self._p, int(timeout <= 0))
            self._set("setting immediate mode", rc)
        self.timeout = timeout

    def set_buffer_size(self, size: int) -> None:
        """Set the kernel buffer size in bytes (libpcap's default is 2 MiB on Linux)."""
        self._set("setting the buffer size", ffi.lib().pcap_set_buffer_size(self._p, size))

    def set_immediate_mode(self, immediate: bool) -> None:
        """Deliver each packet as soon as it arrives instead of when a buffer block is done."""
        rc = ffi.lib().pcap_set_immediate_mode(self._p, int(immediate))
        self._set("setting immediate mode", rc)
        self._immediate_set = True

    def set_rfmon(self, rfmon: bool) -> None:
        """Turn monitor mode (802.11) on or off.

        Raises:
            CannotSetRFMonError: the device cannot be put in monitor mode (pcap_can_set_rfmon).
        """
        dll = ffi.lib()
        if rfmon:
            rc = _check(self._p, dll.pcap_can_set_rfmon(self._p), "checking monitor mode")
            if rc == 0:
                raise CannotSetRFMonError(f"{self.device}: the device cannot do monitor mode")
        self._set("setting monitor mode", dll.pcap_set_rfmon(self._p, int(rfmon)))

    def set_timestamp_source(self, source: TimestampSource | int | str) -> None:
        """Use another time stamp source (see ``supported_timestamps``), given as a value or
        by libpcap's name ("host", "adapter", ...).

        Raises:
            capsvc.OptionError: a name libpcap does not know (the message lists those it does).
            LibpcapError: the device refused it.
        """
        if isinstance(source, str):
            source = timestamp_source_from_string(source)
        rc = ffi.lib().pcap_set_tstamp_type(self._p, int(source))
        self._set("setting the time stamp source", rc)

    def error(self) -> str:
        """libpcap's text for the last error on this handle (pcap_geterr; gopacket's
        InactiveHandle.Error), "" when there was none."""
        return _text(ffi.lib().pcap_geterr(self._p))

    def supported_timestamps(self) -> list[TimestampSource]:
        """Return the time stamp sources the device offers (may be empty)."""
        dll = ffi.lib()
        values = ctypes.POINTER(ctypes.c_int)()
        n = _check(self._p, dll.pcap_list_tstamp_types(self._p, ctypes.byref(values)), "listing")
        try:
            return [TimestampSource(values[i]) for i in range(n)]
        finally:
            if n:
                dll.pcap_free_tstamp_types(values)

    def set_timestamp_precision(self, precision: str) -> None:
        """Set the time stamp precision: "micro" or "nano" (the default).

        Raises:
            ValueError: another word.
        """
        if precision not in _PRECISIONS:
            raise OptionError(f"precision must be 'micro' or 'nano', not {precision!r}")
        rc = ffi.lib().pcap_set_tstamp_precision(self._p, _PRECISIONS[precision])
        self._set("setting the time stamp precision", rc)

    def activate(self) -> Handle:
        """Start the capture.

        Returns:
            The active Handle (it owns the capture from now on).

        Raises:
            LibpcapPermissionError: not allowed ("needs CAP_NET_RAW ...").
            NoSuchDeviceError: no such device.
            LibpcapError: any other failure, with libpcap's text.
        """
        p = self._p
        rc = ffi.lib().pcap_activate(p)
        if rc < 0:
            raise _status_error(p, rc, f"activating {self.device}")
        self._ptr = None  # the Handle owns it now, and closes it if it fails to set up
        handle = Handle(p, device=self.device, timeout=self.timeout)
        if rc > 0:  # a generic warning's text is in pcap_geterr, the others' in the code
            dll = ffi.lib()
            text = dll.pcap_geterr(p) if rc == ffi.PCAP_WARNING else dll.pcap_statustostr(rc)
            handle.warning = _text(text)
        return handle

    def cleanup(self) -> None:
        """Release the inactive handle; idempotent, a no-op after ``activate()``."""
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
        self.cleanup()


def open_live(device: str, snaplen: int, promisc: bool, timeout: float) -> Handle:
    """Open a live capture on ``device`` (gopacket's OpenLive).

    Args:
        device: the interface name, or "any".
        snaplen: bytes kept of each packet; 0 means 262144.
        promisc: capture in promiscuous mode.
        timeout: seconds a read waits for a packet before raising TimeoutExpiredError. 0 means
            no timeout, as in libpcap (pcap_set_timeout(0)) and gopacket: a read waits as long
            as it takes; so does a negative one (BLOCK_FOREVER). Both turn immediate mode on,
            so a packet is delivered as soon as it arrives rather than when a kernel buffer
            block is done.

    Returns:
        The active Handle, with nanosecond time stamps.

    Raises:
        LibpcapPermissionError: not allowed (run as root or grant CAP_NET_RAW).
        LibpcapError: libpcap failed (its message).
    """
    with InactiveHandle(device) as inactive:
        inactive.set_snaplen(snaplen)
        inactive.set_promisc(promisc)
        inactive.set_timeout(timeout)
        return inactive.activate()
