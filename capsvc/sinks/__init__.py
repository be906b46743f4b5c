"""Sinks: where a Session's packets go (pcap, pcapng, text log, stats, rotating files, the flight
recorder, conversations and I/O series, yours).

Public names are imported when first looked up.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._base import SessionAware, Sink
    from ._conversations import Conversation, ConversationSink, ConversationSnapshot, Endpoint
    from ._pcap import PcapWriter
    from ._pcapng import PcapNgWriter
    from ._recorder import DumpInfo, FlightRecorder, RecorderState, RecorderStats
    from ._rotate import RotatingWriter
    from ._series import SeriesSink, SeriesSnapshot
    from ._stats import StatsSink
    from ._text import TextOptions, TextWriter
    from ._tshark import (
        PortEndpoint,
        format_conversations,
        format_endpoints,
        format_io_stat,
        format_port_endpoints,
        parse_table_name,
        port_endpoints,
    )

_WHERE = {
    "Conversation": "._conversations",
    "ConversationSink": "._conversations",
    "ConversationSnapshot": "._conversations",
    "DumpInfo": "._recorder",
    "Endpoint": "._conversations",
    "FlightRecorder": "._recorder",
    "PcapNgWriter": "._pcapng",
    "PcapWriter": "._pcap",
    "PortEndpoint": "._tshark",
    "RecorderState": "._recorder",
    "RecorderStats": "._recorder",
    "RotatingWriter": "._rotate",
    "SeriesSink": "._series",
    "SeriesSnapshot": "._series",
    "SessionAware": "._base",
    "Sink": "._base",
    "StatsSink": "._stats",
    "TextOptions": "._text",
    "TextWriter": "._text",
    "format_conversations": "._tshark",
    "format_endpoints": "._tshark",
    "format_io_stat": "._tshark",
    "format_port_endpoints": "._tshark",
    "parse_table_name": "._tshark",
    "port_endpoints": "._tshark",
}

__all__ = [
    "Conversation",
    "ConversationSink",
    "ConversationSnapshot",
    "DumpInfo",
    "Endpoint",
    "FlightRecorder",
    "PcapNgWriter",
    "PcapWriter",
    "PortEndpoint",
    "RecorderState",
    "RecorderStats",
    "RotatingWriter",
    "SeriesSink",
    "SeriesSnapshot",
    "SessionAware",
    "Sink",
    "StatsSink",
    "TextOptions",
    "TextWriter",
    "format_conversations",
    "format_endpoints",
    "format_io_stat",
    "format_port_endpoints",
    "parse_table_name",
    "port_endpoints",
]
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
