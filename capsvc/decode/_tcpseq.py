"""tcpdump's relative TCP sequence numbers, in a bounded table.

Pure module. tcpdump remembers, per connection, the sequence numbers of the segment that opened
its entry and prints later ones relative to them; this table does the same arithmetic with the
same rules, so a line reads as tcpdump's does:

- only segments with ACK set are looked up (a bare SYN prints its absolute numbers);
- the connection's key puts the endpoint with the lower port first (the lower address when
  the ports are equal);
- a segment whose connection is not in the table, or any SYN, (re)starts the entry and prints
  absolute numbers; the entry holds the sender's sequence number and the acknowledgement less 1.

The rule this module adds: memory is bounded. At most ``max_flows`` connections are kept, the
least recently seen forgotten first (tcpdump's own table grows without limit); a forgotten
connection restarts at its next segment, printing absolute numbers once.
"""

from __future__ import annotations

from collections import OrderedDict

from .._errors import OptionError
from ._flows import DEFAULT_MAX_FLOWS

__all__ = ["DEFAULT_MAX_FLOWS", "TcpSeqTable"]

_MASK = 0xFFFFFFFF


class TcpSeqTable:
    """Connection -> (seq base, ack base), least recently used first out.

    Args:
        max_flows: connections kept at most; at least 1.

    Raises:
        OptionError: ``max_flows`` is less than 1.
    """

    __slots__ = ("_flows", "max_flows")

    def __init__(self, max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        if max_flows < 1:
            raise OptionError(f"max_flows must be at least 1, not {max_flows}")
        self.max_flows = max_flows
        self._flows: OrderedDict[tuple[bytes, bytes, int], tuple[int, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._flows)

    def relative(
        self, src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, syn: bool
    ) -> tuple[int, int, bool, int, int]:
        """Record an ACK segment and return what tcpdump prints for it.

        Args:
            src, sport, dst, dport: the segment's addresses (4 or 16 bytes) and ports.
            seq, ack: its sequence and acknowledgement numbers.
            syn: whether SYN is set (a SYN restarts the entry).

        Returns:
            ``(seq, ack, rev, base_seq, base_ack)``: the numbers to print (modulo 2**32), whether
            the key is the reverse of the segment's direction, and the entry's two bases (SACK
            blocks are printed relative to them).
        """
        rev = sport > dport or (sport == dport and src > dst)
        key = (dst, src, dport << 16 | sport) if rev else (src, dst, sport << 16 | dport)
        flows = self._flows
        entry = flows.get(key)
        if entry is None or syn:
            if entry is None and len(flows) >= self.max_flows:
                flows.popitem(last=False)
            entry = (ack - 1) & _MASK, seq
            if not rev:
                entry = seq, (ack - 1) & _MASK
            flows[key] = entry
            flows.move_to_end(key)
            return seq, ack, rev, entry[0], entry[1]
        flows.move_to_end(key)
        base_seq, base_ack = entry
        if rev:
            return (seq - base_ack) & _MASK, (ack - base_seq) & _MASK, rev, base_seq, base_ack
        return (seq - base_seq) & _MASK, (ack - base_ack) & _MASK, rev, base_seq, base_ack

    def clear(self) -> None:
        """Forget every connection."""
        self._flows.clear()
