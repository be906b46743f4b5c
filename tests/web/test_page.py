"""The operator page in a real headless Chromium against ``capsvc serve``, with traffic on a
private veth: sign in, watch a rate move (the table's and the chart of the service's I/O
series), see the top talkers, dump the flight recorder and download the dump (read back by
tcpdump), start a session (a filter error shown inline, with its caret), stop it, download its
file, open a live stream, delete a file, sign out. A screenshot of the page is kept in the
test's tmp dir (``page.png``)."""

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
from _browser import Service
from _helpers import ether, ipv4, udp
from _netns import VethPair

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

    # -- a session's rate moves while traffic flows; its top talkers show ----------------------
    row = 'tr[data-session="veth"]'
    until(lambda: shown(row), message="the config's session is not listed")
    until(lambda: shown(f"{row} button.dump"), message="no Dump button for the recorder")
    css(f"{row} button.details").click()
    until(lambda: shown("#detail"))
    until(lambda: shown("#talkers-panel"), message="no top talkers panel")
    until(lambda: shown("#recorder-panel"), message="no flight recorder panel")
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
        until(
            lambda: "service's I/O series" in text("#series-source"),
            message="the chart does not draw the service's series",
        )
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
        talker = until(
            lambda: next(
                (
                    r.text
                    for r in d.find_elements(By.CSS_SELECTOR, "#talkers tbody tr")
                    if net.peer_ip in r.text and "10.200.0.1" in r.text
                ),
                None,
            ),
            message="no top talkers row for the traffic",
        )
        assert talker
    finally:
        traffic.join()
    until(lambda: rate(text(f"{row} td.pps")) == 0, timeout=10, message="the rate did not fall")
    series = api(service, "/v1/sessions/veth/series")
    assert sum(series["packets"]) >= 1500 and max(series["packets"]) > 20
    top = api(service, "/v1/sessions/veth/conversations?top=1&by=packets")["ip"]["rows"][0]
    assert (top["a"], top["b"]) == (net.peer_ip, "10.200.0.1") and top["packets_ab"] >= 1500
    until(
        lambda: any(
            str(top["packets_ab"]) == (e.get_attribute("title") or "")
            for e in d.find_elements(By.CSS_SELECTOR, "#talkers tbody tr:first-child td")
        ),
        message="the talkers row does not show the service's count",
    )

    # -- dump the flight recorder; the dump is listed, downloads, and tcpdump reads it ------------
    css(f"{row} button.dump").click()
    until(lambda: "Dump of veth written to veth-" in text("#toast"), message="no dump reported")
    recorder = api(service, "/v1/sessions/veth")["recorder"]
    (dump,) = recorder["latest_dumps"]
    assert recorder["dumps"] == 1
    assert dump["name"] in text("#toast") and dump["packets"] >= 1500
    dump_row = f'tr[data-file="{dump["name"]}"]'
    until(lambda: shown(dump_row), message="the dump is not listed")
    assert "veth" in text(f"{dump_row} td:nth-child(2)")
    until(lambda: dump["name"] in text("#recorder-dumps"), message="the recorder lists no dump")
    css(f"{dump_row} button.download").click()
    saved = tmp_path / "downloads" / dump["name"]
    until(lambda: saved.exists() and saved.stat().st_size > 24, message="nothing downloaded")
    until(lambda: saved.read_bytes() == (service.output_dir / dump["name"]).read_bytes())
    done = subprocess.run(
        ["tcpdump", "-nn", "-r", str(saved)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == dump["packets"]
    assert sum(f"{net.peer_ip}.20000 > 10.200.0.1.7000:" in line for line in lines) == 1500

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
    assert not d.find_elements(By.CSS_SELECTOR, f"{web} button.dump")  # it has no recorder
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
