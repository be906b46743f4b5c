"""The page's static shell over HTTP (no browser): served without the token, and only it."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from capsvc.service import CaptureService, parse_config
from capsvc.service._http import TokenRef, build_app
from capsvc.service._ui import ASSETS, SECURITY_HEADERS

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "capsvc" / "service" / "static"


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    config = parse_config({"service": {"output_dir": "out"}}, cwd=str(tmp_path))
    svc = CaptureService(config)
    await svc.start()
    runner = web.AppRunner(build_app(svc, TokenRef("t0ken")))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await svc.stop()
    await runner.cleanup()


async def test_the_shell_needs_no_token(url: str) -> None:
    async with aiohttp.ClientSession() as client:
        for name in ASSETS:
            path = "/" if name == "index.html" else f"/static/{name}"
            async with client.get(url + path) as resp:
                assert resp.status == 200, path
                assert resp.headers["Content-Type"] == ASSETS[name]
                assert await resp.read() == (STATIC / name).read_bytes()
                for header, value in SECURITY_HEADERS.items():
                    assert resp.headers[header] == value
                etag = resp.headers["ETag"]
            async with client.get(url + path, headers={"If-None-Match": etag}) as resp:
                assert resp.status == 304 and await resp.read() == b""
        for path in ("/static/other.js", "/static/../token", "/index.html", "/v1/sessions"):
            async with client.get(url + path) as resp:
                assert resp.status == 401, path


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, no inline script or style (the Content-Security-Policy would refuse them)."""
    html = (STATIC / "index.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert 'src="/static/app.js"' in html and 'href="/static/app.css"' in html
    for script in STATIC.glob("*.js"):
        code = script.read_text()
        assert "innerHTML" not in code and "eval(" not in code, script.name
        assert "http://" not in code and "https://" not in code, script.name


def test_the_static_files_are_package_data() -> None:
    """Every file of static/ matches a package-data pattern, so a wheel ships the page."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["capsvc"]
    files = sorted(p.relative_to(ROOT / "capsvc").as_posix() for p in STATIC.iterdir())
    assert files == sorted(f"service/static/{name}" for name in ASSETS)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
