"""libpcap through ctypes, with the API of gopacket's ``pcap`` package in Python spelling.

Live captures (``open_live``, ``InactiveHandle``), capture files (``open_offline``,
``open_offline_file``), libpcap's filter compiler (``new_bpf``, ``compile_bpf_filter``) and device
listing (``find_all_devs``). libpcap is loaded on first use: importing this module works without
it, and the first call raises ``capsvc.BackendUnavailableError`` naming the package to install.

Read timeouts are seconds: positive waits that long and raises ``TimeoutExpiredError``; 0 (no
timeout, as in libpcap and gopacket) and ``BLOCK_FOREVER`` (negative) wait as long as it takes.
The end of a capture file raises ``NoMorePacketsError`` (an ``EOFError``). ``NextError`` maps
gopacket's NextError values to these exceptions; the ``ERR_`` and ``WARNING_`` constants name
libpcap's status codes (a ``LibpcapError``'s ``code``). Directions are capsvc's ``Direction``
(UNKNOWN means both). Time stamps are integer nanoseconds.

Example::

    from capsvc.sources import libpcap

    with libpcap.open_offline("trace.pcap") as handle:
        syn = handle.new_bpf("tcp[tcpflags] & tcp-syn != 0")
        for data, ci in handle:
            if syn.matches(ci, data):
                print(ci.timestamp_ns, len(data))
"""

from ._handle import Handle, open_offline, open_offline_file
from ._live import InactiveHandle, open_live
from ._source import LibpcapSource
from ._types import (
    BLOCK_FOREVER,
    BPF,
    ERR_ACTIVATED,
    ERR_BREAK,
    ERR_CANNOT_SET_TIMESTAMP_TYPE,
    ERR_GENERIC,
    ERR_INTERFACE_NOT_UP,
    ERR_NO_SUCH_DEVICE,
    ERR_NOT_ACTIVE,
    ERR_NOT_RFMON,
    ERR_PERMISSION_DENIED,
    ERR_PROMISC_PERMISSION_DENIED,
    ERR_RFMON_NOT_SUPPORTED,
    ERR_TIMESTAMP_PRECISION_NOT_SUPPORTED,
    MAX_BPF_INSTRUCTIONS,
    WARNING_GENERIC,
    WARNING_PROMISC_NOT_SUPPORTED,
    WARNING_TIMESTAMP_TYPE_NOT_SUPPORTED,
    BPFInstruction,
    CannotSetRFMonError,
    CaptureInfo,
    Datalink,
    Interface,
    InterfaceAddress,
    LibpcapError,
    LibpcapFileError,
    LibpcapPermissionError,
    NextError,
    NoMorePacketsError,
    NoSuchDeviceError,
    Stats,
    TimeoutExpiredError,
    TimestampSource,
    compile_bpf_filter,
    datalink_name_to_val,
    datalink_val_to_description,
    datalink_val_to_name,
    find_all_devs,
    new_bpf,
    new_bpf_instruction_filter,
    timestamp_source_from_string,
    version,
)

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
    "Handle",
    "InactiveHandle",
    "Interface",
    "InterfaceAddress",
    "LibpcapError",
    "LibpcapFileError",
    "LibpcapPermissionError",
    "LibpcapSource",
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
    "open_live",
    "open_offline",
    "open_offline_file",
    "timestamp_source_from_string",
    "version",
]
