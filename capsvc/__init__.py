"""capsvc: asyncio packet capture with sessions, sinks, kernel filters and mmap rings.

``import capsvc`` needs neither libpcap, PF_RING nor root; backends load on first use, and the
public names below are imported when first looked up.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._errors import (
        BackendUnavailableError,
        CapsvcError,
        CaptureError,
        CaptureFileError,
        PermissionNeededError,
    )
    from ._packet import SNAPLEN_DEFAULT, Direction, LinkType, Matcher, Packet, PacketBatch
    from ._session import Session, Stats
    from .service import CaptureService, ConfigError, ServiceConfig, load_config
    from .sources._base import Source, SourceStats

_WHERE = {
    "BackendUnavailableError": "._errors",
    "CapsvcError": "._errors",
    "CaptureError": "._errors",
    "CaptureFileError": "._errors",
    "PermissionNeededError": "._errors",
    "SNAPLEN_DEFAULT": "._packet",
    "Direction": "._packet",
    "LinkType": "._packet",
    "Matcher": "._packet",
    "Packet": "._packet",
    "PacketBatch": "._packet",
    "Session": "._session",
    "Stats": "._session",
    "CaptureService": ".service",
    "ConfigError": ".service",
    "ServiceConfig": ".service",
    "load_config": ".service",
    "Source": ".sources._base",
    "SourceStats": ".sources._base",
}

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
__getattr__ = lazy_exports(__name__, globals(), _WHERE)
__version__ = "0.1.0"
