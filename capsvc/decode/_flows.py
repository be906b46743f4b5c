"""A bounded TCP flow table for relative sequence numbers in the verbose text log.

Pure module. The rule it keeps: memory is bounded. The table holds at most ``max_flows``
connections and forgets the least recently seen one when a new connection would exceed that, so a
scan or a flood of one-packet flows cannot grow it without limit. A forgotten connection that shows
up again simply starts over from the next packet seen.
"""

from __future__ import annotations

from collections import OrderedDict

from .._errors import OptionError

__all__ = ["DEFAULT_MAX_FLOWS", "FlowTable"]

#: Connections remembered when no size is given.
DEFAULT_MAX_FLOWS = 4096

_MASK32 = 0xFFFFFFFF
_UNSET = -1

_FlowKey = tuple[bytes, int, bytes, int]


class FlowTable:
    """Per-connection sequence bases, least recently used first out.

    A connection is keyed by both endpoints regardless of direction and keeps one base per side:
    the first sequence number seen from that side, or, when the other side's acknowledgement is
    seen first, that acknowledgement number. Sequence numbers print relative to the sender's base
    and acknowledgements relative to the receiver's, so a handshake reads ``seq 0``, ``seq 0, ack
    1``, ``seq 1, ack 1`` like tcpdump's relative numbering.

    Args:
        max_flows: connections kept at most; at least 1.

    Raises:
        ValueError: ``max_flows`` is less than 1.
    """

    __slots__ = ("_flows", "max_flows")

    def __init__(self, max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        if max_flows < 1:
            raise OptionError(f"max_flows must be at least 1, not {max_flows}")
        self.max_flows = max_flows
        self._flows: OrderedDict[_FlowKey, list[int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._flows)

    def relative(
        self, src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, has_ack: bool
    ) -> tuple[int, int]:
        """Record a segment and return its relative sequence and acknowledgement numbers.

        Args:
            src: source address bytes (4 or 16).
            sport: source port.
            dst: destination address bytes.
            dport: destination port.
            seq: the segment's sequence number.
            ack: its acknowledgement number (ignored unless ``has_ack``).
            has_ack: whether the ACK flag is set.

        Returns:
            ``(seq, ack)`` relative to the connection's bases, modulo 2**32; ``ack`` is 0 when
            ``has_ack`` is False.
        """
        if (src, sport) <= (dst, dport):
            key = (src, sport, dst, dport)
            me, peer = 0, 1
        else:
            key = (dst, dport, src, sport)
            me, peer = 1, 0
        flows = self._flows
        bases = flows.get(key)
        if bases is None:
            if len(flows) >= self.max_flows:
                flows.popitem(last=False)
            bases = [_UNSET, _UNSET]
            flows[key] = bases
        else:
            flows.move_to_end(key)
        if bases[me] == _UNSET:
            bases[me] = seq
        rel_seq = (seq - bases[me]) & _MASK32
        if not has_ack:
            return rel_seq, 0
        if bases[peer] == _UNSET:
            bases[peer] = ack
        return rel_seq, (ack - bases[peer]) & _MASK32

    def base(self, src: bytes, sport: int, dst: bytes, dport: int) -> int | None:
        """The sequence base of the side sending from ``src:sport`` to ``dst:dport``, if known.

        Used to print SACK blocks relative to the receiver's base; does not touch the LRU order.
        """
        if (src, sport) <= (dst, dport):
            bases = self._flows.get((src, sport, dst, dport))
            value = bases[0] if bases is not None else _UNSET
        else:
            bases = self._flows.get((dst, dport, src, sport))
            value = bases[1] if bases is not None else _UNSET
        return None if value == _UNSET else value

    def clear(self) -> None:
        """Forget every connection."""
        self._flows.clear()
