"""libpcap through ctypes, with the API of gopacket's ``pcap`` package in Python spelling.

Live captures (``open_live``, ``InactiveHandle``), capture files (``open_offline``,
``open_offline_file``), libpcap's filter compiler (``new_bpf``, ``compile_bpf_filter``) and device
listing (``find_all_devs``). libpcap is loaded on first use: importing this module works without
it, and the first call raises ``capsvc.BackendUnavailableError`` naming the package to install.

Read timeouts are seconds: positive waits that long and raises ``TimeoutExpiredError``; 0 never
waits; ``BLOCK_FOREVER`` (negative) waits as long as it takes. Directions are capsvc's
``Direction`` (UNKNOWN means both). Time stamps are integer nanoseconds.

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
    MAX_BPF_INSTRUCTIONS,
    BPFInstruction,
    CannotSetRFMonError,
    CaptureInfo,
    Datalink,
    Interface,
    InterfaceAddress,
    LibpcapError,
    LibpcapFileError,
    LibpcapPermissionError,
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
    "MAX_BPF_INSTRUCTIONS",
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
