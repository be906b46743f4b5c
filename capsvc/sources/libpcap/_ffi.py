"""ctypes declarations of the libpcap functions capsvc uses, and nothing else.

The library is loaded once (``lib()``), on first use, so ``import capsvc`` works where libpcap is
not installed. Every function's argtypes/restype sit under its C signature. C constants keep
their C spelling here. No logic lives in this module: ``_libpcap`` turns return codes into
exceptions (with libpcap's own text) and pointers into Python values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Sequence

from ..._errors import BackendUnavailableError

__all__ = [
    "INSTALL_HINT",
    "address_space",
    "bpf_insn",
    "bpf_program",
    "lib",
    "lib_holding_gil",
    "libc",
    "load",
    "pcap_addr",
    "pcap_handler",
    "pcap_if",
    "pcap_pkthdr",
    "pcap_stat",
    "timeval",
]

INSTALL_HINT = (
    "libpcap is not installed: apt-get install libpcap0.8 "
    "(Debian/Ubuntu), dnf install libpcap (Fedora/RHEL) or apk add libpcap (Alpine)"
)

#: Environment variable naming the libpcap to load instead of the system's.
LIBRARY_ENV = "CAPSVC_LIBPCAP"
#: The symbol whose absence means "this is no usable libpcap" (libpcap >= 1.5).
REQUIRED_SYMBOL = "pcap_open_dead_with_tstamp_precision"

PCAP_ERRBUF_SIZE = 256
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF

PCAP_ERROR = -1
PCAP_ERROR_BREAK = -2
PCAP_ERROR_NOT_ACTIVATED = -3
PCAP_ERROR_ACTIVATED = -4
PCAP_ERROR_NO_SUCH_DEVICE = -5
PCAP_ERROR_RFMON_NOTSUP = -6
PCAP_ERROR_NOT_RFMON = -7
PCAP_ERROR_PERM_DENIED = -8
PCAP_ERROR_IFACE_NOT_UP = -9
PCAP_ERROR_CANTSET_TSTAMP_TYPE = -10
PCAP_ERROR_PROMISC_PERM_DENIED = -11
PCAP_ERROR_TSTAMP_PRECISION_NOTSUP = -12
PCAP_WARNING = 1
PCAP_WARNING_PROMISC_NOTSUP = 2
PCAP_WARNING_TSTAMP_TYPE_NOTSUP = 3

PCAP_TSTAMP_PRECISION_MICRO = 0
PCAP_TSTAMP_PRECISION_NANO = 1

PCAP_D_INOUT = 0
PCAP_D_IN = 1
PCAP_D_OUT = 2

AF_INET = 2
AF_INET6 = 10

_DEFAULT_NAMES = ("libpcap.so.1", "libpcap.so.0.8", "libpcap.so")


class timeval(ctypes.Structure):
    """struct timeval (tv_usec holds nanoseconds on a nanosecond-precision handle)."""

    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class pcap_pkthdr(ctypes.Structure):
    """struct pcap_pkthdr."""

    _fields_ = [("ts", timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


class pcap_stat(ctypes.Structure):
    """struct pcap_stat (the Linux layout: no bs_capt)."""

    _fields_ = [
        ("ps_recv", ctypes.c_uint),
        ("ps_drop", ctypes.c_uint),
        ("ps_ifdrop", ctypes.c_uint),
    ]


class bpf_insn(ctypes.Structure):
    """struct bpf_insn: one classic BPF instruction."""

    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class bpf_program(ctypes.Structure):
    """struct bpf_program."""

    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(bpf_insn))]


class sockaddr(ctypes.Structure):
    """struct sockaddr (Linux: a 16-bit family first)."""

    _fields_ = [("sa_family", ctypes.c_uint16), ("sa_data", ctypes.c_char * 14)]


class pcap_addr(ctypes.Structure):
    """struct pcap_addr (fields declared below: it points to itself)."""


pcap_addr._fields_ = [
    ("next", ctypes.POINTER(pcap_addr)),
    ("addr", ctypes.POINTER(sockaddr)),
    ("netmask", ctypes.POINTER(sockaddr)),
    ("broadaddr", ctypes.POINTER(sockaddr)),
    ("dstaddr", ctypes.POINTER(sockaddr)),
]


class pcap_if(ctypes.Structure):
    """struct pcap_if (pcap_if_t; fields declared below: it points to itself)."""


pcap_if._fields_ = [
    ("next", ctypes.POINTER(pcap_if)),
    ("name", ctypes.c_char_p),
    ("description", ctypes.c_char_p),
    ("addresses", ctypes.POINTER(pcap_addr)),
    ("flags", ctypes.c_uint32),
]

# typedef void (*pcap_handler)(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes);
# Both pointers arrive as plain addresses (c_void_p): ctypes builds no object per packet.
pcap_handler = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

_p = ctypes.c_void_p  # pcap_t * (opaque)
_errbuf = ctypes.c_char_p  # char *errbuf, PCAP_ERRBUF_SIZE bytes
_intpp = ctypes.POINTER(ctypes.POINTER(ctypes.c_int))


def _declare(dll: ctypes.CDLL) -> None:
    """Declare the argtypes/restype of every libpcap function capsvc calls."""
    # const char *pcap_lib_version(void);
    dll.pcap_lib_version.argtypes = []
    dll.pcap_lib_version.restype = ctypes.c_char_p
    # const char *pcap_statustostr(int error);
    dll.pcap_statustostr.argtypes = [ctypes.c_int]
    dll.pcap_statustostr.restype = ctypes.c_char_p
    # char *pcap_geterr(pcap_t *p);
    dll.pcap_geterr.argtypes = [_p]
    dll.pcap_geterr.restype = ctypes.c_char_p
    # pcap_t *pcap_open_dead(int linktype, int snaplen);
    dll.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    dll.pcap_open_dead.restype = _p
    # pcap_t *pcap_open_dead_with_tstamp_precision(int linktype, int snaplen, u_int precision);
    dll.pcap_open_dead_with_tstamp_precision.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint]
    dll.pcap_open_dead_with_tstamp_precision.restype = _p
    # pcap_t *pcap_open_offline_with_tstamp_precision(const char *fname, u_int precision,
    #                                                 char *errbuf);
    dll.pcap_open_offline_with_tstamp_precision.argtypes = [ctypes.c_char_p, ctypes.c_uint, _errbuf]
    dll.pcap_open_offline_with_tstamp_precision.restype = _p
    # pcap_t *pcap_fopen_offline_with_tstamp_precision(FILE *fp, u_int precision, char *errbuf);
    dll.pcap_fopen_offline_with_tstamp_precision.argtypes = [_p, ctypes.c_uint, _errbuf]
    dll.pcap_fopen_offline_with_tstamp_precision.restype = _p
    # pcap_t *pcap_create(const char *source, char *errbuf);
    dll.pcap_create.argtypes = [ctypes.c_char_p, _errbuf]
    dll.pcap_create.restype = _p
    # int pcap_activate(pcap_t *p);
    dll.pcap_activate.argtypes = [_p]
    dll.pcap_activate.restype = ctypes.c_int
    # void pcap_close(pcap_t *p);
    dll.pcap_close.argtypes = [_p]
    dll.pcap_close.restype = None
    # int pcap_set_snaplen(pcap_t *p, int snaplen);
    # int pcap_set_promisc(pcap_t *p, int promisc);
    # int pcap_set_timeout(pcap_t *p, int to_ms);
    # int pcap_set_buffer_size(pcap_t *p, int buffer_size);
    # int pcap_set_immediate_mode(pcap_t *p, int immediate_mode);
    # int pcap_set_rfmon(pcap_t *p, int rfmon);
    # int pcap_set_tstamp_type(pcap_t *p, int tstamp_type);
    # int pcap_set_tstamp_precision(pcap_t *p, int tstamp_precision);
    for name in (
        "pcap_set_snaplen",
        "pcap_set_promisc",
        "pcap_set_timeout",
        "pcap_set_buffer_size",
        "pcap_set_immediate_mode",
        "pcap_set_rfmon",
        "pcap_set_tstamp_type",
        "pcap_set_tstamp_precision",
    ):
        fn = getattr(dll, name)
        fn.argtypes = [_p, ctypes.c_int]
        fn.restype = ctypes.c_int
    # int pcap_can_set_rfmon(pcap_t *p);
    # int pcap_datalink(pcap_t *p);
    # int pcap_snapshot(pcap_t *p);
    # int pcap_get_tstamp_precision(pcap_t *p);
    # int pcap_get_selectable_fd(pcap_t *p);
    for name in (
        "pcap_can_set_rfmon",
        "pcap_datalink",
        "pcap_snapshot",
        "pcap_get_tstamp_precision",
        "pcap_get_selectable_fd",
    ):
        fn = getattr(dll, name)
        fn.argtypes = [_p]
        fn.restype = ctypes.c_int
    # int pcap_list_tstamp_types(pcap_t *p, int **tstamp_typesp);
    dll.pcap_list_tstamp_types.argtypes = [_p, _intpp]
    dll.pcap_list_tstamp_types.restype = ctypes.c_int
    # void pcap_free_tstamp_types(int *tstamp_types);
    dll.pcap_free_tstamp_types.argtypes = [ctypes.POINTER(ctypes.c_int)]
    dll.pcap_free_tstamp_types.restype = None
    # int pcap_tstamp_type_name_to_val(const char *name);
    dll.pcap_tstamp_type_name_to_val.argtypes = [ctypes.c_char_p]
    dll.pcap_tstamp_type_name_to_val.restype = ctypes.c_int
    # const char *pcap_tstamp_type_val_to_name(int tstamp_type);
    dll.pcap_tstamp_type_val_to_name.argtypes = [ctypes.c_int]
    dll.pcap_tstamp_type_val_to_name.restype = ctypes.c_char_p
    # int pcap_list_datalinks(pcap_t *p, int **dlt_buf);
    dll.pcap_list_datalinks.argtypes = [_p, _intpp]
    dll.pcap_list_datalinks.restype = ctypes.c_int
    # void pcap_free_datalinks(int *dlt_list);
    dll.pcap_free_datalinks.argtypes = [ctypes.POINTER(ctypes.c_int)]
    dll.pcap_free_datalinks.restype = None
    # int pcap_set_datalink(pcap_t *p, int dlt);
    dll.pcap_set_datalink.argtypes = [_p, ctypes.c_int]
    dll.pcap_set_datalink.restype = ctypes.c_int
    # int pcap_datalink_name_to_val(const char *name);
    dll.pcap_datalink_name_to_val.argtypes = [ctypes.c_char_p]
    dll.pcap_datalink_name_to_val.restype = ctypes.c_int
    # const char *pcap_datalink_val_to_name(int dlt);
    # const char *pcap_datalink_val_to_description(int dlt);
    for name in ("pcap_datalink_val_to_name", "pcap_datalink_val_to_description"):
        fn = getattr(dll, name)
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_char_p
    # int pcap_compile(pcap_t *p, struct bpf_program *fp, const char *str, int optimize,
    #                  bpf_u_int32 netmask);
    dll.pcap_compile.argtypes = [
        _p,
        ctypes.POINTER(bpf_program),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    ]
    dll.pcap_compile.restype = ctypes.c_int
    # void pcap_freecode(struct bpf_program *fp);
    dll.pcap_freecode.argtypes = [ctypes.POINTER(bpf_program)]
    dll.pcap_freecode.restype = None
    # int pcap_setfilter(pcap_t *p, struct bpf_program *fp);
    dll.pcap_setfilter.argtypes = [_p, ctypes.POINTER(bpf_program)]
    dll.pcap_setfilter.restype = ctypes.c_int
    # int pcap_offline_filter(const struct bpf_program *fp, const struct pcap_pkthdr *h,
    #                         const u_char *pkt);
    dll.pcap_offline_filter.argtypes = [
        ctypes.POINTER(bpf_program),
        ctypes.POINTER(pcap_pkthdr),
        ctypes.c_char_p,
    ]
    dll.pcap_offline_filter.restype = ctypes.c_int
    # u_int bpf_filter(const struct bpf_insn *pc, const u_char *pkt, u_int wirelen, u_int buflen);
    dll.bpf_filter.argtypes = [
        ctypes.POINTER(bpf_insn),
        ctypes.c_char_p,
        ctypes.c_uint,
        ctypes.c_uint,
    ]
    dll.bpf_filter.restype = ctypes.c_uint
    # int pcap_setdirection(pcap_t *p, pcap_direction_t d);
    dll.pcap_setdirection.argtypes = [_p, ctypes.c_int]
    dll.pcap_setdirection.restype = ctypes.c_int
    # int pcap_next_ex(pcap_t *p, struct pcap_pkthdr **pkt_header, const u_char **pkt_data);
    dll.pcap_next_ex.argtypes = [
        _p,
        ctypes.POINTER(ctypes.POINTER(pcap_pkthdr)),
        ctypes.POINTER(ctypes.c_void_p),
    ]
    dll.pcap_next_ex.restype = ctypes.c_int
    # int pcap_dispatch(pcap_t *p, int cnt, pcap_handler callback, u_char *user);
    dll.pcap_dispatch.argtypes = [_p, ctypes.c_int, pcap_handler, ctypes.c_void_p]
    dll.pcap_dispatch.restype = ctypes.c_int
    # int pcap_setnonblock(pcap_t *p, int nonblock, char *errbuf);
    dll.pcap_setnonblock.argtypes = [_p, ctypes.c_int, _errbuf]
    dll.pcap_setnonblock.restype = ctypes.c_int
    # int pcap_stats(pcap_t *p, struct pcap_stat *ps);
    dll.pcap_stats.argtypes = [_p, ctypes.POINTER(pcap_stat)]
    dll.pcap_stats.restype = ctypes.c_int
    # int pcap_sendpacket(pcap_t *p, const u_char *buf, int size);
    dll.pcap_sendpacket.argtypes = [_p, ctypes.c_char_p, ctypes.c_int]
    dll.pcap_sendpacket.restype = ctypes.c_int
    # int pcap_findalldevs(pcap_if_t **alldevsp, char *errbuf);
    dll.pcap_findalldevs.argtypes = [ctypes.POINTER(ctypes.POINTER(pcap_if)), _errbuf]
    dll.pcap_findalldevs.restype = ctypes.c_int
    # void pcap_freealldevs(pcap_if_t *alldevs);
    dll.pcap_freealldevs.argtypes = [ctypes.POINTER(pcap_if)]
    dll.pcap_freealldevs.restype = None


def load(names: Sequence[str] | None = None) -> ctypes.CDLL:
    """Load libpcap and declare its functions (uncached; ``lib()`` caches the default).

    Args:
        names: library names or paths tried in order; None means the one named by the
            environment variable CAPSVC_LIBPCAP when set (e.g. PF_RING's own libpcap), else
            ``find_library("pcap")``, then libpcap.so.1, libpcap.so.0.8 and libpcap.so.

    Returns:
        The loaded library with argtypes/restype declared.

    Raises:
        BackendUnavailableError: no candidate loads, or it lacks the required symbol; the
            message says which package to install.
    """
    if names is None and os.environ.get(LIBRARY_ENV):
        names = (os.environ[LIBRARY_ENV],)
    if names is None:
        found = ctypes.util.find_library("pcap")
        names = ((found,) if found else ()) + _DEFAULT_NAMES
    errors: list[str] = []
    for name in names:
        try:
            dll = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
            continue
        if not hasattr(dll, REQUIRED_SYMBOL):
            errors.append(f"{name}: no {REQUIRED_SYMBOL} (libpcap older than 1.5)")
            continue
        _declare(dll)
        return dll
    raise BackendUnavailableError(f"{INSTALL_HINT} ({'; '.join(errors) or 'no candidates'})")


@functools.cache
def lib() -> ctypes.CDLL:
    """Return the process-wide libpcap, loading it on the first call.

    Raises:
        BackendUnavailableError: libpcap is not installed (the message names the package).
    """
    return load()


@functools.cache
def lib_holding_gil() -> ctypes.PyDLL:
    """Return libpcap loaded as a PyDLL with ``pcap_dispatch`` declared.

    Its calls keep the GIL: right for a non-blocking ``pcap_dispatch`` whose callback runs
    Python per packet, where releasing and re-taking the GIL around every packet costs more
    than the call itself.
    """
    dll = ctypes.PyDLL(lib()._name)
    # int pcap_dispatch(pcap_t *p, int cnt, pcap_handler callback, u_char *user);
    dll.pcap_dispatch.argtypes = [_p, ctypes.c_int, pcap_handler, ctypes.c_void_p]
    dll.pcap_dispatch.restype = ctypes.c_int
    return dll


@functools.cache
def address_space() -> memoryview:
    """Return a read-only byte view of the whole address space, indexed by address.

    Slicing it copies packet bytes and headers at addresses libpcap hands to a callback
    without a foreign call per packet (``ctypes.string_at`` is one). Only addresses libpcap
    gave out, for as long as libpcap says they are valid, may be read through it.
    """
    return memoryview((ctypes.c_char * (1 << 62)).from_address(0)).cast("B").toreadonly()


@functools.cache
def libc() -> ctypes.CDLL:
    """Return the C library with ``fdopen``/``fclose`` declared (for ``pcap_fopen_offline``)."""
    dll = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    # FILE *fdopen(int fd, const char *mode);
    dll.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    dll.fdopen.restype = ctypes.c_void_p
    # int fclose(FILE *stream);
    dll.fclose.argtypes = [ctypes.c_void_p]
    dll.fclose.restype = ctypes.c_int
    return dll
