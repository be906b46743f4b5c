"""Sources: what feeds a Session (capture files, AF_PACKET, libpcap, PF_RING).

Importing this package loads no capture library: libpcap and libpfring are loaded when a handle
or ring is first opened, so ``import capsvc`` works without them and without root.
"""

from ._afpacket import AfPacketSource
from ._base import Source, SourceStats
from ._libpcap_source import LibpcapSource
from ._open import open_live_source
from ._pcapfile import CaptureFile, PcapFileSource, read_capture
from .pfring import PfRingSource

__all__ = [
    "AfPacketSource",
    "CaptureFile",
    "LibpcapSource",
    "PcapFileSource",
    "PfRingSource",
    "Source",
    "SourceStats",
    "open_live_source",
    "read_capture",
]
