"""Sources: what feeds a Session (capture files, AF_PACKET, libpcap, PF_RING)."""

from ._base import Source, SourceStats

__all__ = ["Source", "SourceStats"]
