"""Sinks: where a Session's packets go (pcap, pcapng, text log, stats, your own)."""

from ._base import SessionAware, Sink
from ._pcap import PcapWriter

__all__ = ["PcapWriter", "SessionAware", "Sink"]
