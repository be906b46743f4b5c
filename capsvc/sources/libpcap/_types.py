"""The value types, errors, BPF programs and module-level functions of the libpcap binding.

Rule: a libpcap status code becomes an exception only through ``_check``/``_status_error`` here,
and the exception carries libpcap's own text (pcap_statustostr, pcap_geterr, the errbuf).
"""

from __future__ import annotations

import ctypes
import enum
import ipaddress
import threading
from collections.abc import Sequence
from typing import NamedTuple

from ..._bpf import BPF_MAXINSNS, BpfInstruction
from ..._errors import (
    CaptureError,
    CaptureFileError,
    NoSuchInterfaceError,
    OptionError,
    PermissionNeededError,
)
from . import _ffi as ffi

__all__ = [
    "BLOCK_FOREVER",
    "BPF",
    "ERR_ACTIVATED",
    "ERR_BREAK",
    "ERR_CANNOT_SET_TIMESTAMP_TYPE",
    "ERR_GENERIC",
    "ERR_INTERFACE_NOT_UP",
    "ERR_NOT_ACTIVE",
    "ERR_NOT_RFMON",
    "ERR_NO_SUCH_DEVICE",
    "ERR_PERMISSION_DENIED",
    "ERR_PROMISC_PERMISSION_DENIED",
    "ERR_RFMON_NOT_SUPPORTED",
    "ERR_TIMESTAMP_PRECISION_NOT_SUPPORTED",
    "MAX_BPF_INSTRUCTIONS",
    "WARNING_GENERIC",
    "WARNING_PROMISC_NOT_SUPPORTED",
    "WARNING_TIMESTAMP_TYPE_NOT_SUPPORTED",
    "BPFInstruction",
    "CannotSetRFMonError",
    "CaptureInfo",
    "Datalink",
    "Interface",
    "InterfaceAddress",
    "LibpcapError",
    "LibpcapFileError",
    "LibpcapPermissionError",
    "NextError",
    "NoMorePacketsError",
    "NoSuchDeviceError",
    "Stats",
    "TimeoutExpiredError",
    "TimestampSource",
    "compile_bpf_filter",
    "datalink_name_to_val",
    "datalink_val_to_description",
    "datalink_val_to_name",
    "find_all_devs",
    "new_bpf",
    "new_bpf_instruction_filter",
    "timestamp_source_from_string",
    "version",
]

#: A read timeout meaning "wait as long as it takes, but deliver each packet at once".
BLOCK_FOREVER = -1.0

# libpcap's status codes (pcap/pcap.h PCAP_ERROR_* and PCAP_WARNING_*) by name; a LibpcapError's
# ``code`` is one of them. ERR_NOT_ACTIVE is PCAP_ERROR_NOT_ACTIVATED.
ERR_GENERIC = ffi.PCAP_ERROR
ERR_BREAK = ffi.PCAP_ERROR_BREAK
ERR_NOT_ACTIVE = ffi.PCAP_ERROR_NOT_ACTIVATED
ERR_ACTIVATED = ffi.PCAP_ERROR_ACTIVATED
ERR_NO_SUCH_DEVICE = ffi.PCAP_ERROR_NO_SUCH_DEVICE
ERR_RFMON_NOT_SUPPORTED = ffi.PCAP_ERROR_RFMON_NOTSUP
ERR_NOT_RFMON = ffi.PCAP_ERROR_NOT_RFMON
ERR_PERMISSION_DENIED = ffi.PCAP_ERROR_PERM_DENIED
ERR_INTERFACE_NOT_UP = ffi.PCAP_ERROR_IFACE_NOT_UP
ERR_CANNOT_SET_TIMESTAMP_TYPE = ffi.PCAP_ERROR_CANTSET_TSTAMP_TYPE
ERR_PROMISC_PERMISSION_DENIED = ffi.PCAP_ERROR_PROMISC_PERM_DENIED
ERR_TIMESTAMP_PRECISION_NOT_SUPPORTED = ffi.PCAP_ERROR_TSTAMP_PRECISION_NOTSUP
WARNING_GENERIC = ffi.PCAP_WARNING
WARNING_PROMISC_NOT_SUPPORTED = ffi.PCAP_WARNING_PROMISC_NOTSUP
WARNING_TIMESTAMP_TYPE_NOT_SUPPORTED = ffi.PCAP_WARNING_TSTAMP_TYPE_NOTSUP
#: The most instructions a classic BPF program may have (BPF_MAXINSNS).
MAX_BPF_INSTRUCTIONS = BPF_MAXINSNS

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
# pcap_compile was not thread-safe before libpcap 1.8; one compile at a time costs nothing.
_compile_lock = threading.Lock()


# -- errors -----------------------------------------------------------------------------------


class LibpcapError(CaptureError):
    """libpcap failed; the message is libpcap's own text.

    Attributes:
        code: the libpcap status code (one of the ``ERR_`` constants, PCAP_ERROR_...), 0 when
            there was none.
        next_error: the gopacket NextError of a failed read (READ_ERROR unless a subclass says
            otherwise).
    """

    code = 0
    next_error = -1


class NextError(enum.IntEnum):
    """gopacket's NextError: what pcap_next_ex returned, and the exception capsvc raises for it.

    ============================  ====  ================================================
    gopacket                      code  capsvc raises
    ============================  ====  ================================================
    NextErrorOk                      1  nothing: the packet is returned
    NextErrorTimeoutExpired          0  TimeoutExpiredError (a live handle's timeout)
    NextErrorReadError              -1  LibpcapError with libpcap's message
    NextErrorNoMorePackets          -2  NoMorePacketsError (an EOFError): end of file
    NextErrorNotActivated           -3  LibpcapError (code ERR_NOT_ACTIVE)
    ============================  ====  ================================================

    Each exception carries its value in ``next_error``.
    """

    OK = 1
    TIMEOUT_EXPIRED = 0
    READ_ERROR = -1
    NO_MORE_PACKETS = -2
    NOT_ACTIVATED = -3


class TimeoutExpiredError(LibpcapError):
    """No packet came within a live handle's read timeout (gopacket's NextErrorTimeoutExpired)."""

    next_error = NextError.TIMEOUT_EXPIRED


class NoMorePacketsError(LibpcapError, EOFError):
    """A capture file is at its end (gopacket's NextErrorNoMorePackets; an EOFError too)."""

    next_error = NextError.NO_MORE_PACKETS


class CannotSetRFMonError(LibpcapError):
    """The device cannot be put in monitor mode."""


class NoSuchDeviceError(NoSuchInterfaceError, LibpcapError):
    """There is no such capture device (gopacket's name; a ``capsvc.NoSuchInterfaceError``).

    ``str()`` is libpcap's own message; ``interface`` is empty when libpcap did not say which.
    """

    def __init__(self, message: str, interface: str = "") -> None:
        self.interface = interface
        CaptureError.__init__(self, message)


class LibpcapPermissionError(PermissionNeededError, LibpcapError):
    """Capturing on the device needs a privilege the process lacks."""


class LibpcapFileError(CaptureFileError, LibpcapError):
    """libpcap cannot read the file (missing, unreadable, or no capture file it knows)."""


_ERROR_CLASSES: dict[int, type[LibpcapError]] = {
    ffi.PCAP_ERROR_NO_SUCH_DEVICE: NoSuchDeviceError,
    ffi.PCAP_ERROR_PERM_DENIED: LibpcapPermissionError,
    ffi.PCAP_ERROR_PROMISC_PERM_DENIED: LibpcapPermissionError,
    ffi.PCAP_ERROR_RFMON_NOTSUP: CannotSetRFMonError,
}
# Codes after which pcap_geterr holds a message of its own.
_GETERR_CODES = {
    ffi.PCAP_ERROR,
    ffi.PCAP_ERROR_NO_SUCH_DEVICE,
    ffi.PCAP_ERROR_PERM_DENIED,
    ffi.PCAP_ERROR_PROMISC_PERM_DENIED,
}


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace")


def _status_error(p: int | None, code: int, what: str) -> LibpcapError:
    """Build the exception for libpcap status ``code`` returned while doing ``what``."""
    dll = ffi.lib()
    detail = _text(dll.pcap_geterr(p)) if p and code in _GETERR_CODES else ""
    status = "" if code == ffi.PCAP_ERROR and detail else _text(dll.pcap_statustostr(code))
    parts = [status] if status else []
    if detail and detail not in parts:
        parts.append(detail)
    message = f"{what}: " + " - ".join(parts)
    cls = _ERROR_CLASSES.get(code, LibpcapError)
    if cls is LibpcapPermissionError:
        message += " (needs CAP_NET_RAW: run as root or grant the capability)"
    exc = cls(message)
    exc.code = code
    return exc


def _check(p: int | None, rc: int, what: str) -> int:
    """Return ``rc`` when it is no error (>= 0), else raise the matching LibpcapError."""
    if rc < 0:
        raise _status_error(p, rc, what)
    return rc


# -- value types ------------------------------------------------------------------------------


class CaptureInfo(NamedTuple):
    """What libpcap says about one packet (gopacket's CaptureInfo).

    Every field has a default, so ``CaptureInfo(capture_length=60, length=60)`` describes a
    frame to ``BPF.matches`` without a timestamp.

    Attributes:
        timestamp_ns: capture time in nanoseconds since the epoch (default 0).
        capture_length: bytes captured (at most the snaplen; default 0).
        length: bytes on the wire (default 0; never less than ``capture_length`` in a file).
        interface_index: index of a live handle's device, 0 for files and "any" (default 0).
    """

    timestamp_ns: int = 0
    capture_length: int = 0
    length: int = 0
    interface_index: int = 0


class Stats(NamedTuple):
    """pcap_stats counters: received, dropped by the kernel, dropped by the interface."""

    packets_received: int
    packets_dropped: int
    packets_if_dropped: int


#: gopacket's name of a BPF instruction: capsvc's one instruction type, ``BpfInstruction``.
BPFInstruction = BpfInstruction


class Datalink(NamedTuple):
    """A link type: its DLT_ value, name (``EN10MB``) and description (``Ethernet``)."""

    value: int
    name: str
    description: str

    @classmethod
    def of(cls, value: int) -> Datalink:
        """Describe DLT ``value`` with libpcap's names."""
        return cls(value, datalink_val_to_name(value), datalink_val_to_description(value))


class TimestampSource(int):
    """A libpcap time stamp type (PCAP_TSTAMP_...); ``str()`` gives libpcap's name."""

    def __str__(self) -> str:
        return _text(ffi.lib().pcap_tstamp_type_val_to_name(int(self))) or f"tstamp-{int(self)}"


class InterfaceAddress(NamedTuple):
    """One address of an interface; the parts the address family has not are None."""

    ip: _IP
    netmask: _IP | None
    broadaddr: _IP | None
    p2p: _IP | None


class Interface(NamedTuple):
    """A capture device as pcap_findalldevs describes it.

    Attributes:
        name: the device name for open_live.
        description: libpcap's description, often "".
        flags: PCAP_IF_ bits (loopback 1, up 2, running 4, wireless 8, connection status 0x30).
        addresses: its IPv4 and IPv6 addresses.
    """

    name: str
    description: str
    flags: int
    addresses: list[InterfaceAddress]


# -- BPF --------------------------------------------------------------------------------------


class BPF:
    """A compiled classic BPF program, matched against packets in user space.

    The instructions live in Python-owned memory: nothing to close. ``str()`` is the expression
    it was compiled from (gopacket's BPF.String), or a description of an instruction filter.

    Args:
        program: the bpf_program (its instruction array must stay referenced by it).
        expression: the filter expression, "" for a program built from instructions.
    """

    def __init__(self, program: ffi.bpf_program, expression: str = "") -> None:
        self.program = program
        self.expression = expression

    def __str__(self) -> str:
        return self.expression or f"BPF instruction filter ({self.program.bf_len} instructions)"

    def __repr__(self) -> str:
        return f"<BPF {self}>"

    def instructions(self) -> list[BPFInstruction]:
        """Return the program's instructions."""
        ins = self.program.bf_insns
        return [
            BPFInstruction(ins[i].code, ins[i].jt, ins[i].jf, ins[i].k)
            for i in range(self.program.bf_len)
        ]

    def matches(self, ci: CaptureInfo, data: bytes) -> bool:
        """Return True when the program accepts the packet (pcap_offline_filter).

        Args:
            ci: the packet's CaptureInfo (its lengths are what the program sees).
            data: the captured bytes, at least ``ci.capture_length`` of them.
        """
        sec, nsec = divmod(ci.timestamp_ns, 1_000_000_000)
        caplen = min(ci.capture_length, len(data))
        hdr = ffi.pcap_pkthdr(ffi.timeval(sec, nsec // 1000), caplen, ci.length)
        return bool(ffi.lib().pcap_offline_filter(ctypes.byref(self.program), hdr, bytes(data)))


def _owned_program(insns: ctypes.Array[ffi.bpf_insn]) -> ffi.bpf_program:
    program = ffi.bpf_program(len(insns), ctypes.cast(insns, ctypes.POINTER(ffi.bpf_insn)))
    program._insns_keepalive = insns
    return program


def _instructions_program(instructions: Sequence[tuple[int, int, int, int]]) -> ffi.bpf_program:
    """Copy ``(code, jt, jf, k)`` tuples into a Python-owned bpf_program."""
    n = len(instructions)
    if not 0 < n <= MAX_BPF_INSTRUCTIONS:
        raise OptionError(f"a BPF program needs 1 to {MAX_BPF_INSTRUCTIONS} instructions, not {n}")
    insns = (ffi.bpf_insn * n)(*(ffi.bpf_insn(*map(int, ins)) for ins in instructions))
    return _owned_program(insns)


def _compile(p: int, expr: str) -> BPF:
    """Compile ``expr`` for handle ``p`` (optimized, netmask unknown) into a Python-owned BPF."""
    dll = ffi.lib()
    raw = ffi.bpf_program()
    with _compile_lock:
        rc = dll.pcap_compile(p, ctypes.byref(raw), expr.encode(), 1, ffi.PCAP_NETMASK_UNKNOWN)
        if rc < 0:
            detail = _text(dll.pcap_geterr(p))
            exc = LibpcapError(f"bad filter expression {expr!r}: {detail}")
            exc.code = rc
            raise exc
    try:
        insns = (ffi.bpf_insn * raw.bf_len)()
        ctypes.memmove(insns, raw.bf_insns, ctypes.sizeof(insns))
    finally:
        dll.pcap_freecode(ctypes.byref(raw))
    return BPF(_owned_program(insns), expr)


def new_bpf(linktype: int, snaplen: int, expr: str) -> BPF:
    """Compile ``expr`` for a link type and snaplen without a capture handle.

    Args:
        linktype: the DLT_ value (1 for Ethernet).
        snaplen: the snapshot length the program assumes; 0 means 262144.
        expr: a libpcap filter expression.

    Raises:
        LibpcapError: the expression is malformed (libpcap's message).
    """
    dll = ffi.lib()
    p = dll.pcap_open_dead_with_tstamp_precision(
        int(linktype), snaplen or 262144, ffi.PCAP_TSTAMP_PRECISION_NANO
    )
    if not p:
        raise LibpcapError(f"pcap_open_dead failed for link type {linktype}")
    try:
        return _compile(p, expr)
    finally:
        dll.pcap_close(p)


def new_bpf_instruction_filter(instructions: Sequence[tuple[int, int, int, int]]) -> BPF:
    """Build a BPF from ``(code, jt, jf, k)`` tuples (as ``tcpdump -dd`` prints them).

    Raises:
        capsvc.OptionError: no instructions, or more than MAX_BPF_INSTRUCTIONS.
    """
    return BPF(_instructions_program(instructions))


def compile_bpf_filter(linktype: int, snaplen: int, expr: str) -> list[BPFInstruction]:
    """Compile ``expr`` into instructions for a link type and snaplen (see ``new_bpf``)."""
    return new_bpf(linktype, snaplen, expr).instructions()


# -- module functions -------------------------------------------------------------------------


def version() -> str:
    """Return libpcap's version string (pcap_lib_version)."""
    return _text(ffi.lib().pcap_lib_version())


def datalink_name_to_val(name: str) -> int:
    """Return the DLT_ value named ``name`` ("EN10MB", case-insensitive).

    Raises:
        capsvc.OptionError: libpcap knows no such name.
    """
    value = int(ffi.lib().pcap_datalink_name_to_val(name.encode()))
    if value < 0:
        raise OptionError(f"unknown link type name {name!r}")
    return value


def datalink_val_to_name(value: int) -> str:
    """Return libpcap's name of DLT ``value`` ("EN10MB"), "" when unknown."""
    return _text(ffi.lib().pcap_datalink_val_to_name(int(value)))


def datalink_val_to_description(value: int) -> str:
    """Return libpcap's description of DLT ``value`` ("Ethernet"), "" when unknown."""
    return _text(ffi.lib().pcap_datalink_val_to_description(int(value)))


def timestamp_source_from_string(name: str) -> TimestampSource:
    """Return the time stamp type named ``name`` ("host", "adapter", ...), as libpcap names them.

    Raises:
        capsvc.OptionError: libpcap knows no such name (the message lists the names it knows).
    """
    dll = ffi.lib()
    value = int(dll.pcap_tstamp_type_name_to_val(name.encode()))
    if value < 0:
        known = [_text(dll.pcap_tstamp_type_val_to_name(v)) for v in range(8)]
        names = ", ".join(n for n in known if n)
        raise OptionError(f"unknown time stamp source {name!r} (libpcap knows: {names})")
    return TimestampSource(value)


def _sockaddr_ip(sa: ctypes._Pointer[ffi.sockaddr]) -> _IP | None:
    if not sa:
        return None
    family = sa.contents.sa_family
    base = ctypes.addressof(sa.contents)
    if family == ffi.AF_INET:  # sockaddr_in: family, port, 4-byte address
        return ipaddress.IPv4Address(ctypes.string_at(base + 4, 4))
    if family == ffi.AF_INET6:  # sockaddr_in6: family, port, flowinfo, 16-byte address
        return ipaddress.IPv6Address(ctypes.string_at(base + 8, 16))
    return None


def find_all_devs() -> list[Interface]:
    """Return the capture devices (pcap_findalldevs), with their IPv4 and IPv6 addresses.

    Raises:
        LibpcapError: libpcap failed (its message).
    """
    dll = ffi.lib()
    head = ctypes.POINTER(ffi.pcap_if)()
    errbuf = ctypes.create_string_buffer(ffi.PCAP_ERRBUF_SIZE)
    if dll.pcap_findalldevs(ctypes.byref(head), errbuf) < 0:
        raise LibpcapError(f"listing devices: {_text(errbuf.value)}")
    found: list[Interface] = []
    try:
        dev = head
        while dev:
            d = dev.contents
            addresses: list[InterfaceAddress] = []
            addr = d.addresses
            while addr:
                a = addr.contents
                ip = _sockaddr_ip(a.addr)
                if ip is not None:
                    addresses.append(
                        InterfaceAddress(
                            ip,
                            _sockaddr_ip(a.netmask),
                            _sockaddr_ip(a.broadaddr),
                            _sockaddr_ip(a.dstaddr),
                        )
                    )
                addr = a.next
            found.append(Interface(_text(d.name), _text(d.description), d.flags, addresses))
            dev = d.next
    finally:
        if head:
            dll.pcap_freealldevs(head)
    return found
