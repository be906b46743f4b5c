"""AF_PACKET capture: a TPACKET_V3 mmap ring read a block at a time by the event loop.

``_tpacket`` is pure (ring geometry, block and header parsing, the BPF prefixes the socket needs);
``_socket`` opens, configures and maps the socket; ``_source`` is the Session source built on them.
"""

from ._source import AfPacketSource

__all__ = ["AfPacketSource"]
