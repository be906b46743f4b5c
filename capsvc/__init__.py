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
        ConfigError,
        DecodeError,
        FilterCompileError,
        FilterError,
        FilterSyntaxError,
        NoSuchInterfaceError,
        OptionError,
        PathOutsideError,
        PermissionNeededError,
    )
    from ._packet import SNAPLEN_DEFAULT, Direction, LinkType, Matcher, Packet, PacketBatch, Stats
    from ._session import Session
    from ._subscriber import BatchStream, PacketStream, SubscriberStats
    from .service import CaptureService, ServiceConfig, load_config
    from .sources._base import Source, SourceStats

_ERRORS = (
    "BackendUnavailableError",
    "CapsvcError",
    "CaptureError",
    "CaptureFileError",
    "ConfigError",
    "DecodeError",
    "FilterCompileError",
    "FilterError",
    "FilterSyntaxError",
    "NoSuchInterfaceError",
    "OptionError",
    "PathOutsideError",
    "PermissionNeededError",
)
_WHERE = {
    **dict.fromkeys(_ERRORS, "._errors"),
    **dict.fromkeys(
        ("SNAPLEN_DEFAULT", "Direction", "LinkType", "Matcher", "Packet", "PacketBatch", "Stats"),
        "._packet",
    ),
    "Session": "._session",
    "BatchStream": "._subscriber",
    "PacketStream": "._subscriber",
    "SubscriberStats": "._subscriber",
    "CaptureService": ".service",
    "ServiceConfig": ".service",
    "load_config": ".service",
    "Source": ".sources._base",
    "SourceStats": ".sources._base",
}

__all__ = [
    "SNAPLEN_DEFAULT",
    "BackendUnavailableError",
    "BatchStream",
    "CapsvcError",
    "CaptureError",
    "CaptureFileError",
    "CaptureService",
    "ConfigError",
    "DecodeError",
    "Direction",
    "FilterCompileError",
    "FilterError",
    "FilterSyntaxError",
    "LinkType",
    "Matcher",
    "NoSuchInterfaceError",
    "OptionError",
    "Packet",
    "PacketBatch",
    "PacketStream",
    "PathOutsideError",
    "PermissionNeededError",
    "ServiceConfig",
    "Session",
    "Source",
    "SourceStats",
    "Stats",
    "SubscriberStats",
    "load_config",
]
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
__version__ = "0.1.0"
