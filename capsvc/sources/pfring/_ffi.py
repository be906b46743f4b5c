"""ctypes declarations of the libpfring functions capsvc uses (PF_RING 8.x, x86_64).

The library is loaded once per path, on first use, so ``import capsvc`` works where PF_RING is
not installed. libpcap is loaded with RTLD_GLOBAL first, because libpfring builds often leave
their libpcap symbols unresolved. Every function's argtypes/restype sit under its C signature;
C constants keep their C spelling here. ``pfring_pkthdr`` is read through ``PFRING_PKTHDR``,
which covers only the first 48 bytes: the library writes up to 209 bytes (long header), so the
buffer given to it is ``PKTHDR_BUFFER_SIZE`` bytes. The only logic here is ``check``, which turns
a negative return code into ``PfRingError`` naming it; ``pfring`` turns header bytes into values.
The errors of the binding live here too: ``PfRingError``, ``PfRingEndOfFile`` (the end of a
``pcap:FILE``) and ``PfRingFilterError`` (a filter the library refused).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errnos
import functools
import os
import struct
from typing import Any

from ..._errors import BackendUnavailableError, CaptureError, FilterError

__all__ = [
    "ERROR_NAMES",
    "INSTALL_HINT",
    "LIBRARY_ENV",
    "MAX_CAPLEN",
    "NOT_SUPPORTED_TEXT",
    "OPEN_HINTS",
    "PFRING_PKTHDR",
    "PFRING_STAT",
    "PKTHDR_BUFFER_SIZE",
    "PfRingEndOfFile",
    "PfRingError",
    "PfRingFilterError",
    "check",
    "lib",
    "resolve_path",
]

#: Environment variable naming the libpfring to load (a path), overriding the system search.
LIBRARY_ENV = "CAPSVC_PFRING_LIBRARY"

INSTALL_HINT = (
    "PF_RING is not installed (libpfring not found): install ntop's packages "
    "(https://packages.ntop.org: apt-get install pfring) or build it from source "
    "(https://github.com/ntop/PF_RING: cd userland/lib && ./configure && make && make install), "
    f"or set {LIBRARY_ENV} to the path of libpfring.so"
)

#: The symbol whose absence means "this is no libpfring".
REQUIRED_SYMBOL = "pfring_open"

PF_RING_ERROR_GENERIC = -1
PF_RING_ERROR_INVALID_ARGUMENT = -2
PF_RING_ERROR_NO_PKT_AVAILABLE = -3
PF_RING_ERROR_NO_TX_SLOT_AVAILABLE = -4
PF_RING_ERROR_NOT_SUPPORTED = -7
PF_RING_ERROR_RING_NOT_ENABLED = -12
PF_RING_ERROR_MOD_NOT_LOADED = -14

#: Return codes by value, named as PfRingError reports them.
ERROR_NAMES = {
    PF_RING_ERROR_GENERIC: "GENERIC",
    PF_RING_ERROR_INVALID_ARGUMENT: "INVALID_ARGUMENT",
    PF_RING_ERROR_NO_PKT_AVAILABLE: "NO_PKT_AVAILABLE",
    PF_RING_ERROR_NO_TX_SLOT_AVAILABLE: "NO_TX_SLOT",
    PF_RING_ERROR_NOT_SUPPORTED: "NOT_SUPPORTED",
    PF_RING_ERROR_RING_NOT_ENABLED: "RING_NOT_ENABLED",
    PF_RING_ERROR_MOD_NOT_LOADED: "MOD_NOT_LOADED",
}

#: How every NOT_SUPPORTED answer is reported (the module name follows in parentheses).
NOT_SUPPORTED_TEXT = "not supported by this PF_RING module"

#: pfring.h's MAX_CAPLEN: pfring_open lowers a larger caplen to this.
MAX_CAPLEN = 65600

PF_RING_ZC_SYMMETRIC_RSS = 1 << 0
PF_RING_REENTRANT = 1 << 1
PF_RING_LONG_HEADER = 1 << 2
PF_RING_PROMISC = 1 << 3
PF_RING_TIMESTAMP = 1 << 4
PF_RING_HW_TIMESTAMP = 1 << 5
PF_RING_RX_PACKET_BOUNCE = 1 << 6
PF_RING_ZC_FIXED_RSS_Q_0 = 1 << 7
PF_RING_STRIP_HW_TIMESTAMP = 1 << 8
PF_RING_DO_NOT_PARSE = 1 << 9
PF_RING_DO_NOT_TIMESTAMP = 1 << 10
PF_RING_USERSPACE_BPF = 1 << 13
PF_RING_TX_BPF = 1 << 22

#: struct pfring_pkthdr (packed), the fields below byte 48 only: ts.tv_sec, ts.tv_usec, caplen,
#: len, extended_hdr.{timestamp_ns, flags, rx_direction, port_id, device_id, if_index, pkt_hash}.
PFRING_PKTHDR = struct.Struct("<qqIIQIBBHiI")
#: Bytes handed to pfring_recv for the header: more than the 209 the long header fills.
PKTHDR_BUFFER_SIZE = 256
#: pfring_stat: recv, drop, shunt.
PFRING_STAT = struct.Struct("<QQQ")

assert PFRING_PKTHDR.size == 48

#: What to do when pfring_open fails with an errno.
OPEN_HINTS = {
    errnos.EAFNOSUPPORT: "the pf_ring kernel module is not loaded: modprobe pf_ring, "
    "or read through libpcap with a pcap:DEVICE name",
    errnos.EPERM: "needs root (CAP_NET_ADMIN and CAP_NET_RAW)",
    errnos.EACCES: "needs root (CAP_NET_ADMIN and CAP_NET_RAW)",
    errnos.ENODEV: "no such device",
}


class PfRingError(CaptureError):
    """A libpfring call failed.

    Attributes:
        code: the return code (``-7``), or -1 when ``pfring_open`` returned NULL.
        code_name: its name (``"NOT_SUPPORTED"``), ``"UNKNOWN"`` for codes pfring.h does not
            name here.
        operation: the call that failed (``"pfring_set_cluster"``).
        errno: the C errno for a failed ``pfring_open``, else 0.
    """

    def __init__(self, code: int, operation: str, detail: str = "", errno: int = 0) -> None:
        self.code = code
        self.code_name = ERROR_NAMES.get(code, "UNKNOWN")
        self.operation = operation
        self.errno = errno
        text = f"{operation} failed: {self.code_name} ({code})"
        super().__init__(f"{text}: {detail}" if detail else text)


class PfRingEndOfFile(PfRingError, EOFError):
    """A ``pcap:FILE`` ring has delivered the file's last packet.

    The library says so in two ways: zero-copy reads return INVALID_ARGUMENT (-2, libpcap's
    end of file), copy reads return 0 with an empty header. Both become this error, whose code
    is NO_PKT_AVAILABLE (-3); it is also an ``EOFError``.
    """

    def __init__(self, device: str) -> None:
        super().__init__(PF_RING_ERROR_NO_PKT_AVAILABLE, "pfring_recv", f"end of {device}")


class PfRingFilterError(FilterError):
    """``pfring_set_bpf_filter`` refused an expression (a ``capsvc.FilterError``).

    libpfring answers -1 or -2 (INVALID_ARGUMENT) for an expression libpcap cannot compile;
    the caret of ``str()`` marks the whole expression, as the library does not say where.

    Attributes:
        code: the return code (-2 too for an expression refused before the library saw it).
        code_name: its name.
        detail: libpcap's reason where it is known, else "".
    """

    def __init__(self, code: int, expr: str, detail: str = "") -> None:
        self.code = code
        self.code_name = ERROR_NAMES.get(code, "UNKNOWN")
        self.detail = detail
        reason = f"PF_RING cannot compile this filter (pfring_set_bpf_filter: {self.code_name}"
        reason = f"{reason} ({code}))" + (f": {detail}" if detail else "")
        super().__init__(reason, expr, 0)

    def __reduce__(self) -> tuple[type[PfRingFilterError], tuple[int, str, str]]:  # type: ignore[override]
        """Pickle by the code, the expression and the detail."""
        return (type(self), (self.code, self.expr, self.detail))


def check(rc: int, operation: str) -> int:
    """Return ``rc`` when it is not negative, else raise PfRingError naming the code."""
    if rc < 0:
        raise PfRingError(rc, operation)
    return rc


_PCAP_NAMES = ("libpcap.so.1", "libpcap.so.0.8", "libpcap.so")


def resolve_path(path: str | os.PathLike[str] | None = None) -> str:
    """Return the libpfring to load: ``path``, else ``$CAPSVC_PFRING_LIBRARY``, else the system's.

    Raises:
        BackendUnavailableError: no libpfring was named and none is installed.
    """
    if path is not None:
        return os.fspath(path)
    named = os.environ.get(LIBRARY_ENV)
    if named:
        return named
    found = ctypes.util.find_library("pfring")
    if found is None:
        raise BackendUnavailableError(INSTALL_HINT)
    return found


def lib(path: str | os.PathLike[str] | None = None) -> Any:
    """Return the loaded libpfring with every function declared (cached per path).

    Args:
        path: the library file; None means ``$CAPSVC_PFRING_LIBRARY`` or the system's libpfring.

    Raises:
        BackendUnavailableError: libpfring cannot be found or loaded, or lacks ``pfring_open``;
            the message says how to install PF_RING.
    """
    return _load(resolve_path(path))


@functools.cache
def _load_pcap_global() -> None:
    names = [ctypes.util.find_library("pcap"), *_PCAP_NAMES]
    for name in names:
        if name is None:
            continue
        try:
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        return
    # No libpcap: a libpfring that needs it fails to load below, with the hint.


@functools.cache
def _load(path: str) -> Any:
    _load_pcap_global()
    try:
        so = ctypes.CDLL(path, use_errno=True)
    except OSError as exc:
        raise BackendUnavailableError(f"cannot load {path}: {exc}; {INSTALL_HINT}") from exc
    if not hasattr(so, REQUIRED_SYMBOL):
        raise BackendUnavailableError(
            f"{path} is no libpfring (no {REQUIRED_SYMBOL}); {INSTALL_HINT}"
        )
    _declare(so)
    return so


def _declare(so: Any) -> None:
    c_int, c_uint, c_uint8, c_uint32 = ctypes.c_int, ctypes.c_uint, ctypes.c_uint8, ctypes.c_uint32
    ring = ctypes.c_void_p  # pfring * (opaque)

    # pfring *pfring_open(const char *device_name, u_int32_t caplen, u_int32_t flags);
    so.pfring_open.argtypes = [ctypes.c_char_p, c_uint32, c_uint32]
    so.pfring_open.restype = ring
    # void pfring_close(pfring *ring);
    so.pfring_close.argtypes = [ring]
    so.pfring_close.restype = None
    # int pfring_enable_ring(pfring *ring);
    so.pfring_enable_ring.argtypes = [ring]
    so.pfring_enable_ring.restype = c_int
    # int pfring_disable_ring(pfring *ring);
    so.pfring_disable_ring.argtypes = [ring]
    so.pfring_disable_ring.restype = c_int
    # int pfring_set_bpf_filter(pfring *ring, const char *filter_buffer);
    so.pfring_set_bpf_filter.argtypes = [ring, ctypes.c_char_p]
    so.pfring_set_bpf_filter.restype = c_int
    # int pfring_remove_bpf_filter(pfring *ring);
    so.pfring_remove_bpf_filter.argtypes = [ring]
    so.pfring_remove_bpf_filter.restype = c_int
    # int pfring_set_cluster(pfring *ring, u_int clusterId, cluster_type the_type);
    so.pfring_set_cluster.argtypes = [ring, c_uint, c_int]
    so.pfring_set_cluster.restype = c_int
    # int pfring_remove_from_cluster(pfring *ring);
    so.pfring_remove_from_cluster.argtypes = [ring]
    so.pfring_remove_from_cluster.restype = c_int
    # int pfring_set_direction(pfring *ring, packet_direction direction);
    so.pfring_set_direction.argtypes = [ring, c_int]
    so.pfring_set_direction.restype = c_int
    # int pfring_set_socket_mode(pfring *ring, socket_mode mode);
    so.pfring_set_socket_mode.argtypes = [ring, c_int]
    so.pfring_set_socket_mode.restype = c_int
    # int pfring_set_sampling_rate(pfring *ring, u_int32_t rate);
    so.pfring_set_sampling_rate.argtypes = [ring, c_uint32]
    so.pfring_set_sampling_rate.restype = c_int
    # int pfring_set_application_name(pfring *ring, char *name);
    so.pfring_set_application_name.argtypes = [ring, ctypes.c_char_p]
    so.pfring_set_application_name.restype = c_int
    # int pfring_recv(pfring *ring, u_char **buffer, u_int buffer_len,
    #                 struct pfring_pkthdr *hdr, u_int8_t wait_for_incoming_packet);
    so.pfring_recv.argtypes = [
        ring,
        ctypes.POINTER(ctypes.c_void_p),
        c_uint,
        ctypes.c_void_p,
        c_uint8,
    ]
    so.pfring_recv.restype = c_int
    # int pfring_send(pfring *ring, char *pkt, u_int pkt_len, u_int8_t flush_packet);
    so.pfring_send.argtypes = [ring, ctypes.c_char_p, c_uint, c_uint8]
    so.pfring_send.restype = c_int
    # int pfring_stats(pfring *ring, pfring_stat *stats);
    so.pfring_stats.argtypes = [ring, ctypes.c_void_p]
    so.pfring_stats.restype = c_int
    # int pfring_get_selectable_fd(pfring *ring);
    so.pfring_get_selectable_fd.argtypes = [ring]
    so.pfring_get_selectable_fd.restype = c_int
    # int pfring_poll(pfring *ring, u_int wait_duration);
    so.pfring_poll.argtypes = [ring, c_uint]
    so.pfring_poll.restype = c_int
    # int pfring_version(pfring *ring, u_int32_t *version);
    so.pfring_version.argtypes = [ring, ctypes.POINTER(c_uint32)]
    so.pfring_version.restype = c_int
    # void pfring_breakloop(pfring *ring);
    so.pfring_breakloop.argtypes = [ring]
    so.pfring_breakloop.restype = None
