"""Sinks: where a Session's packets go (pcap, pcapng, text log, stats, rotating files, yours).

Public names are imported when first looked up.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._base import SessionAware, Sink
    from ._pcap import PcapWriter
    from ._pcapng import PcapNgWriter
    from ._rotate import RotatingWriter
    from ._stats import StatsSink
    from ._text import TextWriter

_WHERE = {
    "PcapNgWriter": "._pcapng",
    "PcapWriter": "._pcap",
    "RotatingWriter": "._rotate",
    "SessionAware": "._base",
    "Sink": "._base",
    "StatsSink": "._stats",
    "TextWriter": "._text",
}

__all__ = [
    "PcapNgWriter",
    "PcapWriter",
    "RotatingWriter",
    "SessionAware",
    "Sink",
    "StatsSink",
    "TextWriter",
]
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
