"""Fixtures of the service tests: a real server on 127.0.0.1 and a private test network."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _netns import VethPair, veth_pair
from _service import Served, Starter

from capsvc.service import CaptureService, parse_config
from capsvc.service._http import TokenRef, build_app
from capsvc.service._server import load_token, make_runner, start_site


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Starter]:
    """``await serve(service={...}, sessions=[...])`` starts a server on 127.0.0.1:0."""
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
        # The listener the service itself uses (its connection and idle limits included).
        runner = make_runner(build_app(svc, TokenRef(token)), config.service)
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


@pytest.fixture(scope="module")
def veth() -> Iterator[VethPair]:
    """One private test network for the module's tests."""
    with veth_pair() as pair:
        deadline = time.monotonic() + 5
        while "state UP" not in pair.exec("ip", "link", "show", pair.peer).stdout.decode():
            assert time.monotonic() < deadline, "the test network did not come up"
            time.sleep(0.02)
        yield pair
