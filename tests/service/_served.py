"""``capsvc serve`` run as a process for the tests: its config, its start, its API, its end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    token: str
    lines: list[str]

    def call(self, method: str, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self, signum: int = signal.SIGTERM) -> list[dict[str, Any]]:
        """Signal the server, wait for it, return its final stats lines."""
        self.proc.send_signal(signum)
        assert self.proc.wait(timeout=30) == 0
        return [json.loads(line) for line in self.lines if line.startswith("{")]


def write_config(path: Path, sessions: str, service: str = "") -> None:
    path.write_text(
        f'[service]\nlisten = "127.0.0.1:0"\noutput_dir = "out"\ntoken_file = "token"\n'
        f"{service}\n{sessions}"
    )


def session_toml(name: str, interface: str, extra: str = "") -> str:
    return (
        f'[[session]]\nname = "{name}"\n'
        f'source = {{ type = "afpacket", interface = "{interface}" }}\n{extra}'
        f'[[session.sinks]]\ntype = "pcap"\npath = "{name}.pcap"\n'
    )


def run_serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "capsvc.cli", "serve", "--config", "capsvc.toml", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def start(tmp_path: Path, procs: list[subprocess.Popen[str]], *args: str) -> Server:
    proc = run_serve(tmp_path, *args)
    procs.append(proc)
    assert proc.stderr is not None
    lines: list[str] = []
    url = ""
    deadline = time.monotonic() + 20
    while not url:
        line = proc.stderr.readline()
        assert line, f"serve exited early: {''.join(lines)}"
        lines.append(line)
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].strip()
        assert time.monotonic() < deadline
    stderr = proc.stderr

    def collect() -> None:
        for line in stderr:
            lines.append(line)

    threading.Thread(target=collect, daemon=True).start()
    token = (tmp_path / "token").read_text().strip()
    return Server(proc, url, token, lines)


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
