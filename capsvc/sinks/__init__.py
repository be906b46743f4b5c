"""Sinks: where a Session's packets go (pcap, pcapng, text log, stats, your own)."""

from ._base import SessionAware, Sink
from ._pcap import PcapWriter
from ._pcapng import PcapNgWriter
from ._rotate import RotatingWriter
from ._stats import StatsSink
from ._text import TextWriter

__all__ = [
    "PcapNgWriter",
    "PcapWriter",
    "RotatingWriter",
    "SessionAware",
    "Sink",
    "StatsSink",
    "TextWriter",
]
