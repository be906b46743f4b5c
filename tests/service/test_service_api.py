"""The HTTP API on a real server (127.0.0.1, random port), real client, capture in a namespace."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
import struct
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _netns import VethPair
from _service import Served, Starter, frames, read_pcap_numbers, session_spec, tcpdump_read
from prometheus_client.parser import text_string_to_metric_families

from capsvc._errors import BackendUnavailableError
from capsvc.sources.pfring import _ffi as pfring_ffi

pytestmark = pytest.mark.netns


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def stats_of(srv: Served, name: str) -> dict[str, Any]:
    status, body = await srv.get(f"/v1/sessions/{name}/stats")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def send(vp: VethPair, batch: list[bytes], gap: float = 0.0) -> None:
    await asyncio.to_thread(vp.send_from_peer, batch, gap=gap)


# -- authentication -------------------------------------------------------------------------

ROUTES = [
    ("GET", "/v1/sessions"),
    ("POST", "/v1/sessions"),
    ("GET", "/v1/sessions/x"),
    ("GET", "/v1/sessions/x/stats"),
    ("DELETE", "/v1/sessions/x"),
    ("GET", "/v1/sessions/x/pcap"),
    ("GET", "/v1/capture?interface=lo&duration=1"),
    ("GET", "/metrics"),
    ("POST", "/v1/sessions/x/dump"),
    ("GET", "/v1/sessions/x/conversations"),
    ("GET", "/v1/sessions/x/series"),
]


async def test_every_route_but_healthz_needs_the_token(serve: Starter) -> None:
    """Mutation guarded: the token compared by prefix (``Bearer `` with nothing after it, or a
    truncated token, accepted)."""
    srv = await serve()
    async with srv.client.get(srv.url + "/healthz") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "ok"
    wrong = [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Bearer {srv.token}x"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {srv.token[:-1]}"},
        {"Authorization": f"Bearer {srv.token[:1]}"},
        {"Authorization": f"Basic {srv.token}"},
        {"Authorization": srv.token},
    ]
    for method, path in ROUTES:
        for headers in wrong:
            async with srv.client.request(method, srv.url + path, headers=headers) as resp:
                assert resp.status == 401, (method, path, headers)
                assert "token" in (await resp.json())["error"]
    status, body = await srv.get("/v1/sessions")
    assert status == 200 and body == {"sessions": []}
    assert stat.S_IMODE(os.stat(srv.output_dir.parent / "token").st_mode) == 0o600


# -- sessions ----------------------------------------------------------------------------------


async def test_session_lifecycle_writes_every_packet(serve: Starter, veth: VethPair) -> None:
    srv = await serve()
    status, info = await srv.post("/v1/sessions", session_spec("life", veth.host))
    assert status == 201, info
    assert info["state"] == "running" and info["linktype"] == "ethernet"
    status, listed = await srv.get("/v1/sessions")
    assert [s["name"] for s in listed["sessions"]] == ["life"]

    await send(veth, frames(veth, 50))

    async def all_in() -> bool:
        return bool((await stats_of(srv, "life"))["stats"]["packets"] >= 50)

    await wait_for(all_in)
    status, final = await srv.delete("/v1/sessions/life")
    assert status == 200 and final["state"] == "stopped"
    path = srv.output_dir / "life.pcap"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert sorted(read_pcap_numbers(data)) == list(range(50))
    assert len(tcpdump_read(data)) == final["stats"]["packets"] == final["stats"]["written"]
    assert (await srv.get("/v1/sessions/life"))[0] == 404


async def test_spec_errors(serve: Starter, veth: VethPair, tmp_path: Path) -> None:
    srv = await serve(service={"max_sessions": 2})
    assert (await srv.post("/v1/sessions", session_spec("a", veth.host)))[0] == 201

    status, body = await srv.post("/v1/sessions", session_spec("a", veth.host))
    assert status == 409 and "already running" in body["error"]

    status, body = await srv.post("/v1/sessions", {"name": "b", "source": {"type": "raw"}})
    assert status == 400 and "source.type" in body["error"]
    async with srv.client.post(
        srv.url + "/v1/sessions", data=b"{not json", headers=srv.auth()
    ) as resp:
        assert resp.status == 400 and "JSON" in (await resp.json())["error"]
    status, body = await srv.post("/v1/sessions", [1, 2])
    assert status == 400

    status, body = await srv.post("/v1/sessions", session_spec("b", "cstnosuch0"))
    assert status == 404 and "cstnosuch0" in body["error"]

    spec = session_spec("b", veth.host, sinks=[{"type": "pcap", "path": "../escape.pcap"}])
    status, body = await srv.post("/v1/sessions", spec)
    assert status == 403 and "outside" in body["error"]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (srv.output_dir / "link").symlink_to(outside)
    spec = session_spec("b", veth.host, sinks=[{"type": "pcap", "path": "link/x.pcap"}])
    status, body = await srv.post("/v1/sessions", spec)
    assert status == 403
    (srv.output_dir / "trap.pcap").symlink_to(outside / "trap.pcap")
    spec = session_spec("b", veth.host, sinks=[{"type": "pcap", "path": "trap.pcap"}])
    assert (await srv.post("/v1/sessions", spec))[0] == 403
    assert list(outside.iterdir()) == []

    for path in ("/v1/sessions/zz", "/v1/sessions/zz/stats", "/v1/sessions/zz/pcap"):
        status, body = await srv.get(path)
        assert status == 404 and "zz" in body["error"]
    assert (await srv.delete("/v1/sessions/zz"))[0] == 404

    assert (await srv.post("/v1/sessions", session_spec("b", veth.host)))[0] == 201
    status, body = await srv.post("/v1/sessions", session_spec("c", veth.host))
    assert status == 409 and "limit" in body["error"]
    assert [s.name for s in srv.service.sessions()] == ["a", "b"]


async def test_bad_filter_is_400_with_caret(serve: Starter, veth: VethPair) -> None:
    srv = await serve()
    status, body = await srv.post("/v1/sessions", session_spec("f", veth.host, filter="udp port"))
    assert status == 400 and "^" in body["error"]
    assert (await srv.post("/v1/sessions", session_spec("f", veth.host)))[0] == 201
    status, body = await srv.get("/v1/sessions/f/pcap", params={"filter": "tcp and and"})
    assert status == 400 and "^" in body["error"]


async def test_duration_is_capped_for_api_sessions(serve: Starter, veth: VethPair) -> None:
    srv = await serve(service={"max_duration": 0.5})
    status, info = await srv.post("/v1/sessions", session_spec("short", veth.host, duration=600))
    assert status == 201 and info["duration"] == 0.5

    async def stopped() -> bool:
        return bool((await srv.get("/v1/sessions/short"))[1]["state"] == "stopped")

    await wait_for(stopped, timeout=5)
    assert (srv.output_dir / "short.pcap").exists()
    status, final = await srv.delete("/v1/sessions/short")
    assert status == 200 and final["state"] == "stopped"
    assert (await srv.get("/v1/sessions/short"))[0] == 404


# -- live streams ------------------------------------------------------------------------------


async def read_stream(resp: aiohttp.ClientResponse) -> bytes:
    return await resp.content.read()


async def test_live_stream_is_a_pcap_tcpdump_reads(serve: Starter, veth: VethPair) -> None:
    srv = await serve()
    await srv.post("/v1/sessions", session_spec("live", veth.host, sinks=[]))
    url = srv.url + "/v1/sessions/live/pcap"
    flow = {"filter": "udp src port 20001"}
    async with (
        srv.client.get(url, headers=srv.auth()) as resp,
        srv.client.get(url, headers=srv.auth(), params=flow) as filtered,
    ):
        assert resp.status == 200 and filtered.status == 200
        assert resp.headers["Content-Type"] == "application/vnd.tcpdump.pcap"
        header = await resp.content.readexactly(24)
        assert header[:4] == bytes.fromhex("4d3cb2a1")  # nanosecond pcap, little-endian
        await send(veth, frames(veth, 40, flows=4))

        async def delivered() -> bool:
            subs = (await stats_of(srv, "live"))["subscribers"]
            return len(subs) == 2 and subs[0]["packets"] >= 40 and subs[1]["filtered"] >= 30

        await wait_for(delivered)
        async with srv.client.get(srv.url + "/metrics", headers=srv.auth()) as metrics:
            families = {f.name: f for f in text_string_to_metric_families(await metrics.text())}
        assert families["capsvc_subscribers"].samples[0].value == 2
        subs = (await stats_of(srv, "live"))["subscribers"]
        assert subs[1]["filter"] == "udp src port 20001"
        assert (subs[1]["packets"], subs[1]["filtered"]) == (10, 30)
        await srv.delete("/v1/sessions/live")
        body = header + await read_stream(resp)
        one_flow = await read_stream(filtered)
    lines = tcpdump_read(body)
    assert len([line for line in lines if ".9000:" in line]) == 40
    assert sorted(read_pcap_numbers(body)) == list(range(40))
    assert read_pcap_numbers(one_flow) == list(range(1, 40, 4))
    assert all(".20001 > " in line for line in tcpdump_read(one_flow))


def small_buffer_socket(info: Any) -> socket.socket:
    family, kind, proto, *_ = info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def test_slow_subscriber_loses_only_its_own_packets(serve: Starter, veth: VethPair) -> None:
    srv = await serve()
    await srv.post("/v1/sessions", session_spec("fan", veth.host))
    url = srv.url + "/v1/sessions/fan/pcap"
    count = 3000
    # The slow client reads nothing until the end, through a small receive buffer.
    slow_client = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(socket_factory=small_buffer_socket),
        read_bufsize=4096,
    )
    async with (
        slow_client,
        slow_client.get(url, headers=srv.auth(), params={"queue": "64"}) as slow,
        srv.client.get(url, headers=srv.auth()) as fast,
    ):
        fast_body = bytearray(await fast.content.readexactly(24))

        async def drain_fast() -> None:
            while chunk := await fast.content.read(65536):
                fast_body.extend(chunk)

        reader = asyncio.create_task(drain_fast())
        await send(veth, frames(veth, count, size=1400), gap=0.0002)

        async def settled() -> bool:
            s = await stats_of(srv, "fan")
            subs = s["subscribers"]
            return bool(s["stats"]["written"] >= count and subs[1]["packets"] >= count)

        await wait_for(settled, timeout=20)
        snapshot = await stats_of(srv, "fan")
        slow_stats, fast_stats = snapshot["subscribers"]
        assert snapshot["stats"]["dropped"] == 0 and snapshot["stats"]["packets"] >= count
        assert fast_stats["dropped"] == 0
        assert slow_stats["dropped"] > 0
        final = (await srv.delete("/v1/sessions/fan"))[1]
        await reader
        slow_body = await slow.content.read()
    assert sorted(read_pcap_numbers(bytes(fast_body))) == list(range(count))
    slow_numbers = read_pcap_numbers(slow_body)
    assert len(slow_numbers) == slow_stats["packets"] + slow_stats["queued"]
    assert len(slow_numbers) + slow_stats["dropped"] == final["stats"]["packets"]
    file_data = (srv.output_dir / "fan.pcap").read_bytes()
    assert sorted(read_pcap_numbers(file_data)) == list(range(count))
    assert bytes(fast_body) == file_data  # the stream carries the file's own records


async def test_subscriber_limit(serve: Starter, veth: VethPair) -> None:
    srv = await serve(service={"max_subscribers": 1})
    await srv.post("/v1/sessions", session_spec("one", veth.host, sinks=[]))
    url = srv.url + "/v1/sessions/one/pcap"
    async with srv.client.get(url, headers=srv.auth()) as first:
        assert first.status == 200
        status, body = await srv.get("/v1/sessions/one/pcap")
        assert status == 409 and "subscriber limit" in body["error"]
        status, body = await srv.get("/v1/capture", params={"interface": veth.host})
        assert status == 409
    await srv.delete("/v1/sessions/one")
    assert srv.service.subscriber_count == 0


# -- ad hoc captures ---------------------------------------------------------------------------


async def test_adhoc_capture_pcap(serve: Starter, veth: VethPair) -> None:
    srv = await serve(service={"max_duration": 1.5})
    params = {"interface": veth.host, "snaplen": "60"}  # no duration: max_duration, said so
    started = time.monotonic()
    async with srv.client.get(srv.url + "/v1/capture", params=params, headers=srv.auth()) as resp:
        assert resp.status == 200
        assert resp.headers["X-Capsvc-Duration"] == "1.5"
        header = await resp.content.readexactly(24)
        await send(veth, frames(veth, 20, size=200))
        body = header + await resp.content.read()
    assert time.monotonic() - started < 10  # ended after 1.5 s
    assert struct.unpack_from("<I", body, 16)[0] == 60  # the header's snaplen
    sizes = []
    offset = 24
    while offset < len(body):
        incl, orig = struct.unpack_from("<II", body, offset + 8)
        sizes.append((incl, orig))
        offset += 16 + incl
    assert sizes.count((60, 200)) == 20  # truncated to 60 bytes, the wire length kept
    lines = tcpdump_read(body)
    assert len([line for line in lines if ".9000:" in line]) == 20
    assert sorted(read_pcap_numbers(body)) == list(range(20))

    async def gone() -> bool:
        return bool(srv.service.sessions() == [])

    await wait_for(gone, timeout=5)


async def test_adhoc_capture_text(serve: Starter, veth: VethPair) -> None:
    """Two bursts, so two batches: every line whole. Mutation guarded: the text buffer not
    emptied between batches (a stale character before the second batch's lines)."""
    srv = await serve()
    params = {"interface": veth.host, "duration": "1.5", "format": "text"}
    async with srv.client.get(srv.url + "/v1/capture", params=params, headers=srv.auth()) as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Capsvc-Session"].startswith("capture")
        await asyncio.sleep(0.2)
        await send(veth, frames(veth, 5))
        await asyncio.sleep(0.5)
        await send(veth, frames(veth, 5, start=5))
        text = (await resp.content.read()).decode()
    lines = [line for line in text.splitlines() if ":9000" in line]
    assert len(lines) == 10 and text.count(f"{veth.peer_ip}:20000 > 10.200.0.1:9000") == 10
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{6} ", line) for line in lines), lines


async def test_adhoc_capture_ends_when_the_client_goes(serve: Starter, veth: VethPair) -> None:
    srv = await serve()
    params = {"interface": veth.host, "duration": "60"}
    async with srv.client.get(srv.url + "/v1/capture", params=params, headers=srv.auth()) as resp:
        await resp.content.readexactly(24)
        assert len(srv.service.sessions()) == 1
        resp.close()

    async def gone() -> bool:
        return bool(srv.service.sessions() == [] and srv.service.subscriber_count == 0)

    await wait_for(gone, timeout=5)


async def test_adhoc_capture_errors(serve: Starter) -> None:
    srv = await serve()
    assert (await srv.get("/v1/capture"))[0] == 400
    assert (await srv.get("/v1/capture", params={"interface": "cstnosuch0"}))[0] == 404
    assert (await srv.get("/v1/capture", params={"interface": "lo", "format": "x"}))[0] == 400
    assert (await srv.get("/v1/capture", params={"interface": "lo", "duration": "-1"}))[0] == 400
    status, body = await srv.get("/v1/capture", params={"interface": "lo", "filter": "port"})
    assert status == 400 and "^" in body["error"]
    assert srv.service.sessions() == []


# -- metrics -----------------------------------------------------------------------------------


async def test_metrics_are_labelled_per_session(serve: Starter, veth: VethPair) -> None:
    srv = await serve()
    await srv.post("/v1/sessions", session_spec("m1", veth.host))
    await srv.post("/v1/sessions", session_spec("m2", veth.host, sinks=[]))
    await send(veth, frames(veth, 30))

    async def counted() -> bool:
        m1 = (await stats_of(srv, "m1"))["stats"]["written"]
        m2 = (await stats_of(srv, "m2"))["stats"]["written"]
        return bool(m1 >= 30 and m2 >= 30)

    await wait_for(counted)
    async with srv.client.get(srv.url + "/metrics", headers=srv.auth()) as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "capsvc_accepted_packets",
        "capsvc_accepted_bytes",
        "capsvc_dropped_packets",
        "capsvc_filtered_packets",
        "capsvc_sink_errors",
        "capsvc_subscribers",
    ):
        assert name in families, name
    packets = {s.labels["session"]: s.value for s in families["capsvc_accepted_packets"].samples}
    expected = {n: (await stats_of(srv, n))["stats"]["packets"] for n in ("m1", "m2")}
    assert packets == expected and min(packets.values()) >= 30
    assert families["capsvc_accepted_packets"].type == "counter"
    assert families["capsvc_sessions"].samples[0].value == 2


def _pfring_loads() -> bool:
    try:
        pfring_ffi.lib()
    except BackendUnavailableError:
        return False
    return True


@pytest.mark.parametrize("backend", ["libpcap", "pfring"])
async def test_other_live_backends(serve: Starter, veth: VethPair, backend: str) -> None:
    """libpcap is always there (setup.sh installs it): a 503 for it is a failure, not a skip.
    PF_RING answers 503 naming itself exactly where its library does not load here."""
    srv = await serve()
    spec = session_spec(backend, veth.host, filter="udp port 9000")
    spec["source"]["type"] = backend
    status, body = await srv.post("/v1/sessions", spec)
    if backend == "pfring" and not _pfring_loads():
        assert status == 503 and "PF_RING" in body["error"], body  # it says what to install
        assert srv.service.sessions() == []
        return
    assert status == 201, body
    await send(veth, frames(veth, 30))

    async def written() -> bool:
        return bool((await stats_of(srv, backend))["stats"]["written"] >= 30)

    await wait_for(written)
    await srv.delete(f"/v1/sessions/{backend}")
    data = (srv.output_dir / f"{backend}.pcap").read_bytes()
    assert sorted(read_pcap_numbers(data)) == list(range(30))
