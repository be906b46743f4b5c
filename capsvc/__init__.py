"""capsvc: asyncio packet capture with sessions, sinks, kernel filters and mmap rings.

``import capsvc`` needs neither libpcap, PF_RING nor root; backends load on first use.
"""

from ._errors import (
    BackendUnavailableError,
    CaptureError,
    CaptureFileError,
    CapsvcError,
    PermissionNeededError,
)
from ._packet import SNAPLEN_DEFAULT, Direction, LinkType, Packet, PacketBatch
from ._session import Matcher, Session, Stats
from .sources._base import Source, SourceStats

__all__ = [
    "SNAPLEN_DEFAULT",
    "BackendUnavailableError",
    "CaptureError",
    "CaptureFileError",
    "CapsvcError",
    "Direction",
    "LinkType",
    "Matcher",
    "Packet",
    "PacketBatch",
    "PermissionNeededError",
    "Session",
    "Source",
    "SourceStats",
    "Stats",
]

__version__ = "0.1.0"
