"""/metrics scraped from a real server, parsed by prometheus-client, judged by the conventions
(``_promlint``, and ``promtool check metrics`` itself where it is installed)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _netns import VethPair
from _promlint import lint
from _service import Served, Starter, frames, session_spec
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

import capsvc
from capsvc._packet import LinkType
from capsvc._session import Session
from capsvc.service import CaptureService, parse_config, parse_session_spec
from capsvc.service._http import TokenRef, build_app
from capsvc.service._managed import ServiceSession
from capsvc.service._metrics import DROP_REASONS, sample_of
from capsvc.sinks._build import SinkSpec, stream_sink

PER_SESSION = (
    "capsvc_received_packets",
    "capsvc_accepted_packets",
    "capsvc_accepted_bytes",
    "capsvc_filtered_packets",
    "capsvc_written_packets",
    "capsvc_sink_errors",
    "capsvc_dropped_packets",
    "capsvc_queued_packets",
    "capsvc_queue_capacity_packets",
    "capsvc_subscribers",
    "capsvc_worker_processes",
    "capsvc_session_start_time_seconds",
)


async def scrape(srv: Served) -> str:
    async with srv.client.get(srv.url + "/metrics", headers=srv.auth()) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await resp.text()


async def busy_server(serve: Starter, veth: VethPair) -> tuple[Served, str]:
    """A server with two sessions on the veth (one file, one streams only) that saw traffic."""
    srv = await serve()
    await srv.post("/v1/sessions", session_spec("m1", veth.host))
    await srv.post("/v1/sessions", session_spec("m2", veth.host, sinks=[], queue_size=512))
    await asyncio.to_thread(veth.send_from_peer, frames(veth, 40))
    deadline = time.monotonic() + 10
    while True:
        stats = [(await srv.get(f"/v1/sessions/{n}/stats"))[1]["stats"] for n in ("m1", "m2")]
        if all(s["written"] >= 40 for s in stats):
            break
        assert time.monotonic() < deadline, stats
        await asyncio.sleep(0.05)
    return srv, await scrape(srv)


async def test_metrics_follow_the_conventions(serve: Starter, veth: VethPair) -> None:
    _srv, text = await busy_server(serve, veth)
    assert lint(text) == []
    promtool = shutil.which("promtool")
    if promtool is not None:  # Prometheus's own linter, where installed (Debian: prometheus)
        done = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


async def test_metrics_content(serve: Starter, veth: VethPair) -> None:
    srv, text = await busy_server(serve, veth)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in PER_SESSION:
        samples = families[name].samples
        assert {s.labels["session"] for s in samples} == {"m1", "m2"}, name
        for s in samples:
            assert s.labels["source"] == "afpacket" and s.labels["interface"] == veth.host
    assert families["capsvc_dropped_packets"].type == "counter"
    reasons = {
        (s.labels["session"], s.labels["reason"])
        for s in families["capsvc_dropped_packets"].samples
    }
    assert reasons == {(n, r) for n in ("m1", "m2") for r in DROP_REASONS}

    def by_session(family: str) -> dict[str, float]:
        return {s.labels["session"]: s.value for s in families[family].samples}

    assert by_session("capsvc_queue_capacity_packets") == {"m1": 65536, "m2": 512}
    accepted = by_session("capsvc_accepted_packets")
    for name in ("m1", "m2"):
        stats = (await srv.get(f"/v1/sessions/{name}/stats"))[1]["stats"]
        assert accepted[name] == stats["packets"]
    (build,) = families["capsvc_build_info"].samples
    assert build.labels["version"] == capsvc.__version__ and build.value == 1
    assert families["process_cpu_seconds"].samples[0].value > 0
    assert families["process_resident_memory_bytes"].samples[0].value > 1_000_000
    assert families["process_open_fds"].samples[0].value >= 3
    assert families["capsvc_sessions"].samples[0].value == 2


def test_the_lint_finds_what_it_looks_for() -> None:
    """Each rule fails on a planted breach (the lint above cannot pass by checking nothing)."""
    bad = "\n".join(
        [
            "# HELP capsvc_packets_seen x",
            "# TYPE capsvc_packets_seen counter",
            "capsvc_packets_seen 1",  # counter without _total (the parser keeps the name)
            "# TYPE capsvc_wait_ms gauge",
            "capsvc_wait_ms 3",  # no help, abbreviated unit
            "# HELP capsvc_size_kilobytes x",
            "# TYPE capsvc_size_kilobytes gauge",
            "capsvc_size_kilobytes 1",
            "# HELP capsvc_queueLength_packets x",
            "# TYPE capsvc_queueLength_packets gauge",
            "capsvc_queueLength_packets 1",
            "# HELP capsvc_drops_total_packets x",
            "# TYPE capsvc_drops_total_packets gauge",
            'capsvc_drops_total_packets{Session="a"} 1',
            "# HELP capsvc_gauge_packets x",
            "# TYPE capsvc_gauge_packets gauge",
            "capsvc_gauge_packets 1",
            "# HELP capsvc_queue_length x",
            "# TYPE capsvc_queue_length gauge",
            "capsvc_queue_length 1",
            "",
        ]
    )
    found = "\n".join(lint(bad))
    for expected in (
        "capsvc_packets_seen: counter metrics should have '_total' suffix",
        "capsvc_wait_ms: no help text",
        "abbreviated units ('ms')",
        "use base unit 'bytes' instead of 'kilobytes'",
        "capsvc_queueLength_packets: metric names should be written in 'snake_case'",
        "label names should be written in 'snake_case'",
        "should not include type 'gauge'",
        "capsvc_queue_length: the last word should be its unit",
    ):
        assert expected in found, expected


async def test_sink_drops_count_once_every_sink_failed() -> None:
    """A session writing to /dev/full (ENOSPC on every write) loses what it accepts: counted
    as reason="sink".

    Mutation: counting sink drops while a sink still works would count the batch the writer
    holds in hand; never counting them leaves the loss uncounted. Both fail here.
    """
    full = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 - the sink closes it
    sink = stream_sink(SinkSpec("pcap"), full, LinkType.ETHERNET, 262144)
    session = Session(sinks=[sink], bufsize=64)
    await session.start()
    try:
        for _ in range(10):
            session.offer(bytes(60))
        await asyncio.wait_for(session.sinks_failed.wait(), 5)
        for _ in range(5):
            session.offer(bytes(60))
        deadline = time.monotonic() + 5
        while session.stats().queued:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        spec = parse_session_spec({"name": "full", "source": {"type": "file", "path": "x"}})
        sample = sample_of(ServiceSession(spec, "request", session))
        stats = session.stats()
        assert stats.packets == 15 and stats.written == 0 and stats.sink_errors == 1
        assert sample.sink_dropped == 15 and sample.queue_capacity == 64
    finally:
        await session.stop()
        full.close()


@pytest.fixture
async def served_without_metrics_auth(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    config = parse_config(
        {"service": {"listen": "127.0.0.1:0", "output_dir": "out"}}, cwd=str(tmp_path)
    )
    svc = CaptureService(config)
    await svc.start()
    runner = web.AppRunner(build_app(svc, TokenRef("t0ken"), metrics_auth=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", "t0ken"
    await svc.stop()
    await runner.cleanup()


async def test_metrics_auth_switch(
    serve: Starter, served_without_metrics_auth: tuple[str, str]
) -> None:
    """metrics_auth = false opens /metrics alone; by default it needs the token."""
    srv = await serve()
    async with srv.client.get(srv.url + "/metrics") as resp:
        assert resp.status == 401
    url, _token = served_without_metrics_auth
    async with aiohttp.ClientSession() as client:
        async with client.get(url + "/metrics") as resp:
            assert resp.status == 200 and "capsvc_build_info" in await resp.text()
        for path in ("/v1/sessions", "/v1/files", "/openapi.json"):
            async with client.get(url + path) as resp:
                assert resp.status == 401, path
        async with client.get(
            url + "/openapi.json", headers={"Authorization": "Bearer t0ken"}
        ) as r:
            doc: dict[str, Any] = await r.json()
    assert doc["paths"]["/metrics"]["get"]["security"] == []


def readme_scrape_config() -> str:
    """The Prometheus scrape configuration the README shows."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "scrape_configs:" in block and "credentials_file:" in block
    return block


async def test_the_readme_scrape_config_scrapes(serve: Starter, tmp_path: Path) -> None:
    """Prometheus itself (where installed: Debian's prometheus) scrapes the service with the
    README's configuration, the bearer token read from its credentials_file."""
    prometheus = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if prometheus is None or promtool is None:
        pytest.skip("needs prometheus and promtool (Debian package prometheus)")
    srv = await serve()
    (tmp_path / "capsvc.token").write_text(srv.token + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        web_port = s.getsockname()[1]
    config = "global:\n  scrape_interval: 1s\n" + readme_scrape_config().replace(
        "/etc/prometheus/capsvc.token", str(tmp_path / "capsvc.token")
    ).replace("127.0.0.1:8321", srv.url.removeprefix("http://"))
    (tmp_path / "prometheus.yml").write_text(config)
    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = f"http://127.0.0.1:{web_port}/api/v1/query"
    try:
        deadline = time.monotonic() + 60
        while True:
            result: list[Any] = []
            with contextlib.suppress(aiohttp.ClientError):
                params = {"query": 'capsvc_build_info{job="capsvc"}'}
                async with srv.client.get(query, params=params) as resp:
                    result = (await resp.json())["data"]["result"]
            if result:
                break
            assert time.monotonic() < deadline, "Prometheus scraped nothing"
            await asyncio.sleep(0.5)
        assert result[0]["metric"]["version"] == capsvc.__version__
        async with srv.client.get(query, params={"query": 'up{job="capsvc"}'}) as resp:
            assert (await resp.json())["data"]["result"][0]["value"][1] == "1"
    finally:
        process.terminate()
        process.wait(15)
