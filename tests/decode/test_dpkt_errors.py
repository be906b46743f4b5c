"""Decoders that read a rare protocol with dpkt say "malformed" for what dpkt cannot parse."""

from __future__ import annotations

from capsvc.decode._routing import bgp_messages

# A BGP UPDATE (19-byte header, 29-byte body) whose fourth withdrawn route claims a 41-bit
# IPv4 prefix: dpkt's route class is left half-built and raises AttributeError, not its Error.
_UPDATE = bytes.fromhex(
    "ffffffffffffffffffffffffffffffff003002"  # marker, length 48, UPDATE
    "0019"  # withdrawn routes: 25 bytes
    "2005050505"
    "2001010101"
    "2002020202"
    "2903030303"
    "2004040404"
    "0000"  # no path attributes
)


def test_update_that_dpkt_half_parses_is_malformed_not_an_exception() -> None:
    """Mutation: DPKT_PARSE_ERRORS without AttributeError makes bgp_messages raise here."""
    found = bgp_messages(_UPDATE, 0, len(_UPDATE))
    assert found is not None
    messages, _cut = found
    assert [(m.type, m.length, m.malformed) for m in messages] == [(2, 48, True)]
