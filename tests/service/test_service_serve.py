"""``capsvc serve`` as a process: config errors, SIGTERM drain, SIGHUP reload, unix socket,
--user."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import pytest
from _netns import VethPair
from _served import ROOT, session_toml, start, wait_until, write_config
from _service import frames, read_pcap_numbers, tcpdump_read

from capsvc.service._server import serve

pytestmark = pytest.mark.netns


def test_bad_config_is_refused_naming_file_key_and_problem(tmp_path: Path) -> None:
    config = tmp_path / "capsvc.toml"
    write_config(config, session_toml("a", "lo", "snaplen = -5\n"))
    done = subprocess.run(
        [sys.executable, "-m", "capsvc.cli", "serve", "--config", str(config)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"{config}: session[0].snaplen: must be between 0 and 262144" in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "token").exists()


def test_session_failing_to_start_leaves_nothing_running(tmp_path: Path, veth: VethPair) -> None:
    write_config(
        tmp_path / "capsvc.toml", session_toml("a", veth.host) + session_toml("b", "cstnosuch0")
    )
    done = subprocess.run(
        [sys.executable, "-m", "capsvc.cli", "serve", "--config", "capsvc.toml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "cstnosuch0" in done.stderr and "listening" not in done.stderr
    # The first session was stopped again: its file is complete, a valid empty capture (the
    # 24-byte header alone, as tcpdump writes for a capture that matched nothing).
    assert (tmp_path / "out" / "a.pcap").read_bytes()[:4] == b"\x4d\x3c\xb2\xa1"
    assert (tmp_path / "out" / "a.pcap").stat().st_size == 24


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_every_counted_packet(
    tmp_path: Path, veth: VethPair, servers: list[subprocess.Popen[str]], workers: int
) -> None:
    write_config(
        tmp_path / "capsvc.toml", session_toml("drain", veth.host, f"workers = {workers}\n")
    )
    srv = start(tmp_path, servers)
    sender = threading.Thread(
        target=veth.send_from_peer,
        args=(frames(veth, 3000, size=400, flows=16),),
        kwargs={"gap": 0.0002},
    )
    sender.start()
    wait_until(lambda: srv.call("GET", "/v1/sessions/drain/stats")[1]["stats"]["packets"] > 200)
    final = srv.stop(signal.SIGTERM)  # while the sender is still sending
    sender.join()
    assert [f["session"] for f in final] == ["drain"]
    counted = final[0]["stats"]["packets"]
    names = ["drain.pcap"] if workers == 1 else [f"drain.worker{k}.pcap" for k in range(workers)]
    files = [tmp_path / "out" / name for name in names]
    numbers = [n for path in files for n in read_pcap_numbers(path.read_bytes())]
    lines = sum(len(tcpdump_read(path.read_bytes())) for path in files)
    assert lines == counted == final[0]["stats"]["written"]
    assert len(numbers) == len(set(numbers)) == counted
    assert counted > 200
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)


def test_sighup_reload_starts_added_stops_removed_keeps_unchanged(
    tmp_path: Path, veth: VethPair, servers: list[subprocess.Popen[str]]
) -> None:
    config = tmp_path / "capsvc.toml"
    write_config(config, session_toml("keep", veth.host) + session_toml("gone", veth.host))
    srv = start(tmp_path, servers)
    before = srv.call("GET", "/v1/sessions/keep")[1]

    write_config(config, session_toml("keep", veth.host) + session_toml("new", veth.host))
    srv.proc.send_signal(signal.SIGHUP)

    def names() -> set[str]:
        return {s["name"] for s in srv.call("GET", "/v1/sessions")[1]["sessions"]}

    wait_until(lambda: names() == {"keep", "new"})
    assert srv.call("GET", "/v1/sessions/keep")[1]["started"] == before["started"]
    veth.send_from_peer(frames(veth, 10))
    wait_until(lambda: srv.call("GET", "/v1/sessions/new/stats")[1]["stats"]["written"] >= 10)

    config.write_text("[service\n")  # broken: refused, everything keeps running
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert names() == {"keep", "new"} and srv.proc.poll() is None
    final = {f["session"]: f["stats"] for f in srv.stop()}
    assert set(final) == {"keep", "new"}
    assert "reload refused" in "".join(srv.lines)
    for name in ("keep", "new"):
        numbers = read_pcap_numbers((tmp_path / "out" / f"{name}.pcap").read_bytes())
        assert sorted(numbers) == list(range(10))


def unix_status(sock: Path, path: str, *headers: str) -> int:
    """The status of ``GET path`` over the Unix socket (HTTP/1.1, one request)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(sock))
        head = "".join(f"{h}\r\n" for h in headers)
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_unix_socket_is_private(tmp_path: Path, servers: list[subprocess.Popen[str]]) -> None:
    write_config(tmp_path / "capsvc.toml", "", service='listen = "unix:api.sock"')
    (tmp_path / "capsvc.toml").write_text(
        (tmp_path / "capsvc.toml").read_text().replace('listen = "127.0.0.1:0"\n', "")
    )
    srv = start(tmp_path, servers)
    sock = tmp_path / "api.sock"
    assert srv.url == f"unix:{sock}"
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert unix_status(sock, "/v1/sessions") == 401
    assert unix_status(sock, "/v1/sessions", f"Authorization: Bearer {srv.token}") == 200
    srv.stop(signal.SIGINT)
    assert not sock.exists()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory whose whole path another user can traverse (pytest's tmp_path is 0700)."""
    with tempfile.TemporaryDirectory(prefix="capsvc-test-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def test_user_drops_root_after_opening_the_sockets(
    open_dir: Path, veth: VethPair, servers: list[subprocess.Popen[str]]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    nobody = pwd.getpwnam("nobody")
    tmp_path = open_dir
    rotating = (
        '[[session.sinks]]\ntype = "pcap"\npath = "ring/priv.pcap"\nrotate_mb = 0.001\n'
        "max_files = 3\n"
    )
    write_config(tmp_path / "capsvc.toml", session_toml("priv", veth.host) + rotating)
    srv = start(tmp_path, servers, "--user", "nobody")
    status = Path(f"/proc/{srv.proc.pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert {int(u) for u in uids} == {nobody.pw_uid}
    veth.send_from_peer(frames(veth, 10, size=300))
    wait_until(lambda: srv.call("GET", "/v1/sessions/priv/stats")[1]["stats"]["written"] >= 10)
    srv.stop()
    out = tmp_path / "out"
    assert out.stat().st_uid == nobody.pw_uid
    assert stat.S_IMODE((out / "priv.pcap").stat().st_mode) == 0o600
    assert sorted(read_pcap_numbers((out / "priv.pcap").read_bytes())) == list(range(10))
    assert "failed" not in "".join(srv.lines), srv.lines
    # Files rotated in after the switch were created by the user, still 0600.
    later = [out / "ring" / f"priv.pcap{k}" for k in (1, 2)]
    assert all(p.stat().st_uid == nobody.pw_uid for p in later)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in later)
    ring = b"".join((out / "ring" / f"priv.pcap{k}").read_bytes() for k in range(3))
    assert ring.count(bytes.fromhex("4d3cb2a1")) == 3


class _Announce:
    """A text stream that notes, when the "listening on" line is written, which of SIGHUP and
    SIGTERM still have the default action (a signal sent on seeing the line would then kill the
    service instead of reloading or draining it), then stops the service with SIGTERM (or, when
    that would kill the tests, by raising)."""

    def __init__(self) -> None:
        self.defaults: list[str] | None = None

    def write(self, text: str) -> int:
        if "listening on " in text and self.defaults is None:
            self.defaults = [
                sig.name
                for sig in (signal.SIGHUP, signal.SIGTERM)
                if signal.getsignal(sig) is signal.SIG_DFL
            ]
            if self.defaults:
                raise RuntimeError(f"announced while {self.defaults} kill the process")
            os.kill(os.getpid(), signal.SIGTERM)
        return len(text)

    def flush(self) -> None:
        pass


def test_listening_is_announced_only_once_the_signals_are_handled(tmp_path: Path) -> None:
    """Mutation: print "listening on" before installing the SIGHUP/SIGTERM handlers (a script
    that reloads on seeing the line could kill the service). The SIGTERM sent from the write
    itself must end the service cleanly (return 0), not the test process."""
    config = tmp_path / "capsvc.toml"
    write_config(config, "")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    stream = _Announce()
    try:
        code = asyncio.run(serve(str(config), out=cast(IO[str], stream)))
    finally:
        os.chdir(cwd)
    assert stream.defaults == []
    assert code == 0
