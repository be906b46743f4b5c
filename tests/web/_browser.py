"""Shared pieces of the browser tests: where Debian puts Chromium, its flags, the service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from capsvc.service import CaptureService, parse_config
from capsvc.service._http import TokenRef, build_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1800",
)


def need_browser() -> None:
    """Skip unless Debian's chromium and chromium-driver and Selenium are installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(
            f"needs {' and '.join(missing)} (apt-get install chromium chromium-driver; "
            "scripts/setup.sh installs them)"
        )
    pytest.importorskip("selenium", reason="needs selenium (pip install -e '.[test]')")


@dataclass
class Service:
    """A ``capsvc serve`` process."""

    url: str
    token: str
    output_dir: Path
    process: subprocess.Popen[str]


class ThreadedServer:
    """The service and its HTTP API on 127.0.0.1 in a thread of its own (the browser blocks).

    Args:
        config: the ``parse_config`` document (``listen`` is ignored: a free port is used).
        cwd: where relative paths are taken from.
        extra: routes added to the application before it starts.
    """

    def __init__(self, config: dict[str, Any], cwd: Path, extra: web.RouteTableDef) -> None:
        self.config = parse_config(config, cwd=str(cwd))
        self.extra = extra
        self.token = "browser-test-token"
        self.url = ""
        self.service: CaptureService | None = None
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self.service = CaptureService(self.config)
        await self.service.start()
        app = build_app(self.service, TokenRef(self.token))
        app.add_routes(self.extra)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def _stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
