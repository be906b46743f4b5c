"""Shared pieces of the service tests: a served API client, numbered frames, specs, pcaps."""

from __future__ import annotations

import io
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import dpkt
from _helpers import ether, ipv4, udp
from _netns import VethPair

from capsvc.service import CaptureService, parse_config
from capsvc.service._http import TokenRef, build_app
from capsvc.service._server import load_token, make_runner, start_site


def frames(
    vp: VethPair, count: int, *, start: int = 0, size: int = 64, flows: int = 1
) -> list[bytes]:
    """``count`` UDP frames from the peer, each numbered in its payload; ``flows`` source ports."""
    out = []
    for i in range(start, start + count):
        payload = struct.pack("!I", i) + b"x" * max(0, size - 46)
        packet = ipv4(vp.peer_ip, "10.200.0.1", udp(20000 + i % flows, 9000, payload))
        out.append(ether(packet, src=vp.peer_mac, dst=vp.host_mac))
    return out


def session_spec(name: str, interface: str, **extra: Any) -> dict[str, Any]:
    """A session spec on ``interface`` writing ``name.pcap``."""
    spec: dict[str, Any] = {
        "name": name,
        "source": {"type": "afpacket", "interface": interface},
        "sinks": [{"type": "pcap", "path": f"{name}.pcap"}],
    }
    spec.update(extra)
    return spec


def read_pcap_numbers(data: bytes) -> list[int]:
    """The frame numbers (see ``frames``) of every UDP/9000 record of a pcap, in order."""
    numbers = []
    for _ts, buf in dpkt.pcap.Reader(io.BytesIO(data)):
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        udp_ok = isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.udp.UDP)
        if udp_ok and ip.data.dport == 9000:
            numbers.append(struct.unpack("!I", bytes(ip.data.data)[:4])[0])
    return numbers


def tcpdump_read(data: bytes, *args: str) -> list[str]:
    """Lines tcpdump prints for a pcap given on its standard input (``tcpdump -nr -``)."""
    done = subprocess.run(
        ["tcpdump", "-nn", "-r", "-", *args], input=data, capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()


@dataclass
class Served:
    """A running service with its HTTP API and an authorised client."""

    url: str
    token: str
    service: CaptureService
    client: aiohttp.ClientSession
    output_dir: Path

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.client.get(self.url + path, headers=self.auth(), **kw) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.client.post(self.url + path, json=body, headers=self.auth()) as resp:
            return resp.status, await resp.json()

    async def delete(self, path: str) -> tuple[int, Any]:
        async with self.client.delete(self.url + path, headers=self.auth()) as resp:
            return resp.status, await resp.json()


Starter = Callable[..., Awaitable[Served]]


async def serving(tmp_path: Path) -> AsyncIterator[Starter]:
    """The ``serve`` fixture: ``await serve(service={...}, sessions=[...])`` starts a server on
    127.0.0.1:0 with the service's own listener (its limits included); all stop at the end."""
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(
        service: dict[str, Any] | None = None, sessions: list[dict[str, Any]] | None = None
    ) -> Served:
        table = {
            "listen": "127.0.0.1:0",
            "output_dir": "out",
            "token_file": "token",
            **(service or {}),
        }
        config = parse_config(
            {"service": table, "session": sessions or []}, origin="test.toml", cwd=str(tmp_path)
        )
        token = load_token(config.service.token_file)
        svc = CaptureService(config)
        await svc.start()
        app = build_app(svc, TokenRef(token), metrics_auth=config.service.metrics_auth)
        runner = make_runner(app, config.service)
        await runner.setup()
        url = await start_site(runner, config.service)
        client = aiohttp.ClientSession()

        async def cleanup() -> None:
            await client.close()
            await svc.stop()
            await runner.cleanup()

        cleanups.append(cleanup)
        return Served(url, token, svc, client, Path(config.service.output_dir))

    yield start
    for cleanup in reversed(cleanups):
        await cleanup()
