"""The HTTP layer's own rules, without a test network: error bodies, the request size bound,
/metrics without the token when so configured, the stats body, query numbers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _service import Starter

from capsvc import Direction, LinkType, Packet
from capsvc.service import CaptureService, parse_config
from capsvc.service._http import TokenRef, build_app
from capsvc.service._server import make_runner, start_site
from capsvc.sinks import PcapWriter


async def test_errors_are_json_with_their_status(serve: Starter) -> None:
    """Mutation guarded: the body's ``status`` key renamed."""
    srv = await serve()
    status, body = await srv.get("/v1/sessions/zz")
    assert status == 404 and body == {"error": body["error"], "status": 404}
    assert "zz" in body["error"]
    async with srv.client.get(srv.url + "/nowhere", headers=srv.auth()) as resp:
        assert resp.status == 404 and await resp.json() == {"error": "Not Found", "status": 404}
    async with srv.client.put(srv.url + "/v1/sessions", headers=srv.auth()) as resp:
        assert resp.status == 405 and (await resp.json())["status"] == 405
    async with srv.client.get(srv.url + "/v1/sessions") as resp:
        assert resp.status == 401 and resp.headers["WWW-Authenticate"] == 'Bearer realm="capsvc"'


async def test_the_analysis_routes_answer_for_the_services_sessions(serve: Starter) -> None:
    """``build_app`` gives the analysis routes (conversations, series, dump) the service:
    they answer 404 for a session it does not have, 409 for one it has without the sink
    asked about (no conversations, no flight recorder), each as JSON naming the session, and
    a session's series (always kept) under its name.

    Mutation guarded: the analysis routes set up without the service (`build_app` 17: every
    answer a 500)."""
    srv = await serve()
    write_trace(srv.output_dir / "slow.pcap", 3, 2 * 10**9)
    spec = {"name": "f", "source": {"type": "file", "path": "slow.pcap", "realtime": True}}
    status, _ = await srv.post("/v1/sessions", {**spec, "sinks": []})
    assert status == 201
    for method, path in (("get", "conversations"), ("get", "series"), ("post", "dump")):
        ask = (
            srv.get(f"/v1/sessions/zz/{path}")
            if method == "get"
            else srv.post(f"/v1/sessions/zz/{path}", {})
        )
        status, body = await ask
        assert (status, body) == (404, {"error": "no session named 'zz'", "status": 404})
    status, body = await srv.get("/v1/sessions/f/conversations")
    assert status == 409 and "'f'" in body["error"] and "conversations" in body["error"]
    status, body = await srv.post("/v1/sessions/f/dump", {})
    assert status == 409 and "'f'" in body["error"], body
    status, body = await srv.get("/v1/sessions/f/series")
    assert status == 200 and body["session"] == "f" and body["seconds"] == 600
    status, _ = await srv.delete("/v1/sessions/f")
    assert status == 200


async def test_a_body_over_the_bound_is_413(serve: Starter) -> None:
    """Mutation guarded: the application built without the configured body bound."""
    srv = await serve(service={"max_request_bytes": 1024})
    big = {"name": "x", "padding": "p" * 1100}
    async with srv.client.post(srv.url + "/v1/sessions", json=big, headers=srv.auth()) as resp:
        assert resp.status == 413 and (await resp.json())["status"] == 413
    small = {"name": "x"}
    async with srv.client.post(srv.url + "/v1/sessions", json=small, headers=srv.auth()) as resp:
        assert resp.status == 400  # read and refused for what it says, not for its size


async def _built_app(tmp_path: Path, **options: bool) -> AsyncIterator[str]:
    """A server of ``build_app(service, TokenRef("secret"), **options)`` on 127.0.0.1;
    yields its URL."""
    config = parse_config(
        {"service": {"listen": "127.0.0.1:0", "output_dir": "out"}},
        origin="t.toml",
        cwd=str(tmp_path),
    )
    service = CaptureService(config)
    await service.start()
    runner = make_runner(build_app(service, TokenRef("secret"), **options), config.service)
    await runner.setup()
    try:
        yield await start_site(runner, config.service)
    finally:
        await service.stop()
        await runner.cleanup()


@pytest.fixture
async def open_metrics(tmp_path: Path) -> AsyncIterator[str]:
    """A server whose /metrics needs no token (metrics_auth False); yields its URL."""
    async for url in _built_app(tmp_path, metrics_auth=False):
        yield url


async def test_metrics_without_the_token_when_configured(open_metrics: str) -> None:
    """Mutations guarded: every path but /metrics let through, /metrics spelled otherwise, the
    API document not told /metrics is public."""
    async with aiohttp.ClientSession() as client:
        async with client.get(open_metrics + "/metrics") as resp:
            assert resp.status == 200 and "capsvc_sessions" in await resp.text()
        for path in ("/v1/sessions", "/METRICS", "/metrics/x"):
            async with client.get(open_metrics + path) as resp:
                assert resp.status == 401, path
        async with client.get(
            open_metrics + "/openapi.json", headers={"Authorization": "Bearer secret"}
        ) as resp:
            doc = await resp.json()
    assert doc["paths"]["/metrics"]["get"]["security"] == []
    assert doc["paths"]["/v1/sessions"]["get"]["security"] == [{"bearer": []}]


def write_trace(path: Path, count: int, gap_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        writer = PcapWriter(f, 0, LinkType.RAW, nanosecond=True)
        frame = b"\x45" + bytes(19)
        start = time.time_ns()
        writer.write_batch(
            [Packet(start + i * gap_ns, frame, 20, Direction.INBOUND, 0) for i in range(count)]
        )


async def test_the_stats_body(serve: Starter) -> None:
    srv = await serve()
    write_trace(srv.output_dir / "slow.pcap", 3, 2 * 10**9)  # replayed over 4 s
    spec: dict[str, Any] = {
        "name": "f",
        "source": {"type": "file", "path": "slow.pcap", "realtime": True},
        "sinks": [],
    }
    status, _ = await srv.post("/v1/sessions", spec)
    assert status == 201
    status, body = await srv.get("/v1/sessions/f/stats")
    assert status == 200 and set(body) == {"name", "state", "stats", "subscribers"}
    assert (body["name"], body["state"], body["subscribers"]) == ("f", "running", [])
    assert set(body["stats"]) >= {"packets", "dropped", "written"}
    status, body = await srv.delete("/v1/sessions/f")
    assert status == 200 and (body["name"], body["state"]) == ("f", "stopped")
    assert body["stats"]["packets"] <= 3


async def test_a_finished_session_reads_stopped(serve: Starter) -> None:
    srv = await serve()
    write_trace(srv.output_dir / "quick.pcap", 2, 1000)
    spec = {"name": "q", "source": {"type": "file", "path": "quick.pcap"}, "sinks": []}
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    for _ in range(200):
        status, body = await srv.get("/v1/sessions/q/stats")
        if body["state"] == "stopped":
            break
        await asyncio.sleep(0.02)
    assert (status, body["state"], body["stats"]["packets"]) == (200, "stopped", 2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"duration": "1" * 33}, "request: duration: not a number (too long)"),
        (
            {"duration": "1" * 32},
            f"request: duration: must be a number between 0 and 1e9, got {'1' * 32}",
        ),
        (
            {"duration": "1000000001"},
            "request: duration: must be a number between 0 and 1e9, got 1000000001",
        ),
        ({"duration": "1e9"}, "request: duration: must be at most 3600 (max_duration)"),
        ({"duration": "-1"}, "request: duration: must be a number between 0 and 1e9, got -1"),
        ({"duration": "nan"}, "request: duration: must be a number between 0 and 1e9, got nan"),
        ({"duration": "x"}, "request: duration: not a number: 'x'"),
        ({"duration": "1", "snaplen": "1.5"}, "request: snaplen: not a number: '1.5'"),
        ({"duration": "1", "snaplen": "262145"}, "request: snaplen: must be at most 262144"),
    ],
)
async def test_query_numbers(serve: Starter, params: dict[str, str], message: str) -> None:
    """Mutations guarded: the length bound, the range's ends, integers read as floats, and
    every part of the messages."""
    srv = await serve()
    status, body = await srv.get("/v1/capture", params={"interface": "lo", **params})
    assert (status, body) == (400, {"error": message, "status": 400})
    assert srv.service.sessions() == []


@pytest.fixture
async def default_app(tmp_path: Path) -> AsyncIterator[str]:
    """A server built with ``build_app``'s defaults (no ``metrics_auth`` given); yields its
    URL."""
    async for url in _built_app(tmp_path):
        yield url


async def test_metrics_need_the_token_by_default(default_app: str) -> None:
    """``build_app``'s ``metrics_auth`` defaults to True: /metrics needs the token, and the
    API document says so. Mutations guarded: the default False (`build_app` 1), the document
    told None for it (21)."""
    auth = {"Authorization": "Bearer secret"}
    async with aiohttp.ClientSession() as client:
        async with client.get(default_app + "/metrics") as resp:
            assert resp.status == 401
        async with client.get(default_app + "/metrics", headers=auth) as resp:
            assert resp.status == 200 and "capsvc_sessions" in await resp.text()
        async with client.get(default_app + "/openapi.json", headers=auth) as resp:
            doc = await resp.json()
    assert doc["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]


async def test_a_stream_whose_client_left_ends_without_an_error(
    serve: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    """A subscriber that reads the pcap header and goes: the stream (of a filter that matches
    nothing) ends at the next quiet poll, its end (``write_eof``) failing on the closed
    connection is expected and no error is logged. Mutation guarded: that failure not
    suppressed (`_pump` 12: the handler then raised a TypeError, logged by aiohttp as an
    error)."""
    srv = await serve()
    write_trace(srv.output_dir / "slow.pcap", 2, 30 * 10**9)  # the second packet 30 s later
    spec: dict[str, Any] = {
        "name": "s",
        "source": {"type": "file", "path": "slow.pcap", "realtime": True},
        "sinks": [],
    }
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    caplog.set_level(logging.INFO)
    url = srv.url + "/v1/sessions/s/pcap?filter=udp"  # none of its packets: a quiet stream
    async with srv.client.get(url, headers=srv.auth()) as resp:
        assert resp.status == 200
        await resp.content.readexactly(24)
        assert srv.service.subscriber_count == 1
        resp.close()
    for _ in range(200):
        if srv.service.subscriber_count == 0:
            break
        await asyncio.sleep(0.02)
    assert srv.service.subscriber_count == 0
    await asyncio.sleep(0.1)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
