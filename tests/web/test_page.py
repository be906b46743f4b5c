"""The operator page in a real headless Chromium against ``capsvc serve``, with traffic on a
private veth: sign in, watch a rate move, start a session (a filter error shown inline, with
its caret), stop it, download its file (read back by tcpdump), open a live stream, delete a
file, sign out. A screenshot of the page is kept in the test's tmp dir (``page.png``)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _browser import Service, ThreadedServer
from _helpers import ether, ipv4, udp
from _netns import VethPair, need_root
from aiohttp import web

pytestmark = pytest.mark.netns

T = TypeVar("T")


def udp_frames(vp: VethPair, count: int, dport: int, sport: int = 20000) -> list[bytes]:
    """``count`` UDP frames from the peer to ``dport``, each numbered in its payload."""
    return [
        ether(
            ipv4(vp.peer_ip, "10.200.0.1", udp(sport, dport, i.to_bytes(4, "big") + bytes(40))),
            src=vp.peer_mac,
            dst=vp.host_mac,
        )
        for i in range(count)
    ]


def until(what: Callable[[], T | None], timeout: float = 30.0, message: str = "") -> T:
    """Poll ``what`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = what()
        except Exception as exc:  # a page being redrawn: look again
            if exc.__class__.__name__ not in (
                "StaleElementReferenceException",
                "NoSuchElementException",
            ):
                raise
            got = None
        if got:
            return got
        assert time.monotonic() < deadline, message or "timed out"
        time.sleep(0.1)


def keep_evidence(d: Any, tmp_path: Path) -> None:
    """What the page showed and logged when a test failed: failed.png, console.json."""
    d.save_screenshot(str(tmp_path / "failed.png"))
    (tmp_path / "console.json").write_text(json.dumps(d.get_log("browser"), indent=1))


def api(service: Service, path: str) -> Any:
    """A direct API call with the token (to check what the page shows)."""
    req = urllib.request.Request(
        service.url + path, headers={"Authorization": f"Bearer {service.token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def rate(text: str) -> float:
    """The number a rate cell shows ("—", "12", "3.4 k" -> 0, 12, 3400)."""
    text = text.strip().rstrip("B").strip()
    if text in ("", "—"):
        return 0.0
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}
    return float(text[:-1]) * scale[text[-1]] if text[-1] in scale else float(text)


def test_operator_page(service: Service, browser: Any, net: VethPair, tmp_path: Path) -> None:
    d = browser
    try:
        walk_through(d, service, net, tmp_path)
    except BaseException:
        keep_evidence(d, tmp_path)
        raise


def walk_through(d: Any, service: Service, net: VethPair, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    def css(selector: str) -> Any:
        return d.find_element(By.CSS_SELECTOR, selector)

    def shown(selector: str) -> bool:
        return bool(css(selector).is_displayed())

    def text(selector: str) -> str:
        return str(css(selector).text)

    # -- the shell loads without the token; the token is asked once --------------------------
    d.get(service.url + "/")
    until(lambda: shown("#login"), message="no sign-in form")
    assert not css("#app").is_displayed()
    css("#token").send_keys("not-the-token")
    css("#login-button").click()
    until(lambda: "refused" in text("#login-error"), message="a wrong token was not refused")
    css("#token").clear()
    css("#token").send_keys(service.token)
    css("#login-button").click()
    until(lambda: shown("#app"), message="signing in failed")
    assert d.execute_script("return sessionStorage.getItem('capsvc.token')") == service.token
    status = d.execute_async_script(
        "fetch('/v1/sessions').then(r => arguments[arguments.length - 1](r.status))"
    )
    assert status == 401  # the page's origin gets nothing without the token either

    # -- a session's rate moves while traffic flows ------------------------------------------
    row = 'tr[data-session="veth"]'
    until(lambda: shown(row), message="the config's session is not listed")
    # The optional endpoints are not there: neither their button nor their panel is.
    assert not d.find_elements(By.CSS_SELECTOR, f"{row} button.dump")
    css(f"{row} button.details").click()
    until(lambda: shown("#detail"))
    assert not shown("#talkers-panel")
    assert "sampled by this page" in text("#series-source")
    traffic = threading.Thread(
        target=net.send_from_peer, args=(udp_frames(net, 1500, 7000),), kwargs={"gap": 0.004}
    )
    traffic.start()
    try:
        moving = until(
            lambda: rate(text(f"{row} td.pps")) > 20 and rate(text(f"{row} td.bps")) > 1000,
            message="the packet rate did not move",
        )
        assert moving
        drawn = until(
            lambda: (
                d.execute_script(
                    """const c = document.getElementById('chart-packets');
                const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let blue = 0;
                for (let i = 0; i < px.length; i += 4)
                  if (px[i + 2] > 150 && px[i] < 120 && px[i + 3] > 0) blue += 1;
                return blue;"""
                )
                > 50
            ),
            message="the chart drew no packet rate",
        )
        assert drawn
    finally:
        traffic.join()
    until(lambda: rate(text(f"{row} td.pps")) == 0, timeout=10, message="the rate did not fall")

    # -- start a session from the form: a bad filter is shown inline, with its caret ---------
    css("#f-name").send_keys("web")
    css("#f-interface").send_keys(net.host)
    css("#f-filter").send_keys("udp port")
    css("#start-button").click()
    caret = until(lambda: css("#filter-error").text, message="no inline filter error")
    lines = caret.splitlines()
    expression = next(i for i, line in enumerate(lines) if "udp port" in line)
    assert lines[expression + 1].strip() == "^"
    assert lines[expression + 1].index("^") == len(lines[expression])  # under the missing port
    assert api(service, "/v1/sessions")["sessions"][0]["name"] == "veth"  # nothing started
    css("#f-filter").send_keys(" 9000")
    css("#start-button").click()
    web = 'tr[data-session="web"]'
    until(lambda: shown(web) and "running" in text(f"{web} td.state"), message="not started")
    assert css("#filter-error").text == ""
    net.send_from_peer(udp_frames(net, 40, 9000) + udp_frames(net, 10, 9001))
    until(lambda: api(service, "/v1/sessions/web/stats")["stats"]["written"] >= 40)

    # -- stop it from the page ------------------------------------------------------------------
    css(f"{web} button.stop").click()
    until(lambda: not d.find_elements(By.CSS_SELECTOR, web), message="the session did not stop")
    assert "web" not in [s["name"] for s in api(service, "/v1/sessions")["sessions"]]

    # -- download its file; tcpdump reads what was captured -------------------------------------
    css("#files-refresh").click()
    file_row = 'tr[data-file="web.pcap"]'
    until(lambda: shown(file_row), message="the file is not listed")
    assert "web" in text(f"{file_row} td:nth-child(2)")
    css(f"{file_row} button.download").click()
    saved = tmp_path / "downloads" / "web.pcap"
    until(lambda: saved.exists() and saved.stat().st_size > 24, message="nothing downloaded")
    assert saved.read_bytes() == (service.output_dir / "web.pcap").read_bytes()
    done = subprocess.run(
        ["tcpdump", "-nn", "-r", str(saved)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 40 and all(".9000: UDP" in line for line in lines)

    # -- a live stream of the running session, with its own filter ------------------------------
    css(f"{row} button.stream").click()
    css("#stream-filter").send_keys("udp port")
    css("#stream-open").click()
    until(lambda: "^" in css("#stream-error").text, message="no stream filter error")
    css("#stream-filter").send_keys(" 9001")
    css("#stream-open").click()
    until(lambda: shown("#stream-close"), message="the stream did not open")
    time.sleep(0.3)  # the subscriber is attached before the response starts; leave it a moment
    net.send_from_peer(udp_frames(net, 5, 9001, sport=30000))
    stream_lines = until(
        lambda: (
            [
                e.text
                for e in d.find_elements(By.CSS_SELECTOR, "#stream-lines div")
                if "UDP 10.200.0.2.30000 > 10.200.0.1.9001" in e.text
            ]
            if len(d.find_elements(By.CSS_SELECTOR, "#stream-lines div")) >= 5
            else None
        ),
        message="the stream showed no packets",
    )
    assert len(stream_lines) == 5 and all(line.endswith("length 86") for line in stream_lines)
    css("#stream-close").click()
    css("#files-refresh").click()
    until(lambda: shown('tr[data-file="veth.pcap"]'))
    d.save_screenshot(str(tmp_path / "page.png"))  # the page with everything on it, kept
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # -- delete a finished file; the one being written cannot be ---------------------------------
    assert not css('tr[data-file="veth.pcap"] button.delete').is_enabled()
    css(f"{file_row} button.delete").click()
    WebDriverWait(d, 30).until(ec.alert_is_present())
    d.switch_to.alert.accept()
    until(lambda: not d.find_elements(By.CSS_SELECTOR, file_row), message="not deleted")
    assert not (service.output_dir / "web.pcap").exists()

    # -- signing out forgets the token ------------------------------------------------------------
    css("#logout").click()
    until(lambda: shown("#login"))
    assert d.execute_script("return sessionStorage.getItem('capsvc.token')") is None
    d.refresh()
    until(lambda: shown("#login"), message="the token outlived signing out")


def test_optional_endpoints_are_used_when_the_service_has_them(
    browser: Any, tmp_path: Path
) -> None:
    """With the I/O series, top talkers and dump routes in the application (found in its
    /openapi.json), the chart draws the service's series, the talkers panel shows its rows and
    the Dump button writes a file that the files panel lists."""
    need_root()
    extra = web.RouteTableDef()
    start = time.time() - 40

    @extra.get("/v1/sessions/{name}/series")
    async def series(request: web.Request) -> web.Response:
        """Per-second packets and bytes of a session."""
        return web.json_response(
            {"start": start, "interval": 1, "packets": [300] * 40, "bytes": [30000] * 40}
        )

    @extra.get("/v1/sessions/{name}/conversations")
    async def conversations(request: web.Request) -> web.Response:
        """A session's top talkers."""
        row = {"a": "10.9.9.1", "b": "10.9.9.2", "packets": 12, "bytes": 3400}
        return web.json_response({"by": request.query.get("by"), "conversations": [row]})

    @extra.post("/v1/sessions/{name}/dump")
    async def dump(request: web.Request) -> web.Response:
        """Write what a session's flight recorder holds."""
        out = tmp_path / "out" / "dump-1.pcap"
        out.write_bytes(b"")
        return web.json_response({"file": out.name, "packets": 0})

    config = {
        "service": {"output_dir": "out", "token_file": "token"},
        "session": [{"name": "lo", "source": {"type": "afpacket", "interface": "lo"}}],
    }
    d = browser
    with ThreadedServer(config, tmp_path, extra) as server:
        try:
            optional_features(d, server)
        except BaseException:
            keep_evidence(d, tmp_path)
            raise
        d.save_screenshot(str(tmp_path / "page.png"))


def optional_features(d: Any, server: ThreadedServer) -> None:
    from selenium.webdriver.common.by import By

    def css(selector: str) -> Any:
        return d.find_element(By.CSS_SELECTOR, selector)

    d.get(server.url + "/")
    until(lambda: css("#login").is_displayed())
    css("#token").send_keys(server.token)
    css("#login-button").click()
    row = 'tr[data-session="lo"]'
    until(lambda: css(row).is_displayed(), message="not signed in")
    until(lambda: css(f"{row} button.dump").is_displayed(), message="no Dump button")
    css(f"{row} button.details").click()
    until(
        lambda: "service's I/O series" in css("#series-source").text,
        message="the series endpoint was not used",
    )
    until(lambda: "10.9.9.1" in css("#talkers").text, message="no top talkers")
    assert css("#talkers-panel").is_displayed()
    css(f"{row} button.dump").click()
    until(lambda: "dump-1.pcap" in css("#toast").text, message="the dump was not reported")
    until(
        lambda: d.find_elements(By.CSS_SELECTOR, 'tr[data-file="dump-1.pcap"]'),
        message="the dump is not listed",
    )
