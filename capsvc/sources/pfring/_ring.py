"""The Ring: one PF_RING socket through the ffi layer (open, configure, read, stats).

IO module: every call goes to libpfring through ``_ffi``; the values it returns are plain
Python types (``CaptureInfo``, ``Stats``, the enums of ``_types``). Opening, configuring,
sending and the counters live here; reading in ``_reader`` (``RingReader``, the base class).
"""

from __future__ import annotations

import ctypes
import errno as errnos
import functools
import logging
import os
import sys
from types import TracebackType
from typing import Self

from ... import _packet
from ..._errors import BackendUnavailableError, CaptureError, CaptureFileError, OptionError
from ..._packet import SNAPLEN_DEFAULT, LinkType
from . import _ffi as ffi
from ._ffi import PfRingError, PfRingFilterError
from ._reader import RingReader
from ._types import (
    DEFAULT_MODULE,
    ClusterType,
    Direction,
    Flag,
    SocketMode,
    Stats,
    module_of,
    pcap_module_name,
)

__all__ = ["SNAPLEN_DEFAULT", "Ring"]


log = logging.getLogger("capsvc")

_NO_FLAGS = Flag(0)
_ARPHRD_NONE = 65534
#: DLT_ values libpcap's compiler wants where they differ from the LINKTYPE_ (Linux).
_DLT_OF = {LinkType.RAW: 12}
#: Modules whose reads ignore the sampling rate (pfring_set_sampling_rate returns 0 anyway).
_SAMPLING_IGNORED = frozenset({"pcap"})


def _program_name() -> str:
    return sys.argv[0] if sys.argv and sys.argv[0] else "capsvc"


class Ring(RingReader):
    """An open PF_RING handle. Create one with ``Ring.open``; close it with ``close()`` or a
    ``with`` block.

    Reads from several threads are serialised by a lock (like gopacket's mutex); ``close()``
    must not race a read that is blocked waiting for a packet.

    Attributes:
        device: the device name as opened (``pcap:lo``).
        module: the PF_RING module it selects (``"pcap"``, ``"zc"``, ``"pf_ring"`` for the
            kernel module); NOT_SUPPORTED errors name it.
        snaplen: bytes kept of each packet (at most ``ffi.MAX_CAPLEN``, as the library keeps).
        flags: the ``Flag`` bits it was opened with.
        reads_file: True for a ``pcap:FILE`` ring, whose reads end at the end of the file.
    """

    @classmethod
    def open(
        cls,
        device: str,
        snaplen: int = SNAPLEN_DEFAULT,
        flags: Flag = _NO_FLAGS,
        *,
        library: str | os.PathLike[str] | None = None,
    ) -> Ring:
        """Open a ring on ``device``; it receives nothing until ``enable()``.

        The application name is set to the program name (``sys.argv[0]``), as gopacket does;
        a module that does not support names is not an error.

        Args:
            device: ``eth0``, ``eth0@1`` (a queue), ``any``, ``zc:eth0``, or ``pcap:NAME``
                (through libpcap, no kernel module needed: a capture file, else an interface).
            snaplen: bytes kept of each packet; 0 means 262144. The library keeps at most
                ``ffi.MAX_CAPLEN`` (65600), and so does the ring.
            flags: ``Flag`` bits, e.g. ``Flag.PROMISC | Flag.LONG_HEADER``; default none.
            library: libpfring to load; None means ``$CAPSVC_PFRING_LIBRARY`` or the system's.

        Returns:
            The disabled ring.

        Raises:
            capsvc.BackendUnavailableError: libpfring cannot be loaded (says how to install it).
            PfRingError: ``pfring_open`` failed; the message says why (no such capture file, not
                a capture file, the kernel module is not loaded, needs root) and ``errno`` holds
                the C errno that fits.
            ValueError: a negative snaplen.
        """
        if snaplen < 0:
            raise OptionError("snaplen must not be negative")
        snaplen = min(snaplen or SNAPLEN_DEFAULT, ffi.MAX_CAPLEN)
        so = ffi.lib(library)
        handle = so.pfring_open(os.fsencode(device), snaplen, int(flags))
        if not handle:
            raise _open_failure(device, ctypes.get_errno())
        ring = cls(so, int(handle), device, snaplen, Flag(flags))
        # As gopacket: the name shows in /proc/net/pf_ring; modules without names say no.
        so.pfring_set_application_name(
            handle, ctypes.create_string_buffer(_program_name().encode())
        )
        return ring

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the ring (``pfring_close``). Idempotent."""
        with self._lock:
            handle, self._handle_value = self._handle_value, None
            if handle is not None:
                self._lib.pfring_close(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, name: str, *args: object, feature: str = "") -> int:
        rc = int(getattr(self._lib, name)(self._handle(), *args))
        if rc < 0:
            raise self._error(rc, name, feature)
        return rc

    # -- configuration -----------------------------------------------------------------------

    def enable(self) -> None:
        """Start receiving (``pfring_enable_ring``). Raises: PfRingError."""
        self._call("pfring_enable_ring", feature="enabling the ring")

    def disable(self) -> None:
        """Stop receiving (``pfring_disable_ring``).

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        self._call("pfring_disable_ring", feature="disabling the ring")

    @functools.cached_property
    def linktype(self) -> LinkType:
        """The link type of the frames: a ``pcap:FILE``'s header (pcap or pcapng), else the
        interface's (ARPHRD type; ``pcap:any`` is Linux cooked); Ethernet when neither says."""
        return _linktype_of(self.device, self.reads_file)

    def set_bpf_filter(self, expr: str, *, linktype: LinkType | None = None) -> None:
        """Set a BPF filter in tcpdump syntax, replacing any earlier one.

        On the ``pcap:`` module the expression is first compiled with libpcap for the frames'
        link type: where the module cannot compile it, libpfring falls back to a filter
        compiled for Ethernet, which it applies to zero-copy reads only, so ``ether host X``
        on a raw-IP file would silently match nothing, or everything when reading by copy.

        Args:
            expr: the expression.
            linktype: the link type to check it against on the ``pcap:`` module; None means
                ``self.linktype``.

        Raises:
            PfRingFilterError: the expression does not compile (a ``capsvc.FilterError``;
                libpfring answers -1 or -2; the ``pcap:`` module's check gives libpcap's reason).
            PfRingError: the module cannot filter.
        """
        if self.module == "pcap":
            _check_filter(expr, self.linktype if linktype is None else linktype, self.snaplen)
        rc = int(
            self._lib.pfring_set_bpf_filter(
                self._handle(), ctypes.create_string_buffer(expr.encode())
            )
        )
        if rc in (ffi.PF_RING_ERROR_GENERIC, ffi.PF_RING_ERROR_INVALID_ARGUMENT):
            raise PfRingFilterError(rc, expr)
        if rc < 0:
            raise self._error(rc, "pfring_set_bpf_filter", "filtering")

    def remove_bpf_filter(self) -> None:
        """Remove the BPF filter.

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        self._call("pfring_remove_bpf_filter", feature="removing a filter")

    def set_cluster(self, cluster_id: int, cluster_type: ClusterType) -> None:
        """Join cluster ``cluster_id``, whose rings share packets as ``cluster_type`` says.

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        self._call(
            "pfring_set_cluster",
            cluster_id,
            int(ClusterType(cluster_type)),
            feature="joining a cluster",
        )

    def remove_from_cluster(self) -> None:
        """Leave the cluster. Raises: PfRingError."""
        self._call("pfring_remove_from_cluster", feature="leaving a cluster")

    def set_direction(self, direction: Direction) -> None:
        """Capture received, transmitted or both kinds of packets.

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        direction = Direction(direction)
        self._call("pfring_set_direction", int(direction), feature="choosing a direction")
        self._default_direction = _DIRECTION_OF[direction]

    def set_socket_mode(self, mode: SocketMode) -> None:
        """Read, write or both; set it before ``enable()``.

        Raises:
            PfRingError: GENERIC when the ring is already enabled, or when the module has no
                such mode (the ``pcap:`` module only reads).
        """
        self._call("pfring_set_socket_mode", int(SocketMode(mode)), feature="a socket mode")

    def set_sampling_rate(self, rate: int) -> None:
        """Deliver one packet in ``rate`` (1, the default, delivers all): the first, then every
        ``rate``-th, as the kernel module samples. Where the module ignores the rate (the
        ``pcap:`` module) or does not support it, the ring samples its reads itself.

        Raises:
            ValueError: a rate below 1.
            PfRingError: the module refused the rate.
        """
        if rate < 1:
            raise OptionError("sampling rate must be at least 1")
        rc = int(self._lib.pfring_set_sampling_rate(self._handle(), rate))
        if self.module in _SAMPLING_IGNORED or rc == ffi.PF_RING_ERROR_NOT_SUPPORTED:
            with self._lock:
                self._sample_rate, self._skip = rate, 0
            return
        if rc < 0:
            raise self._error(rc, "pfring_set_sampling_rate")

    def set_application_name(self, name: str) -> None:
        """Name the ring in ``/proc/net/pf_ring``. Raises: PfRingError."""
        self._call(
            "pfring_set_application_name",
            ctypes.create_string_buffer(name.encode()),
            feature="naming the ring",
        )

    def write_packet_data(self, data: bytes | bytearray | memoryview) -> None:
        """Send one frame out of the ring's interface (flushed at once).

        Raises:
            PfRingError: RING_NOT_ENABLED before ``enable()``, NOT_SUPPORTED on the ``pcap:``
                module or a read-only ring, NO_TX_SLOT when full.
        """
        frame = bytes(data)
        self._call("pfring_send", frame, len(frame), 1, feature="sending")

    def stats(self) -> Stats:
        """Return the ring's counters (zeros before ``enable()``).

        Raises:
            PfRingError: e.g. NOT_SUPPORTED on the ``pcap:`` module.
        """
        raw = ctypes.create_string_buffer(ffi.PFRING_STAT.size)
        self._call("pfring_stats", raw, feature="reading kernel statistics")
        received, dropped, _shunt = ffi.PFRING_STAT.unpack(raw.raw)
        return Stats(received, dropped)

    # -- used by PfRingSource ----------------------------------------------------------------

    def _selectable_fd(self) -> int:
        """``pfring_get_selectable_fd``: a fd readable while packets wait, or -1."""
        return int(self._lib.pfring_get_selectable_fd(self._handle()))

    def _poll(self, wait: int) -> int:
        """``pfring_poll``: wait up to ``wait`` (ms; seconds on ``pcap:``) for a packet."""
        return ffi.check(int(self._lib.pfring_poll(self._handle(), wait)), "pfring_poll")


def _open_failure(device: str, err: int) -> PfRingError:
    """The error for a NULL pfring_open, saying what the errno cannot."""
    name = pcap_module_name(device)
    if name is not None:
        problem, err = _pcap_open_problem(name, err)
        return PfRingError(ffi.PF_RING_ERROR_GENERIC, "pfring_open", f"{device}: {problem}", err)
    hint = ffi.OPEN_HINTS.get(err, "")
    detail = f"{device}: {os.strerror(err)}" + (f" ({hint})" if hint else "")
    return PfRingError(ffi.PF_RING_ERROR_GENERIC, "pfring_open", detail, err)


def _pcap_open_problem(name: str, err: int) -> tuple[str, int]:
    """Why the ``pcap:`` module could not open ``name``, and the errno that says so.

    The library turns every failure of the module into ENODEV, a missing capture file too.
    """
    if os.path.isfile(name):
        from ..capfile import CaptureFile

        try:
            with CaptureFile(name):
                pass
        except CaptureFileError as exc:
            return f"not a capture file libpcap can read ({exc.reason})", errnos.EINVAL
        except OSError as exc:
            return f"cannot read the capture file: {exc.strerror or exc}", exc.errno or err
        return "libpcap cannot read this capture file", errnos.EINVAL
    if os.path.exists(name):
        return "not a capture file (the pcap: module reads files and interfaces)", errnos.EINVAL
    if "/" in name:
        return "no such capture file", errnos.ENOENT
    if name != "any" and not os.path.exists(f"/sys/class/net/{name}"):
        return "no such capture file or interface", errnos.ENODEV
    hint = ffi.OPEN_HINTS.get(err) if err != errnos.ENODEV else None
    if hint is None and os.geteuid() != 0:
        err, hint = errnos.EPERM, ffi.OPEN_HINTS[errnos.EPERM]
    return f"libpcap cannot open the interface ({hint or os.strerror(err)})", err


_DIRECTION_OF = {
    Direction.RECEIVE_AND_TRANSMIT: _packet.Direction.UNKNOWN,
    Direction.RECEIVE_ONLY: _packet.Direction.INBOUND,
    Direction.TRANSMIT_ONLY: _packet.Direction.OUTBOUND,
}


def _check_filter(expr: str, linktype: LinkType, snaplen: int) -> None:
    """Compile ``expr`` with libpcap for ``linktype``, as the ``pcap:`` module will.

    Raises:
        PfRingFilterError: libpcap cannot compile it (its reason in ``detail``).
    """
    from ..libpcap import new_bpf

    try:
        new_bpf(_DLT_OF.get(linktype, int(linktype)), snaplen, expr)
    except BackendUnavailableError:  # no libpcap binding: the library's own answer must do
        return
    except CaptureError as exc:  # LibpcapError: the expression is bad for this link type
        detail = f"{exc} ({linktype.name} frames)"
        raise PfRingFilterError(ffi.PF_RING_ERROR_INVALID_ARGUMENT, expr, detail) from exc


def _linktype_of(device: str, reads_file: bool) -> LinkType:
    """The link type of a device's frames: a capture file's header, else the interface's."""
    module = module_of(device)
    name = device if module == DEFAULT_MODULE else device.partition(":")[2]
    if reads_file:
        return _file_linktype(name)
    if module == "pcap" and name == "any":
        return LinkType.LINUX_SLL  # libpcap's "any" device, opened with pcap_open_live
    try:
        with open(f"/sys/class/net/{name.partition('@')[0]}/type", encoding="ascii") as f:
            arphrd = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return LinkType.ETHERNET
    return LinkType.RAW if arphrd == _ARPHRD_NONE else LinkType.ETHERNET


def _file_linktype(path: str) -> LinkType:
    """The link type of a pcap or pcapng file (the first interface's), as libpcap reads it."""
    from ..capfile import CaptureFile

    if path == "-":  # standard input: its header is libpcap's to read
        return LinkType.ETHERNET
    try:
        with CaptureFile(path) as capture:
            return capture.linktype
    except (CaptureFileError, OSError):  # libpcap read it: the header is all that matters
        log.warning("%s: cannot read the link type; treating the frames as Ethernet", path)
        return LinkType.ETHERNET
