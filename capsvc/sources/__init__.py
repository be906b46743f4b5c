"""Sources: what feeds a Session (capture files, AF_PACKET, libpcap, PF_RING).

Importing this package loads no capture library: public names are imported when first looked
up, and libpcap and libpfring are loaded when a handle or ring is first opened, so
``import capsvc`` works without them and without root.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._base import Source, SourceStats
    from ._open import open_live_source
    from .afpacket import AfPacketSource
    from .capfile import CaptureFile, PcapFileSource, read_capture
    from .libpcap import LibpcapSource
    from .pfring import PfRingSource

_WHERE = {
    "AfPacketSource": ".afpacket",
    "CaptureFile": ".capfile",
    "LibpcapSource": ".libpcap",
    "PcapFileSource": ".capfile",
    "PfRingSource": ".pfring",
    "Source": "._base",
    "SourceStats": "._base",
    "open_live_source": "._open",
    "read_capture": ".capfile",
}

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
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
