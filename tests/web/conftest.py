"""Fixtures of the browser tests: ``capsvc serve`` as an operator runs it, and headless Chromium.

Chromium and its driver are Debian's (``apt-get install chromium chromium-driver``), given to
Selenium by path, so nothing downloads a browser or a driver. The browser runs headless with a
fresh profile and without its background networking (which would try Google's hosts).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, Service, need_browser
from _netns import VethPair, veth_pair


@pytest.fixture(scope="module")
def net() -> Iterator[VethPair]:
    """A private test network: the sessions capture on its host end."""
    with veth_pair() as pair:
        deadline = time.monotonic() + 5
        while "state UP" not in pair.exec("ip", "link", "show", pair.peer).stdout.decode():
            assert time.monotonic() < deadline, "the test network did not come up"
            time.sleep(0.02)
        yield pair


@pytest.fixture
def service(tmp_path: Path, net: VethPair) -> Iterator[Service]:
    """``capsvc serve`` on 127.0.0.1 (a free port), one session capturing on the veth, to a
    file and into a flight recorder, with its conversations counted (off by default)."""
    config = tmp_path / "capsvc.toml"
    config.write_text(
        "[service]\n"
        'listen = "127.0.0.1:0"\n'
        'output_dir = "out"\n'
        'token_file = "token"\n'
        "\n[[session]]\n"
        'name = "veth"\n'
        f'source = {{ type = "afpacket", interface = "{net.host}" }}\n'
        'sinks = [{ type = "pcap", path = "veth.pcap" }, { type = "recorder" }]\n'
        "conversations = true\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "capsvc.cli", "serve", "--config", str(config)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = ""
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        while not url:
            line = process.stderr.readline()
            assert line or process.poll() is None, "capsvc serve exited"
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].strip()
            assert time.monotonic() < deadline, "capsvc serve did not start"
        token = (tmp_path / "token").read_text().strip()
        yield Service(url, token, tmp_path / "out", process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium; downloads go to ``tmp_path/downloads``."""
    need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
