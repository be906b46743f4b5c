"""AF_PACKET TPACKET_V3 captures on private veth pairs (and a tun device): real kernel, real frames.

Every test builds its own namespace and veth pair; frames carry a marker so nothing else that
may cross the interface is mistaken for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import secrets
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _afpacket import IFF_PROMISC, MARK, collect, frames, source
from _helpers import ETH_ARP, arp, ether, ipv4, udp
from _netns import VethPair, ip, need_root

from capsvc import CaptureError, Direction, LinkType, PermissionNeededError, Session
from capsvc.sources.afpacket._source import AfPacketSource
from capsvc.sources.afpacket._tpacket import uncook_program

pytestmark = pytest.mark.netns


async def test_inbound_count_bytes_timestamps_and_stats(pair: VethPair) -> None:
    src = source(pair.host)
    try:
        assert (src.linktype, src.snaplen, src.live) == (LinkType.ETHERNET, 262144, True)
        sent = frames(pair, 50)
        pair.send_from_peer(sent)
        got = await collect(src, 50)
    finally:
        await src.aclose()
    assert [p.data for p in got] == sent
    assert [p.wire_len for p in got] == [len(f) for f in sent]
    stamps = [p.ts_ns for p in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 50
    assert abs(stamps[0] - time.time_ns()) < 10 * 10**9
    assert {p.direction for p in got} == {Direction.INBOUND}
    assert {p.ifindex for p in got} == {pair.host_index}
    stats = src.stats()  # kept after close
    assert stats.received >= 50 and stats.kernel_dropped == 0


async def test_outbound_frames_are_outbound(pair: VethPair) -> None:
    src = source(pair.host)
    try:
        sent = frames(pair, 5)
        pair.send_from_host(sent)
        got = await collect(src, 5)
    finally:
        await src.aclose()
    assert [p.data for p in got] == sent
    assert {p.direction for p in got} == {Direction.OUTBOUND}


@pytest.mark.parametrize(
    ("direction", "expect"),
    [
        ("in", Direction.INBOUND),
        ("out", Direction.OUTBOUND),
    ],
)
async def test_direction_keeps_only_one_way(
    pair: VethPair, direction: str, expect: Direction
) -> None:
    src = source(pair.host, direction=direction)
    try:
        inbound = frames(pair, 6, dport=7001)
        outbound = frames(pair, 6, dport=7002)
        pair.send_from_peer(inbound)
        pair.send_from_host(outbound)
        got = await collect(src, 6, settle=0.1)
    finally:
        await src.aclose()
    assert [p.data for p in got] == (inbound if expect == Direction.INBOUND else outbound)
    assert {p.direction for p in got} == {expect}


async def test_snaplen_truncates_in_the_kernel_and_keeps_wire_length(pair: VethPair) -> None:
    src = source(pair.host, snaplen=40)
    try:
        sent = [f + b"z" * 200 for f in frames(pair, 3)]
        pair.send_from_peer(sent)
        got = await collect(src, 3, keep=lambda b: [p for p in b if p.wire_len == len(sent[0])])
    finally:
        await src.aclose()
    assert [p.data for p in got] == [f[:40] for f in sent]


async def test_kernel_filter_drops_before_userspace(pair: VethPair) -> None:
    src = source(pair.host, filter="udp dst port 7010")
    try:
        wanted = frames(pair, 20, dport=7010)
        others = frames(pair, 80, dport=7011)
        pair.send_from_peer(
            [f for i, f in enumerate(others) for f in ((wanted[i // 4], f) if i % 4 == 0 else (f,))]
        )
        got = await collect(src, 20, keep=lambda b: b, settle=0.1)
    finally:
        await src.aclose()
    assert [p.data for p in got] == wanted
    assert src.stats().received == 20  # the 80 others never reached the ring
    assert src.userspace_filter is None


async def test_filter_compiled_for_raw_ip_on_cooked_socket(pair: VethPair) -> None:
    src = source(pair.host, cooked=True, filter="udp dst port 7012")
    try:
        wanted = frames(pair, 4, dport=7012)
        pair.send_from_peer(frames(pair, 4, dport=7013) + wanted)
        got = await collect(src, 4, keep=lambda b: b, settle=0.1)
    finally:
        await src.aclose()
    assert [p.data[20:] for p in got] == [f[14:] for f in wanted]


async def test_cooked_filter_on_the_protocol_uses_ancillary_data(pair: VethPair) -> None:
    src = source(pair.host, cooked=True, filter="arp")
    try:
        request = ether(
            arp(1, pair.peer_mac, pair.peer_ip, "00:00:00:00:00:00", "10.200.0.77"),
            src=pair.peer_mac,
            dst="ff:ff:ff:ff:ff:ff",
            ethertype=ETH_ARP,
        )
        pair.send_from_peer([*frames(pair, 3), request])
        got = await collect(src, 1, keep=lambda b: b, settle=0.1)
    finally:
        await src.aclose()
    assert [p.data[20:] for p in got] == [request[14:]]
    assert got[0].data[:2] == b"\x08\x06" and got[0].data[10] == 1  # PACKET_BROADCAST


async def test_uncompilable_filter_refused_without_fallback(pair: VethPair) -> None:
    from capsvc.filter import FilterCompileError

    with pytest.raises(FilterCompileError):
        source(pair.host, cooked=True, filter=f"ether src {pair.peer_mac}")
    with pytest.raises(FilterCompileError):  # neither the kernel nor a Session can: refused
        source("any", filter=f"ether src {pair.peer_mac}", userspace_fallback=True)


def test_uncook_moves_offsets_and_maps_header_fields() -> None:
    program = [
        (0x28, 0, 0, 0),  # ldh [0]: SLL2 protocol
        (0x15, 0, 3, 0x0800),
        (0x30, 0, 0, 10),  # ldb [10]: packet type
        (0xB1, 0, 0, 20),  # ldxb 4*([20]&0xf): the IP header length
        (0x48, 0, 0, 22),  # ldh [x + 22]: UDP destination port
        (0x06, 0, 0, 100),
    ]
    ad = 0xFFFFF000
    assert uncook_program(program) == [
        (0x28, 0, 0, ad + 0),
        (0x15, 0, 3, 0x0800),
        (0x30, 0, 0, ad + 4),
        (0xB1, 0, 0, 0),
        (0x48, 0, 0, 2),
        (0x06, 0, 0, 100),
    ]
    assert uncook_program([(0x20, 0, 0, 12), (0x06, 0, 0, 1)]) is None  # the address


async def test_promiscuous_membership_follows_the_source(pair: VethPair) -> None:
    def promisc_flag() -> bool:
        return bool(int(Path(f"/sys/class/net/{pair.host}/flags").read_text(), 16) & IFF_PROMISC)

    assert not promisc_flag()
    quiet = source(pair.host, promisc=False)
    assert not promisc_flag()
    await quiet.aclose()
    src = source(pair.host, promisc=True)
    try:
        assert promisc_flag()
        # A frame for a foreign MAC arrives (veth itself filters no MACs; a NIC would).
        foreign = frames(pair, 3, dst_mac="02:aa:bb:cc:dd:ee")
        pair.send_from_peer(foreign)
        got = await collect(src, 3)
    finally:
        await src.aclose()
    assert [p.data for p in got] == foreign
    assert not promisc_flag()  # the membership ends with the socket


async def test_fanout_splits_flows_without_loss_or_duplicates(pair: VethPair) -> None:
    group = secrets.randbelow(60000) + 1
    one = source(pair.host, fanout=(group, "hash+defrag"))
    two = source(pair.host, fanout=(group, "hash+defrag"))
    sent = [f for flow in range(32) for f in frames(pair, 4, sport=41000 + flow)]
    try:
        pair.send_from_peer(sent)
        got_one, got_two = await asyncio.gather(
            collect(one, 1, settle=0.3), collect(two, 1, settle=0.3)
        )
    finally:
        await one.aclose()
        await two.aclose()
    everything = [p.data for p in got_one + got_two]
    assert sorted(everything) == sorted(sent)  # nothing lost, nothing twice
    flows_one = {p.data[34:36] for p in got_one}
    flows_two = {p.data[34:36] for p in got_two}
    assert flows_one and flows_two and not flows_one & flows_two  # a flow stays on one socket


async def test_cooked_named_interface_gives_sll2(pair: VethPair) -> None:
    src = source(pair.host, cooked=True)
    try:
        assert src.linktype == LinkType.LINUX_SLL2
        sent = frames(pair, 2)
        pair.send_from_peer(sent)
        got = await collect(src, 2)
    finally:
        await src.aclose()
    for pkt, frame in zip(got, sent, strict=True):
        proto, ifindex, hatype, pkttype, halen = struct.unpack_from(">H2xIHBB", pkt.data)
        assert (proto, ifindex, hatype, pkttype, halen) == (0x0800, pair.host_index, 1, 0, 6)
        assert pkt.data[12:18] == frame[6:12]  # the source MAC
        assert pkt.data[20:] == frame[14:]
        assert pkt.wire_len == len(frame) - 14 + 20


async def test_any_interface_cooked_with_interface_index(pair: VethPair) -> None:
    src = source("any")
    try:
        assert src.linktype == LinkType.LINUX_SLL2
        sent = frames(pair, 5)
        pair.send_from_peer(sent)
        got = await collect(src, 5)
    finally:
        await src.aclose()
    assert [p.data[20:] for p in got] == [f[14:] for f in sent]
    assert {struct.unpack_from(">I", p.data, 4)[0] for p in got} == {pair.host_index}
    assert {p.ifindex for p in got} == {pair.host_index}


@contextlib.contextmanager
def tun_device() -> Iterator[tuple[str, int]]:
    """A tun device in this namespace, up, attached to an fd written by the test."""
    need_root()
    name = f"cst{secrets.token_hex(3)}t"
    ip("tuntap", "add", "mode", "tun", "name", name)
    fd = -1
    try:
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")
        fd = os.open("/dev/net/tun", os.O_RDWR)
        ifr = struct.pack("16sH22x", name.encode(), 0x0001 | 0x1000)  # IFF_TUN | IFF_NO_PI
        fcntl.ioctl(fd, 0x400454CA, ifr)  # TUNSETIFF
        ip("link", "set", name, "up")
        yield name, fd
    finally:
        if fd >= 0:
            os.close(fd)
        ip("link", "del", name, check=False)


async def test_tun_device_gives_raw_ip() -> None:
    with tun_device() as (name, fd):
        src = source(name)
        try:
            assert src.linktype == LinkType.RAW
            packets = []
            for i in range(4):
                body = udp(5000, 5001, MARK + bytes([i]))
                pkt = bytearray(ipv4("10.201.0.1", "10.201.0.2", body))
                pkt[10:12] = b"\xde\xad"  # a bad header checksum: the stack drops it after capture
                packets.append(bytes(pkt))
                os.write(fd, pkt)
            got = await collect(src, 4)
        finally:
            await src.aclose()
    assert [p.data for p in got] == packets
    assert {p.direction for p in got} == {Direction.INBOUND}


async def test_session_stop_on_a_silent_interface_is_prompt(pair: VethPair) -> None:
    session = Session(source=source(pair.host, promisc=False), output=io.BytesIO())
    await session.start()
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await session.stop()
    assert time.monotonic() - started < 1.0
    assert session.source_error is None


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
async def test_session_pcap_is_read_back_by_tcpdump(pair: VethPair, tmp_path: Path) -> None:
    out = tmp_path / "live.pcap"
    session = Session(source=source(pair.host), output=out, matcher=None)
    async with session:
        pair.send_from_peer(frames(pair, 30))
        for _ in range(100):
            if session.stats().written >= 30:
                break
            await asyncio.sleep(0.02)
    assert session.stats().written == 30
    result = subprocess.run(
        ["tcpdump", "-nr", str(out), "udp dst port 7000"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert len(result.stdout.splitlines()) == 30
    assert result.stdout.count("IP 10.200.0.2.40000 > 10.200.0.1.7000:") == 30


def test_no_such_interface() -> None:
    need_root()
    with pytest.raises(CaptureError, match="no such interface: cstnonexist0"):
        AfPacketSource("cstnonexist0")


def test_interface_down(pair: VethPair) -> None:
    ip("link", "set", pair.host, "down")
    with pytest.raises(CaptureError, match=rf"interface {pair.host} is down.*ip link set"):
        AfPacketSource(pair.host)


def test_ring_too_large_is_a_clear_error(pair: VethPair) -> None:
    with pytest.raises(CaptureError, match="too large"):
        AfPacketSource(pair.host, ring_size=1 << 42, block_size=1 << 22)
    with pytest.raises(ValueError, match="too large"):
        AfPacketSource(pair.host, ring_size=1 << 50, block_size=1 << 22)


def test_fanout_members_must_agree_on_the_mode(pair: VethPair) -> None:
    group = secrets.randbelow(60000) + 1
    first = source(pair.host, fanout=(group, "hash"))
    try:
        with pytest.raises(CaptureError, match=f"fanout group {group}"):
            source(pair.host, fanout=(group, "lb"))
    finally:
        asyncio.run(first.aclose())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"fanout": (1, "spray")}, "fanout mode"),
        ({"fanout": (1, "hash+sticky")}, "fanout flag"),
        ({"fanout": (70000, "hash")}, "group id"),
        ({"block_size": 1000}, "page size"),
    ],
)
def test_bad_arguments(pair: VethPair, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AfPacketSource(pair.host, **kwargs)  # type: ignore[arg-type]


def test_without_cap_net_raw_says_so(pair: VethPair) -> None:
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv")
    program = (
        "from capsvc import PermissionNeededError\n"
        "from capsvc.sources.afpacket._source import AfPacketSource\n"
        f"try:\n AfPacketSource({pair.host!r})\n"
        "except PermissionNeededError as e:\n print(e)\n"
    )
    root = str(Path(__file__).resolve().parents[3])
    result = subprocess.run(
        # root without CAP_NET_RAW (in neither the bounding nor the inheritable set)
        [
            "setpriv",
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            sys.executable,
            "-c",
            program,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": root},
        cwd="/",
    )
    assert "needs CAP_NET_RAW" in result.stdout, result.stderr
    assert PermissionNeededError.__mro__[1] is CaptureError


LOOPBACK_PROGRAM = """
import asyncio, socket, sys
from capsvc.sources.afpacket._source import AfPacketSource

async def main(interface, direction):
    src = AfPacketSource(interface, direction=direction, ring_size=1 << 21, block_size=1 << 16)
    got = []
    async def read():
        async for batch in src:
            # UDP only: the ICMP port-unreachable replies quote the datagram too. The IP
            # header follows 14 bytes of Ethernet on lo, 20 of LINUX_SLL2 on "any".
            ip = 20 if interface == "any" else 14
            got.extend(p for p in batch if p.data[ip + 9] == 17 and b"capsvc-lo" in p.data)
    task = asyncio.create_task(read())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(5):
            s.sendto(b"capsvc-lo%d" % i, ("127.0.0.1", 9999))
    await asyncio.sleep(0.5)
    await src.aclose()
    await task
    print(len(got), ",".join(str(p.direction) for p in got))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize(
    ("interface", "direction", "expected"),
    [("lo", "inout", "IN"), ("lo", "out", "OUT"), ("any", "inout", "IN")],
)
def test_loopback_shows_each_packet_once(
    pair: VethPair, interface: str, direction: str, expected: str
) -> None:
    # The namespace's own loopback: nothing but these datagrams (and their ICMP) crosses it.
    out = pair.exec(sys.executable, "-c", LOOPBACK_PROGRAM, interface, direction, timeout=30)
    count, directions = out.stdout.decode().split()
    assert int(count) == 5
    assert set(directions.split(",")) == {expected}
