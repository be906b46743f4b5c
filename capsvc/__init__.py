"""capsvc: asyncio packet capture with sessions, sinks, kernel filters and mmap rings.

``import capsvc`` needs neither libpcap, PF_RING nor root; backends load on first use.
"""

from ._errors import (
    BackendUnavailableError,
    CapsvcError,
    CaptureError,
    CaptureFileError,
    PermissionNeededError,
)
from ._packet import SNAPLEN_DEFAULT, Direction, LinkType, Packet, PacketBatch
from ._session import Matcher, Session, Stats
from .service import CaptureService, ConfigError, ServiceConfig, load_config
from .sources._base import Source, SourceStats

__all__ = [
    "SNAPLEN_DEFAULT",
    "BackendUnavailableError",
    "CapsvcError",
    "CaptureError",
    "CaptureFileError",
    "CaptureService",
    "ConfigError",
    "Direction",
    "LinkType",
    "Matcher",
    "Packet",
    "PacketBatch",
    "PermissionNeededError",
    "ServiceConfig",
    "Session",
    "Source",
    "SourceStats",
    "Stats",
    "load_config",
]

__version__ = "0.1.0"
