"""What dpkt raises on bytes it cannot parse, for the decoders that read a rare protocol with it.

dpkt's own ``dpkt.Error`` family comes on top of these (dpkt is imported on first use, so it is
not named here). The others leak from inside its parsers on malformed input: ``struct.error`` and
slicing errors, and an ``AttributeError`` from a header class unpacking bytes too short for it
(a BGP UPDATE whose attribute lengths run past the message).
"""

from __future__ import annotations

import struct

__all__ = ["DPKT_PARSE_ERRORS"]

DPKT_PARSE_ERRORS: tuple[type[Exception], ...] = (
    struct.error,
    IndexError,
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
)
