"""ConversationSink and its Space-Saving tables: exact counts, the error bound under a flood, and
tshark's conversation and endpoint tables, number for number and character for character."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from _helpers import ETH_ARP, MAC_A, arp, ether, icmp, icmp6, ipv4, ipv6, tcp, udp
from _tsharkrun import (
    T0,
    need_tshark,
    packet,
    read_file,
    tshark_on_files,
    tshark_tables,
    write_pcap,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc import LinkType, OptionError, Packet, Session
from capsvc.sinks import (
    ConversationSink,
    Endpoint,
    format_conversations,
    format_endpoints,
    parse_table_name,
)
from capsvc.sinks._topk import COUNT, ERROR, SpaceSaving
from capsvc.sinks._tshark import format_port_endpoints, format_size, port_endpoints

MS = 1_000_000


# -- the Space-Saving table ------------------------------------------------------------------


def test_table_is_exact_up_to_its_capacity() -> None:
    table = SpaceSaving[str](4)
    for key, weight in [("a", 5), ("b", 1), ("a", 2), ("c", 9), ("d", 1), ("b", 3)]:
        table.add(key, weight)
    assert table.exact and table.error_bound() == 0
    assert {k: e[COUNT] for k, e in table.entries.items()} == {"a": 7, "b": 4, "c": 9, "d": 1}
    assert [k for k, _ in table.top()] == ["c", "a", "b", "d"]
    assert [k for k, _ in table.top(2)] == ["c", "a"]


def test_table_replaces_the_smallest_and_inherits_its_count() -> None:
    table = SpaceSaving[str](2)
    table.add("a", 10)
    table.add("b", 3)
    table.add("b", 1)  # b: 4, its heap record (3) is now stale
    entry = table.add("c", 2)
    assert "b" not in table and table.evictions == 1
    assert entry[COUNT] == 6 and entry[ERROR] == 4
    assert table.error_bound() == 6 and table.total == 16


def test_capacity_must_be_positive() -> None:
    with pytest.raises(OptionError):
        SpaceSaving[str](0)
    with pytest.raises(OptionError):
        ConversationSink(0)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 12),
    stream=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 1500)), max_size=400),
)
def test_space_saving_bounds_hold_for_any_stream(
    capacity: int, stream: list[tuple[int, int]]
) -> None:
    """For every key held: count - error <= true <= count, error <= N / capacity; every key
    heavier than the smallest count held is held. Mutation: taking the heap's top as the
    smallest without checking it is fresh (its count may have grown) evicts the wrong key and
    fails it."""
    table = SpaceSaving[int](capacity)
    truth: Counter[int] = Counter()
    for key, weight in stream:
        table.add(key, weight)
        truth[key] += weight
    total = sum(truth.values())
    assert table.total == total and len(table) <= capacity
    floor = table.error_bound()
    assert floor * capacity <= total
    for key, entry in table.entries.items():
        assert entry[COUNT] - entry[ERROR] <= truth[key] <= entry[COUNT]
        assert entry[ERROR] <= floor
    assert all(key in table for key, weight in truth.items() if weight > floor)
    if table.exact:
        assert {k: e[COUNT] for k, e in table.entries.items()} == dict(truth)


# -- counting ---------------------------------------------------------------------------------


def frames_between(n: int, src: str, dst: str, sport: int, dport: int, size: int) -> list[bytes]:
    return [ether(ipv4(src, dst, tcp(sport, dport, b"x" * size, flags="PA")))] * n


def run(sink: ConversationSink, frames: list[bytes], *, gap: int = MS, batch: int = 64) -> None:
    packets = [packet(T0 + i * gap, f) for i, f in enumerate(frames)]
    for i in range(0, len(packets), batch):
        sink.write_batch(packets[i : i + batch])


def test_directions_follow_the_first_packet() -> None:
    """Side A is the source of the first packet, whichever address sorts first."""
    sink = ConversationSink(linktype=LinkType.ETHERNET)
    out = frames_between(3, "10.0.0.9", "10.0.0.1", 50000, 80, 100)
    back = frames_between(2, "10.0.0.1", "10.0.0.9", 80, 50000, 10)
    run(sink, [out[0], back[0], out[1], back[1], out[2]])
    snap = sink.snapshot()
    (pair,) = snap.ip.rows
    assert (pair.a, pair.b) == ("10.0.0.9", "10.0.0.1")
    assert (pair.packets_ab, pair.packets_ba) == (3, 2)
    assert pair.bytes_ab == 3 * len(out[0]) and pair.bytes_ba == 2 * len(back[0])
    assert pair.first_ns == T0 and pair.last_ns == T0 + 4 * MS and pair.error == 0
    (flow,) = snap.tcp.rows
    assert (flow.a, flow.a_port, flow.b, flow.b_port) == ("10.0.0.9", 50000, "10.0.0.1", 80)
    hosts = {e.address: e for e in snap.endpoints.rows}
    assert hosts["10.0.0.9"].tx_packets == 3 and hosts["10.0.0.9"].rx_packets == 2
    assert hosts["10.0.0.1"].tx_bytes == pair.bytes_ba
    assert [e.address for e in sorted(snap.endpoints.rows, key=lambda e: e.order)] == [
        "10.0.0.9",
        "10.0.0.1",
    ]


def test_counts_equal_a_brute_force_count() -> None:
    """Per pair and direction, what the sink counts is what a plain dict counts, whatever the
    batching (the sink folds each batch's conversations into its tables once)."""
    rng = random.Random(7)
    hosts = [f"10.1.0.{i}" for i in range(1, 9)] + ["fd00::1", "fd00::2"]
    frames = []
    truth: Counter[tuple[str, str]] = Counter()
    sizes: Counter[tuple[str, str]] = Counter()
    for _ in range(3000):
        v6 = rng.random() < 0.2
        src, dst = rng.sample(hosts[8:] if v6 else hosts[:8], 2)
        payload = b"p" * rng.randrange(0, 300)
        l4 = udp(rng.randrange(1024, 1100), 53, payload)
        frame = ether(ipv6(src, dst, l4) if v6 else ipv4(src, dst, l4))
        frames.append(frame)
        truth[src, dst] += 1
        sizes[src, dst] += len(frame)
    for batch in (1, 50, 5000):
        sink = ConversationSink(linktype=LinkType.ETHERNET)
        run(sink, frames, batch=batch)
        snap = sink.snapshot(top=0, by="packets")
        counted: Counter[tuple[str, str]] = Counter()
        counted_bytes: Counter[tuple[str, str]] = Counter()
        for c in snap.ip.rows:
            counted[c.a, c.b] += c.packets_ab
            counted[c.b, c.a] += c.packets_ba
            counted_bytes[c.a, c.b] += c.bytes_ab
            counted_bytes[c.b, c.a] += c.bytes_ba
        assert +counted == truth and +counted_bytes == sizes
        assert snap.packets == snap.ip_packets == 3000
        assert sum(c.packets for c in snap.udp.rows) == 3000
        assert sum(e.tx_packets for e in snap.endpoints.rows) == 3000


def test_what_is_not_ip_counts_only_in_the_totals() -> None:
    sink = ConversationSink(linktype=LinkType.ETHERNET)
    request = ether(arp(1, MAC_A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ethertype=ETH_ARP)
    short = ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2)))[:30]  # the IP header is cut
    run(sink, [request, short, ether(ipv4("10.0.0.1", "10.0.0.2", icmp()))])
    snap = sink.snapshot()
    assert (snap.packets, snap.ip_packets) == (3, 1)
    assert len(snap.ip.rows) == 1 and not snap.tcp.rows and not snap.udp.rows


def test_fragments_and_bogus_transport_headers_count_at_the_ip_level() -> None:
    """A later fragment has no ports; a TCP header shorter than 20 bytes is no TCP header."""
    sink = ConversationSink(linktype=LinkType.ETHERNET)
    later = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"z" * 8), flags_frag=0x0002))
    bogus = bytearray(ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2))))
    bogus[14 + 20 + 12] = 0x40  # data offset 4: 16 bytes
    run(sink, [later, bytes(bogus)])
    snap = sink.snapshot()
    assert snap.ip.rows[0].packets == 2
    assert not snap.tcp.rows and not snap.udp.rows


def test_snapshot_arguments_and_json() -> None:
    sink = ConversationSink(linktype=LinkType.ETHERNET)
    run(sink, frames_between(5, "10.0.0.1", "10.0.0.2", 1, 2, 10))
    with pytest.raises(OptionError):
        sink.snapshot(by="frames")
    with pytest.raises(OptionError):
        sink.snapshot(top=-1)
    data = json.loads(json.dumps(sink.snapshot(top=1, by="packets").to_dict()))
    assert data["by"] == "packets" and data["tcp"]["rows"][0]["packets_ab"] == 5
    assert data["ip"]["evictions"] == 0 and data["endpoints"]["held"] == 2


async def test_a_session_binds_its_link_type() -> None:
    sink = ConversationSink()
    async with Session(sinks=[sink], linktype=LinkType.ETHERNET) as session:
        for frame in frames_between(4, "10.0.0.1", "10.0.0.2", 1, 2, 10):
            session.offer(frame)
        await asyncio.sleep(0)
    assert sink.snapshot().ip.rows[0].packets == 4


# -- bounded memory ---------------------------------------------------------------------------


def test_a_flood_of_one_packet_flows_keeps_the_heavy_ones() -> None:
    """A scan of 60,000 one-packet flows among 20 heavy flows: the tables never hold more than
    their capacity, each figure is at most its error below the truth, the error within N /
    capacity, and every flow heavier than the error bound (here: every heavy flow) is held."""
    capacity = 256
    rng = random.Random(3)
    heavy = [(f"10.9.0.{i + 1}", 40000 + i, 400 + 30 * i) for i in range(20)]  # src, sport, n
    frames: list[bytes] = []
    for src, sport, count in heavy:
        frames += [ether(ipv4(src, "10.0.0.1", tcp(sport, 443, b"d" * 400, flags="PA")))] * count
    syn = ether(ipv4("10.0.0.0", "10.0.0.1", tcp(1, 22)))
    for _ in range(60000):  # the same SYN from random sources and ports (checksums unchecked)
        addr = bytes([10, rng.randrange(10, 250), rng.randrange(256), rng.randrange(1, 255)])
        port = rng.randrange(1024, 65535).to_bytes(2)
        frames.append(syn[:26] + addr + syn[30:34] + port + syn[36:])
    rng.shuffle(frames)
    truth_packets: Counter[tuple[str, int]] = Counter()
    truth_bytes: Counter[tuple[str, int]] = Counter()
    for f in frames:
        key = (".".join(map(str, f[26:30])), f[34] << 8 | f[35])
        truth_packets[key] += 1
        truth_bytes[key] += len(f)
    sink = ConversationSink(capacity, linktype=LinkType.ETHERNET)
    run(sink, frames, batch=256)
    for by, truth in (("packets", truth_packets), ("bytes", truth_bytes)):
        table = sink.snapshot(top=0, by=by).tcp
        assert table.held <= capacity and table.evictions > 0
        assert table.max_error * capacity <= table.total == sum(truth.values())
        for row in table.rows:
            value = row.packets if by == "packets" else row.bytes
            assert value <= truth[row.a, row.a_port] <= value + row.error
            assert row.error <= table.max_error
        held = {(r.a, r.a_port) for r in table.rows}
        assert {key for key, weight in truth.items() if weight > table.max_error} <= held
        assert {(src, sport) for src, sport, _ in heavy} <= held
        top = sink.snapshot(top=20, by=by).tcp.rows
        assert {(r.a, r.a_port) for r in top} == {(s, p) for s, p, _ in heavy}
    snap = sink.snapshot()
    assert snap.endpoints.held <= capacity and snap.ip.held <= capacity


# -- tshark's tables --------------------------------------------------------------------------


def generated_traffic() -> list[Packet]:
    """Conversations of every kind the tables show, interleaved over five seconds: IPv4 and
    IPv6 TCP and UDP (ports either way round, equal ports), ICMP, a host talking to itself,
    VLAN tags, ARP, ties in frame counts, and sizes from bytes to megabytes."""
    rng = random.Random(11)
    flows: list[list[bytes]] = []
    for i in range(12):
        a, b = f"192.168.{i % 3}.{10 + i}", f"10.0.{i % 2}.{1 + i % 4}"
        sport, dport = 30000 + i * 7, (80, 443, 53, 123)[i % 4]
        size = rng.randrange(0, 1400)
        count = (i % 4) * 3 + 2  # repeated counts: ties are listed in first-seen order
        flow = []
        for k in range(count):
            if k % 3 == 2:
                flow.append(ether(ipv4(b, a, tcp(dport, sport, b"r" * 40, flags="A"))))
            else:
                flow.append(ether(ipv4(a, b, tcp(sport, dport, b"s" * size, flags="PA"))))
        flows.append(flow)
    flows.append([ether(ipv4("10.0.0.1", "10.0.0.53", udp(5353, 5353, b"q" * 30)))] * 3)
    flows.append([ether(ipv4("10.0.0.53", "10.0.0.1", udp(53, 40000, b"a" * 90)))] * 2)
    flows.append([ether(ipv4("10.0.0.7", "10.0.0.7", udp(9, 9, b"self")))] * 2)
    flows.append([ether(ipv4("10.0.0.1", "10.0.0.2", icmp()), vlans=(5,))] * 4)
    big = ether(ipv4("172.16.0.1", "172.16.0.2", udp(7000, 7001, b"B" * 1400)))
    flows.append([big] * 7200)  # over 10 MB: "10 MB"
    flows.append([ether(ipv6("fd00::1", "fd00::2", tcp(5000, 22, b"6" * 60, flags="PA")))] * 5)
    flows.append([ether(ipv6("fd00::2", "2001:db8::9", udp(546, 547, b"v")))] * 3)
    flows.append([ether(ipv6("fe80::1", "ff02::1", icmp6()))] * 2)
    flows.append(
        [ether(arp(1, MAC_A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ethertype=ETH_ARP)]
    )
    frames = []
    while any(flows):
        flow = rng.choice([f for f in flows if f])
        frames.append(flow.pop(0))
    step = 5 * 10**9 // len(frames)
    return [packet(T0 + i * step + rng.randrange(step), f) for i, f in enumerate(frames)]


def our_tables(packets_batches: list[list[Packet]], linktype: LinkType) -> dict[str, str]:
    sink = ConversationSink(100_000, linktype=linktype)
    for batch in packets_batches:
        sink.write_batch(batch)
    snap = sink.snapshot(top=0)
    return {
        "conv,ip": format_conversations(snap.ip.rows, "ip", snap.start_ns),
        "conv,ipv6": format_conversations(snap.ip.rows, "ipv6", snap.start_ns),
        "conv,tcp": format_conversations(snap.tcp.rows, "tcp", snap.start_ns),
        "conv,udp": format_conversations(snap.udp.rows, "udp", snap.start_ns),
        "endpoints,ip": format_endpoints(snap.endpoints.rows, "ip"),
        "endpoints,ipv6": format_endpoints(snap.endpoints.rows, "ipv6"),
        "endpoints,tcp": format_port_endpoints(port_endpoints(snap.tcp.rows, "tcp"), "tcp"),
        "endpoints,udp": format_port_endpoints(port_endpoints(snap.udp.rows, "udp"), "udp"),
    }


TABLES = (
    "conv,ip",
    "conv,ipv6",
    "conv,tcp",
    "conv,udp",
    "endpoints,ip",
    "endpoints,ipv6",
    "endpoints,tcp",
    "endpoints,udp",
)


def test_tables_equal_tsharks_on_a_generated_file(tmp_path: Path) -> None:
    """Every table, character for character, as tshark prints it for the same file."""
    need_tshark()
    path = tmp_path / "mixed.pcap"
    packets = generated_traffic()
    write_pcap(path, packets, LinkType.ETHERNET)
    ours = our_tables([packets], LinkType.ETHERNET)
    theirs = tshark_tables(path, *TABLES)
    for table in TABLES:
        assert ours[table] in theirs, table
        assert ours[table].count("\n") > 6, table  # the table has rows
    assert "10 MB" in ours["conv,udp"] and "bytes" in ours["conv,udp"]


#: Corpus files whose tables differ from tshark's, and why. Tunnels: tshark also counts the IP
#: header inside (a frame in two conversations); capsvc counts the outer one only. Malformed:
#: fuzzed headers that tshark's dissectors refuse as a whole (a bogus length, an IPv6 packet
#: in a LINKTYPE_IPV4 file, an extension header chain past the capture) while capsvc still
#: reads the addresses; or a header in a time stamp tshark cannot place.
TSHARK_DIFFERS = {
    "PIM_register_register-stop.pcap": "tunnel (PIM register)",
    "erspan-type-i-1.pcap": "tunnel (ERSPAN)",
    "erspan-type-i-4.pcap": "tunnel (ERSPAN)",
    "geneve-gcp.pcap": "tunnel (GENEVE)",
    "gso-ipv4-geneve-ipv6.pcap": "tunnel (GENEVE)",
    "gso-ipv6-vxlan-ipv4.pcap": "tunnel (VXLAN)",
    "vxlan.pcap": "tunnel (VXLAN)",
    "macsec-short-longer.pcap": "tunnel (MACsec)",
    "LINKTYPE_IPV4_invalid.pcap": "malformed (IPv6 in a LINKTYPE_IPV4 file)",
    "bgp_vpn_rt-oobr.pcap": "malformed",
    "heapoverflow-tcp_print.pcap": "malformed",
    "hoobr_rt6_print.pcap": "malformed",
    "icmp-icmp_print-oobr-1.pcap": "malformed",
    "ip6_frag_asan.pcap": "malformed",
    "ipv6-next-header-oobr-1.pcap": "malformed",
    "ipv6-rthdr-oobr.pcap": "malformed",
    "ipv6-srh-ipproto-ether.pcap": "malformed",
    "ipv6_frag6_negative_len.pcap": "malformed",
    "ipv6_mobility_1.pcap": "malformed",
    "kday1.pcap": "malformed",
    "mobility_opt_asan_3.pcap": "malformed",
    "mobility_opt_asan_6.pcap": "malformed",
    "pim_header_asan-2.pcap": "malformed",
    "quic_32_bit_pointer_overflow.pcap": "malformed",
    "rx_serviceid_oobr.pcap": "malformed",
    "smb_data_print-segv.pcap": "malformed",
}


@pytest.mark.slow
def test_tables_equal_tsharks_on_the_corpus(corpus: Path) -> None:
    """On every corpus file outside ``TSHARK_DIFFERS``, every table is tshark's, character for
    character (which includes every count)."""
    need_tshark()
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    tables = tshark_on_files((p for p in files if p.name not in TSHARK_DIFFERS), *TABLES)
    compared = with_rows = 0
    mismatched = []
    for path, theirs in tables.items():
        linktype, batches = read_file(path)
        ours = our_tables(batches, linktype)
        compared += 1
        with_rows += any(t.count("\n") > 6 for t in ours.values())
        mismatched += [(path.name, t) for t in TABLES if ours[t] not in theirs]
    assert mismatched == []
    assert compared > 150 and with_rows > 100


def test_format_size_as_tshark() -> None:
    assert [format_size(n) for n in (0, 689, 9999, 10000, 80066, 1730452, 10**7, 10**13)] == [
        "0 bytes",
        "689 bytes",
        "9999 bytes",
        "10 kB",
        "80 kB",
        "1730 kB",
        "10 MB",
        "10 TB",
    ]


def test_unknown_tables_are_refused() -> None:
    assert parse_table_name("conv,tcp") == ("conv", "tcp")
    assert parse_table_name("endpoints,ipv6") == ("endpoints", "ipv6")
    assert parse_table_name("io,stat,1") == ("io,stat", "1")
    assert parse_table_name("endpoints,udp") == ("endpoints", "udp")
    assert parse_table_name("io,stat,05") == ("io,stat", "5")
    for bad in ("conv,eth", "endpoints,eth", "io,stat,0.5", "io,stat,-1", "io,stat,", "conv"):
        with pytest.raises(OptionError):
            parse_table_name(bad)
    with pytest.raises(OptionError):
        format_conversations([], "eth", None)
    with pytest.raises(OptionError):
        format_endpoints([], "tcp")


def test_endpoint_table_layout() -> None:
    row = Endpoint(4, "10.0.0.1", 3, 300, 1, 60, T0, T0, 0, 0)
    table = format_endpoints([row], "ip")
    # "%-20s      %6d     %9d     %6d       %9d      %6d       %9d   "
    assert table.splitlines()[4] == (
        "10.0.0.1" + " " * 12 + " " * 6 + "     4" + " " * 5 + "      360" + " " * 5 + "     3"
        "       " + "      300" + " " * 6 + "     1" + " " * 7 + "       60" + "   "
    )
