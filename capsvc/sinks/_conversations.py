"""The conversation sink: who talks to whom, in bounded memory.

Counts, for every IP address pair, every TCP or UDP 5-tuple and every IP endpoint, the packets and
wire bytes in each direction and when it was first and last seen. Each kind is kept twice, in a
heavy-hitter table weighted by bytes and in one weighted by packets (``_topk.SpaceSaving``), so
the top by either measure carries the table's error bound. Counts are exact until a table has
seen more distinct keys than its capacity. From then on a key's figures are what the table
counted since the key last entered it, so they may miss what came before: its true value of the
ranked measure lies between the figure and the figure plus ``error``, ``error <= N / capacity``
(N: the table's total weight); rows are ranked by that upper end, and no key heavier than the
table's error bound is ever lost. A scan or a flood of one-packet flows fills the tables and
evicts their lightest entries; it cannot grow them.

Per packet the sink reads the addresses (``decode._addresses``) and counts into a dict of the
batch's own conversations; the tables are updated once per distinct conversation and batch,
under a lock that ``snapshot`` takes too (it runs on another thread than the Session's writer).

Direction follows tshark: a conversation's side A is the source of the first packet seen of it
(since it last entered its table), B the other; an endpoint transmits what it sent and receives
what was sent to it. A packet between an address and itself counts as sent and received by it.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from .._errors import OptionError
from .._packet import LinkType, PacketBatch, Stats
from ..decode._addresses import NO_PORT, frame_addresses
from ..decode._const import IPPROTO_TCP, IPPROTO_UDP
from ..decode._link import link_decoder
from ._topk import ERROR, FIELDS, ORDER, SpaceSaving

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "Conversation",
    "ConversationSink",
    "ConversationSnapshot",
    "ConversationTable",
    "Endpoint",
    "EndpointTable",
]

#: Keys each table holds when no capacity is given.
DEFAULT_MAX_ENTRIES = 4096
#: What ``snapshot`` ranks by.
RANKINGS = ("bytes", "packets")

# Fields of a conversation entry, after SpaceSaving's count, error and order.
_P_LH, _B_LH, _P_HL, _B_HL, _FIRST, _LAST, _A_IS_LO = range(FIELDS, FIELDS + 7)
# Fields of an endpoint entry.
_TX_P, _TX_B, _RX_P, _RX_B, _E_FIRST, _E_LAST = range(FIELDS, FIELDS + 6)

_PairKey = tuple[bytes, bytes]
_FlowKey = tuple[int, bytes, int, bytes, int]


class Conversation(NamedTuple):
    """One conversation: an address pair (``protocol`` 0) or a TCP/UDP 5-tuple.

    Attributes:
        version: 4 or 6.
        protocol: 0 for an address pair, else the IP protocol (6 TCP, 17 UDP).
        a: side A, the source of the first packet seen (text form).
        a_port: A's port; -1 for an address pair.
        b: side B.
        b_port: B's port; -1 for an address pair.
        packets_ab: packets from A to B.
        bytes_ab: their wire bytes.
        packets_ba: packets from B to A.
        bytes_ba: their wire bytes.
        first_ns: the earliest packet's time (ns since the epoch).
        last_ns: the latest packet's time.
        error: how much more the ranked measure (bytes or packets) may truly be than the
            figures say (what came before the conversation last entered its table); 0 is exact.
        order: the order in which conversations entered the table (tshark lists ties so).
    """

    version: int
    protocol: int
    a: str
    a_port: int
    b: str
    b_port: int
    packets_ab: int
    bytes_ab: int
    packets_ba: int
    bytes_ba: int
    first_ns: int
    last_ns: int
    error: int
    order: int

    @property
    def packets(self) -> int:
        """Packets both ways."""
        return self.packets_ab + self.packets_ba

    @property
    def bytes(self) -> int:
        """Wire bytes both ways."""
        return self.bytes_ab + self.bytes_ba


class Endpoint(NamedTuple):
    """One IP endpoint.

    Attributes:
        version: 4 or 6.
        address: the address (text form).
        tx_packets: packets it sent.
        tx_bytes: their wire bytes.
        rx_packets: packets sent to it.
        rx_bytes: their wire bytes.
        first_ns: its earliest packet's time.
        last_ns: its latest packet's time.
        error: how much more the ranked measure may truly be than the figures say; 0 is exact.
        order: the order in which endpoints entered the table.
    """

    version: int
    address: str
    tx_packets: int
    tx_bytes: int
    rx_packets: int
    rx_bytes: int
    first_ns: int
    last_ns: int
    error: int
    order: int

    @property
    def packets(self) -> int:
        """Packets sent and received."""
        return self.tx_packets + self.rx_packets

    @property
    def bytes(self) -> int:
        """Wire bytes sent and received."""
        return self.tx_bytes + self.rx_bytes


class ConversationTable(NamedTuple):
    """The top rows of one table and how far they can be trusted.

    Attributes:
        rows: the rows, largest first by the ranked measure (its figure plus its error).
        held: keys the table holds now.
        capacity: keys it holds at most.
        evictions: keys pushed out so far (0: every figure is exact).
        max_error: the largest error any row can have now (the smallest count held once the
            table is full; 0 while exact).
        total: the ranked measure summed over everything the table counted.
    """

    rows: list[Conversation]
    held: int
    capacity: int
    evictions: int
    max_error: int
    total: int


class EndpointTable(NamedTuple):
    """The top endpoints and how far they can be trusted (fields as ``ConversationTable``)."""

    rows: list[Endpoint]
    held: int
    capacity: int
    evictions: int
    max_error: int
    total: int


class ConversationSnapshot(NamedTuple):
    """What ``ConversationSink.snapshot`` returns.

    Attributes:
        by: ``"bytes"`` or ``"packets"``: what the rows are ranked by.
        start_ns: the first packet's time (any packet, IP or not); None before any.
        last_ns: the latest packet's time; None before any.
        packets: packets seen.
        bytes: their wire bytes.
        ip_packets: packets with an IP header (the others count nowhere else).
        ip: address pairs, IPv4 and IPv6.
        tcp: TCP 5-tuples.
        udp: UDP 5-tuples.
        endpoints: IP endpoints.
    """

    by: str
    start_ns: int | None
    last_ns: int | None
    packets: int
    bytes: int
    ip_packets: int
    ip: ConversationTable
    tcp: ConversationTable
    udp: ConversationTable
    endpoints: EndpointTable

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON-ready values (rows as objects with named fields)."""
        out: dict[str, Any] = {
            "by": self.by,
            "start_ns": self.start_ns,
            "last_ns": self.last_ns,
            "packets": self.packets,
            "bytes": self.bytes,
            "ip_packets": self.ip_packets,
        }
        for name in ("ip", "tcp", "udp", "endpoints"):
            table = getattr(self, name)
            out[name] = {
                **{k: v for k, v in table._asdict().items() if k != "rows"},
                "rows": [row._asdict() for row in table.rows],
            }
        return out


class ConversationSink:
    """Counts conversations and endpoints of the packets it is given (a Session sink).

    Args:
        max_entries: keys each of its six tables holds at most (address pairs, 5-tuples,
            endpoints, each by bytes and by packets); default 4096. Counts are exact while no
            table has seen more distinct keys than this.
        linktype: the frames' link type; None (the default) means the bound Session's, or RAW
            when unbound.

    Raises:
        OptionError: ``max_entries`` is less than 1.
    """

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, *, linktype: LinkType | int | None = None
    ) -> None:
        if max_entries < 1:
            raise OptionError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self._linktype = linktype
        self._decode = link_decoder(LinkType.RAW if linktype is None else linktype)
        self._lock = threading.Lock()
        self._pairs = {by: SpaceSaving[_PairKey](max_entries, 7) for by in RANKINGS}
        self._flows = {by: SpaceSaving[_FlowKey](max_entries, 7) for by in RANKINGS}
        self._hosts = {by: SpaceSaving[bytes](max_entries, 6) for by in RANKINGS}
        self.packets = 0
        self.bytes = 0
        self.ip_packets = 0
        self.start_ns: int | None = None
        self.last_ns: int | None = None

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        """Take the Session's link type when none was given."""
        if self._linktype is None:
            self._decode = link_decoder(linktype)

    # -- the writer thread ------------------------------------------------------------------

    def write_batch(self, batch: PacketBatch) -> None:
        """Count a batch."""
        if not batch:
            return
        decode = self._decode
        pairs: dict[_PairKey, list[int]] = {}
        flows: dict[_FlowKey, list[int]] = {}
        ip = 0
        total = 0
        for ts, data, wire, _direction, _ifindex in batch:
            total += wire
            found = frame_addresses(data, decode)
            if found is None:
                continue
            ip += 1
            src, dst, proto, sport, dport = found
            forward = src <= dst
            pair_key = (src, dst) if forward else (dst, src)
            agg = pairs.get(pair_key)
            if agg is None:
                pairs[pair_key] = agg = [0, 0, 0, 0, ts, ts, forward]
            _count(agg, forward, wire, ts)
            if sport != NO_PORT:
                forward = (src, sport) <= (dst, dport)
                flow_key = (
                    (proto, src, sport, dst, dport)
                    if forward
                    else (
                        proto,
                        dst,
                        dport,
                        src,
                        sport,
                    )
                )
                agg = flows.get(flow_key)
                if agg is None:
                    flows[flow_key] = agg = [0, 0, 0, 0, ts, ts, forward]
                _count(agg, forward, wire, ts)
        with self._lock:
            self.packets += len(batch)
            self.bytes += total
            self.ip_packets += ip
            first = batch[0][0]
            if self.start_ns is None:
                self.start_ns = first
            newest = max(p[0] for p in batch)
            if self.last_ns is None or newest > self.last_ns:
                self.last_ns = newest
            for by in RANKINGS:
                bytes_rank = by == "bytes"
                _fold_conversations(self._pairs[by], pairs, bytes_rank)
                _fold_conversations(self._flows[by], flows, bytes_rank)
                _fold_endpoints(self._hosts[by], pairs, bytes_rank)

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release; the counts stay readable."""

    # -- any thread -------------------------------------------------------------------------

    def snapshot(self, top: int = 20, by: str = "bytes") -> ConversationSnapshot:
        """The top conversations and endpoints now.

        Args:
            top: rows per table; 0 means every key held.
            by: ``"bytes"`` or ``"packets"``: the measure rows are ranked by, and whose table
                (with its own error bound) they come from.

        Raises:
            OptionError: ``by`` is neither, or ``top`` is negative.
        """
        if by not in RANKINGS:
            raise OptionError(f"by must be 'bytes' or 'packets', not {by!r}")
        if top < 0:
            raise OptionError(f"top must not be negative, not {top}")
        with self._lock:
            pairs, flows, hosts = self._pairs[by], self._flows[by], self._hosts[by]
            return ConversationSnapshot(
                by=by,
                start_ns=self.start_ns,
                last_ns=self.last_ns,
                packets=self.packets,
                bytes=self.bytes,
                ip_packets=self.ip_packets,
                ip=_conversation_table(pairs, pairs.top(top)),
                tcp=_conversation_table(flows, _top_of(flows, IPPROTO_TCP, top)),
                udp=_conversation_table(flows, _top_of(flows, IPPROTO_UDP, top)),
                endpoints=_endpoint_table(hosts, hosts.top(top)),
            )


def _count(agg: list[int], forward: bool, wire: int, ts: int) -> None:
    if forward:
        agg[0] += 1
        agg[1] += wire
    else:
        agg[2] += 1
        agg[3] += wire
    if ts < agg[4]:
        agg[4] = ts
    elif ts > agg[5]:
        agg[5] = ts


def _fold_conversations(
    table: SpaceSaving[Any], batch: dict[Any, list[int]], bytes_rank: bool
) -> None:
    """Add a batch's conversations to a table, in the order the batch first saw them."""
    add = table.add
    for key, (p_lh, b_lh, p_hl, b_hl, first, last, a_is_lo) in batch.items():
        entry = add(key, b_lh + b_hl if bytes_rank else p_lh + p_hl)
        if entry[_P_LH] == 0 and entry[_P_HL] == 0:  # new to the table
            entry[_FIRST] = first
            entry[_LAST] = last
            entry[_A_IS_LO] = a_is_lo
        else:
            if first < entry[_FIRST]:
                entry[_FIRST] = first
            if last > entry[_LAST]:
                entry[_LAST] = last
        entry[_P_LH] += p_lh
        entry[_B_LH] += b_lh
        entry[_P_HL] += p_hl
        entry[_B_HL] += b_hl


def _fold_endpoints(table: SpaceSaving[bytes], pairs: dict[_PairKey, list[int]], b: bool) -> None:
    """Add both ends of a batch's address pairs to an endpoint table, side A first (so
    endpoints enter it in the order of their first packet, as tshark lists them)."""
    for (lo, hi), (p_lh, b_lh, p_hl, b_hl, first, last, a_is_lo) in pairs.items():
        ends = ((lo, p_lh, b_lh, p_hl, b_hl), (hi, p_hl, b_hl, p_lh, b_lh))
        for address, tx_p, tx_b, rx_p, rx_b in ends if a_is_lo else ends[::-1]:
            entry = table.add(address, tx_b + rx_b if b else tx_p + rx_p)
            if entry[_TX_P] == 0 and entry[_RX_P] == 0:
                entry[_E_FIRST] = first
                entry[_E_LAST] = last
            else:
                if first < entry[_E_FIRST]:
                    entry[_E_FIRST] = first
                if last > entry[_E_LAST]:
                    entry[_E_LAST] = last
            entry[_TX_P] += tx_p
            entry[_TX_B] += tx_b
            entry[_RX_P] += rx_p
            entry[_RX_B] += rx_b


def _top_of(table: SpaceSaving[_FlowKey], proto: int, top: int) -> list[tuple[_FlowKey, list[int]]]:
    """The top entries of one transport protocol of the 5-tuple table."""
    rows = [(k, e) for k, e in table.top() if k[0] == proto]
    return rows[:top] if top else rows


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


def _conversation_row(key: tuple[Any, ...], entry: list[int]) -> Conversation:
    if len(key) == 2:
        proto, lo, lo_port, hi, hi_port = 0, key[0], NO_PORT, key[1], NO_PORT
    else:
        proto, lo, lo_port, hi, hi_port = key
    lh = (entry[_P_LH], entry[_B_LH])
    hl = (entry[_P_HL], entry[_B_HL])
    if entry[_A_IS_LO]:
        a, a_port, b, b_port, ab, ba = lo, lo_port, hi, hi_port, lh, hl
    else:
        a, a_port, b, b_port, ab, ba = hi, hi_port, lo, lo_port, hl, lh
    return Conversation(
        4 if len(a) == 4 else 6,
        proto,
        _text(a),
        a_port,
        _text(b),
        b_port,
        ab[0],
        ab[1],
        ba[0],
        ba[1],
        entry[_FIRST],
        entry[_LAST],
        entry[ERROR],
        entry[ORDER],
    )


def _conversation_table(
    table: SpaceSaving[Any], top: list[tuple[Any, list[int]]]
) -> ConversationTable:
    return ConversationTable(
        [_conversation_row(key, entry) for key, entry in top],
        len(table),
        table.capacity,
        table.evictions,
        table.error_bound(),
        table.total,
    )


def _endpoint_table(table: SpaceSaving[bytes], top: list[tuple[bytes, list[int]]]) -> EndpointTable:
    rows = [
        Endpoint(
            4 if len(address) == 4 else 6,
            _text(address),
            e[_TX_P],
            e[_TX_B],
            e[_RX_P],
            e[_RX_B],
            e[_E_FIRST],
            e[_E_LAST],
            e[ERROR],
            e[ORDER],
        )
        for address, e in top
    ]
    return EndpointTable(
        rows, len(table), table.capacity, table.evictions, table.error_bound(), table.total
    )
