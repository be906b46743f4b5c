"""Whether frames are of the link type they were offered as, and which one they look like.

Pure module (no IO), for the Session's one-time check of the first frames offered to it with a
matcher (a filter written for Ethernet frames never matches raw IP, and the other way round,
without a word). The rule it keeps: a frame is "of" a link type when that link type's decoder
(``_link``) finds IPv4, IPv6 or ARP in it, with the IP version the header says; a warning is
only worth giving when most frames are not, and either another link type explains most of
them or the link type carries nothing but IP (RAW, IPV4, IPV6).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._packet import LinkType, MatchFunction
from ._const import ETHERTYPE_ARP, ETHERTYPE_IP, ETHERTYPE_IPV6
from ._link import has_decoder, link_decoder

__all__ = ["PROBE_BYTES", "PROBE_FRAMES", "linktype_warning", "probing"]

#: Frames the check looks at: the first ones offered.
PROBE_FRAMES = 12
#: Bytes kept of each (enough for any link header and the IP version after it).
PROBE_BYTES = 96

#: Link types a frame that is not of its own is tried as, in this order.
_CANDIDATES = (
    LinkType.ETHERNET,
    LinkType.RAW,
    LinkType.LINUX_SLL2,
    LinkType.LINUX_SLL,
    LinkType.NULL,
)
#: Link types that carry IP and nothing else.
_IP_ONLY = frozenset((LinkType.RAW, LinkType.IPV4, LinkType.IPV6))
_WORDS = {
    LinkType.RAW: "raw IP",
    LinkType.IPV4: "raw IPv4",
    LinkType.IPV6: "raw IPv6",
    LinkType.ETHERNET: "Ethernet",
    LinkType.LINUX_SLL: "Linux cooked (SLL)",
    LinkType.LINUX_SLL2: "Linux cooked v2 (SLL2)",
    LinkType.NULL: "BSD loopback",
}


def _of(data: bytes, linktype: LinkType) -> bool:
    ethertype, off = link_decoder(linktype)(data)
    if ethertype == ETHERTYPE_ARP:
        return True
    if ethertype == ETHERTYPE_IP:
        return len(data) > off and data[off] >> 4 == 4
    if ethertype == ETHERTYPE_IPV6:
        return len(data) > off and data[off] >> 4 == 6
    return False


def linktype_warning(frames: Sequence[bytes], linktype: LinkType) -> str | None:
    """The warning the first frames offered as ``linktype`` deserve, or None.

    Args:
        frames: the first frames (their first ``PROBE_BYTES`` are enough).
        linktype: the link type they were offered as.

    Returns:
        ``"12 of the first 12 frames are not raw IP: pass linktype=LinkType.ETHERNET?"`` when
        more than half are not of ``linktype`` and another candidate explains more than half
        (or, naming none, when ``linktype`` carries nothing but IP); else None.
    """
    if not frames or not has_decoder(linktype):
        return None
    bad = sum(not _of(f, linktype) for f in frames)
    if bad * 2 <= len(frames):
        return None
    best, best_count = None, 0
    for candidate in _CANDIDATES:
        if candidate == linktype:
            continue
        count = sum(_of(f, candidate) for f in frames)
        if count > best_count:
            best, best_count = candidate, count
    what = _WORDS.get(linktype, linktype.description)
    head = f"{bad} of the first {len(frames)} frames are not {what}"
    if best is not None and best_count * 2 > len(frames):
        return f"{head}: pass linktype=LinkType.{best.name}?"
    if linktype in _IP_ONLY:
        return f"{head}: is linktype= the link type of the frames offered?"
    return None


def probing(
    match: MatchFunction,
    linktype: LinkType,
    done: Callable[[MatchFunction, MatchFunction, str | None], None],
) -> tuple[MatchFunction, Callable[[], None]]:
    """``match``, keeping the first ``PROBE_FRAMES`` frames on the way for the check.

    Returns:
        ``(probe, finish)``: ``probe`` matches as ``match`` does; after its last frame, or when
        ``finish()`` is called first (fewer frames came), ``done(probe, match, warning)`` runs
        once, with ``linktype_warning``'s verdict, so the caller can put ``match`` back.
    """
    frames: list[bytes] = []
    pending = [True]

    def finish() -> None:
        if pending[0]:
            pending[0] = False
            done(probe, match, linktype_warning(frames, linktype))

    def probe(data: Any, wire_len: int) -> bool:
        frames.append(bytes(data[:PROBE_BYTES]))
        if len(frames) >= PROBE_FRAMES:
            finish()
        return match(data, wire_len)

    return probe, finish
