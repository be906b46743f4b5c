"""libpcap live captures on a private veth pair: filters, directions, timeouts, stats, injection,
and LibpcapSource feeding a Session.

Each test uses its own UDP ports and a kernel filter on them, so tests sharing the pair never see
each other's packets.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _helpers import MAC_A, ether, ipv4, udp
from _netns import VethPair, veth_pair

from capsvc import Direction, LinkType, Session
from capsvc.sources import libpcap
from capsvc.sources.libpcap._source import LibpcapSource

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def pair() -> Iterator[VethPair]:
    with veth_pair() as p:
        yield p


def frames(pair: VethPair, dport: int, count: int, *, size: int = 20) -> list[bytes]:
    """UDP frames from the peer's address to port ``dport``, payloads numbered."""
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, dport, i.to_bytes(4, "big") * (size // 4))),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        for i in range(count)
    ]


def read_n(handle: libpcap.Handle, n: int) -> list[tuple[bytes, libpcap.CaptureInfo]]:
    return [handle.read_packet_data() for _ in range(n)]


def test_open_live_filter_passes_only_expected(pair: VethPair) -> None:
    with libpcap.open_live(pair.host, 0, True, 0.3) as handle:
        assert handle.link_type == 1
        assert handle.snaplen == 262144
        assert any(d.name == "EN10MB" for d in handle.list_data_links())
        handle.set_bpf_filter("udp dst port 7001")
        wanted = frames(pair, 7001, 5)
        others = frames(pair, 7002, 5)
        pair.send_from_peer([f for two in zip(wanted, others, strict=True) for f in two])
        got = read_n(handle, 5)
        assert [d for d, _ in got] == wanted
        assert all(ci.interface_index == pair.host_index for _, ci in got)
        assert all(abs(ci.timestamp_ns - time.time_ns()) < 10**10 for _, ci in got)
        with pytest.raises(libpcap.TimeoutExpiredError):
            handle.read_packet_data()
        assert handle.stats().packets_received == 5


def test_inactive_handle_immediate_mode_and_buffer(pair: VethPair) -> None:
    with libpcap.InactiveHandle(pair.host) as inactive:
        inactive.set_snaplen(64)
        inactive.set_promisc(False)
        inactive.set_timeout(2.0)
        inactive.set_immediate_mode(True)
        inactive.set_buffer_size(4 * 1024 * 1024)
        inactive.set_timestamp_precision("nano")
        assert all(isinstance(t, int) for t in inactive.supported_timestamps())
        with pytest.raises(ValueError):
            inactive.set_timestamp_precision("pico")
        with pytest.raises(libpcap.CannotSetRFMonError):
            inactive.set_rfmon(True)
        handle = inactive.activate()
    with handle:
        assert handle.snaplen == 64
        assert handle.nanosecond
        handle.set_bpf_filter("udp dst port 7003")
        sent = frames(pair, 7003, 1, size=200)
        start = time.monotonic()
        pair.send_from_peer(sent)
        data, ci = handle.read_packet_data()
        # Immediate mode: the packet comes long before the 2 s buffer timeout.
        assert time.monotonic() - start < 1.5
        assert data == sent[0][:64]
        assert (ci.capture_length, ci.length) == (64, len(sent[0]))


def test_activate_unknown_device_raises() -> None:
    with (
        libpcap.InactiveHandle("cstnosuchdev0") as inactive,
        pytest.raises(libpcap.NoSuchDeviceError, match="cstnosuchdev0"),
    ):
        inactive.activate()


def test_zero_timeout_waits_for_a_packet_and_block_forever_delivers(pair: VethPair) -> None:
    """0 is libpcap's and gopacket's "no timeout": a read waits until a packet comes."""
    with libpcap.open_live(pair.host, 0, False, 0) as handle:
        handle.set_bpf_filter("udp dst port 7004")
        late = frames(pair, 7004, 1)
        timer = threading.Timer(0.6, pair.send_from_peer, (late,))
        start = time.monotonic()
        timer.start()
        try:
            data, _ = handle.read_packet_data()
        finally:
            timer.join()
        assert data == late[0]
        assert time.monotonic() - start >= 0.5
    with libpcap.open_live(pair.host, 0, False, libpcap.BLOCK_FOREVER) as handle:
        handle.set_bpf_filter("udp dst port 7004")
        sent = frames(pair, 7004, 3)
        pair.send_from_peer(sent)
        assert [d for d, _ in read_n(handle, 3)] == sent


def test_direction_in_and_out(pair: VethPair) -> None:
    inbound = frames(pair, 7005, 3)
    outbound = [ether(ipv4("10.200.0.1", pair.peer_ip, udp(7005, 40000, b"out")), src=MAC_A)] * 2
    with (
        libpcap.open_live(pair.host, 0, False, 0.3) as h_in,
        libpcap.open_live(pair.host, 0, False, 0.3) as h_out,
    ):
        for handle, way in ((h_in, Direction.INBOUND), (h_out, Direction.OUTBOUND)):
            handle.set_bpf_filter("udp port 7005")
            handle.set_direction(way)
            assert handle.direction == way
        pair.send_from_peer(inbound)
        pair.send_from_host(outbound)
        assert [d for d, _ in read_n(h_in, 3)] == inbound
        assert [d for d, _ in read_n(h_out, 2)] == outbound
        for handle in (h_in, h_out):
            with pytest.raises(libpcap.TimeoutExpiredError):
                handle.read_packet_data()


RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((sys.argv[1], 0))
s.settimeout(5)
print("ready", flush=True)
while True:
    data = s.recv(65535)
    if b"capsvc-inject" in data:
        print(data.hex(), flush=True)
        break
"""


def test_write_packet_data_arrives_on_the_peer(pair: VethPair) -> None:
    frame = ether(
        ipv4("10.200.0.1", pair.peer_ip, udp(7006, 7006, b"capsvc-inject")),
        src=pair.host_mac,
        dst=pair.peer_mac,
    )
    receiver = pair.popen(sys.executable, "-c", RECEIVER, pair.peer, stdout=subprocess.PIPE)
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == b"ready"
        with libpcap.open_live(pair.host, 0, False, 0.3) as handle:
            handle.write_packet_data(frame)
        out, _ = receiver.communicate(timeout=10)
    finally:
        receiver.kill()
        receiver.wait()
    assert bytes.fromhex(out.decode().strip()) == frame


async def test_source_feeds_a_session_and_tcpdump_reads_it(pair: VethPair, tmp_path: Path) -> None:
    out = tmp_path / "live.pcap"
    source = LibpcapSource(
        pair.host, filter="udp dst port 7007", direction=Direction.INBOUND, timeout_ms=20
    )
    assert (source.live, source.linktype, source.snaplen) == (True, LinkType.ETHERNET, 262144)
    sent = frames(pair, 7007, 200, size=100)
    async with Session(output=out, source=source) as session:
        await asyncio.to_thread(pair.send_from_peer, sent)
        async with asyncio.timeout(5):
            while session.stats().packets < len(sent):
                await asyncio.sleep(0.02)
        stats = session.stats()
    assert (stats.packets, stats.received, stats.kernel_dropped) == (200, 200, 0)
    with libpcap.open_offline(out) as handle:
        assert [d for d, _ in handle] == sent
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump (the file was checked with libpcap above)")
    text = subprocess.run(
        ["tcpdump", "-nn", "-r", str(out)], check=True, capture_output=True, text=True
    ).stdout
    assert len(text.splitlines()) == 200
    assert "IP 10.200.0.2.40000 > 10.200.0.1.7007:" in text


async def test_source_batches_carry_direction_and_ifindex(pair: VethPair) -> None:
    source = LibpcapSource(pair.host, filter="udp dst port 7008", direction=Direction.INBOUND)
    sent = frames(pair, 7008, 10)
    got = []

    async def collect() -> None:
        async for batch in source:
            got.extend(batch)
            if len(got) >= len(sent):
                return

    task = asyncio.create_task(collect())
    await asyncio.to_thread(pair.send_from_peer, sent)
    async with asyncio.timeout(5):
        await task
    await source.aclose()
    assert [p.data for p in got] == sent
    assert {(p.direction, p.ifindex) for p in got} == {(Direction.INBOUND, pair.host_index)}
    assert all(p.wire_len == len(p.data) for p in got)


async def test_source_stops_promptly_on_a_silent_interface(pair: VethPair, tmp_path: Path) -> None:
    source = LibpcapSource(pair.host, filter="udp dst port 7009", timeout_ms=1000)
    session = Session(output=tmp_path / "silent.pcap", source=source)
    await session.start()
    await asyncio.sleep(0.2)
    start = time.monotonic()
    await session.stop()
    assert time.monotonic() - start < 0.5
    assert session.source_error is None
    assert source.handle.closed
    await source.aclose()  # idempotent
    assert source.stats().received == 0


def test_iterating_a_live_handle_and_listing_it(pair: VethPair) -> None:
    assert pair.host in {d.name for d in libpcap.find_all_devs()}
    with libpcap.open_live(pair.host, 0, False, 0.2) as handle:
        handle.set_bpf_filter("udp dst port 7010")
        sent = frames(pair, 7010, 4)
        pair.send_from_peer(sent)
        got = []
        for data, ci in handle:  # timeouts do not end a live iteration
            got.append(data)
            assert ci.length == len(data)
            if len(got) == len(sent):
                break
    assert got == sent


@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)")
def test_without_cap_net_raw_the_error_says_so(pair: VethPair) -> None:
    code = (
        "from capsvc.sources import libpcap\n"
        "try:\n"
        f"    libpcap.open_live({pair.host!r}, 0, False, 0.1)\n"
        "except libpcap.LibpcapPermissionError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        ["setpriv", "--bounding-set=-net_raw,-net_admin", sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[3],
    ).stdout
    assert "You don't have permission" in out
    assert "needs CAP_NET_RAW" in out
