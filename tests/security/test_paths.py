"""Files and paths under attack: links, strftime names, FIFOs, two writers, reloads, configs.

Each test is one observation of a hostile or careless operator (the numbers are the ones the
threat model in docs/architecture.md answers); each fails on a service that follows links,
checks only templates, opens FIFOs on the event loop, lets two writers share a path, truncates
on reload or reads a config without bounds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _hostile import tree, udp_frames, write_pcap
from _netns import VethPair
from _served import ROOT, session_toml, start, wait_until, write_config
from _service import Starter, frames, read_pcap_numbers, session_spec, tcpdump_read

from capsvc.service import CaptureService, parse_config


def file_spec(name: str, source: str, *sinks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A session reading the capture file ``source`` of the input directory."""
    spec: dict[str, Any] = {
        "name": name,
        "source": {"type": "file", "path": source},
        "sinks": list(sinks),
    }
    spec.update(extra)
    return spec


def secret(tmp_path: Path) -> Path:
    """A file outside the service's directories that nothing may touch."""
    path = tmp_path / "secret.txt"
    path.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    return path


# 1 --------------------------------------------------------------------------------------------


async def test_rotating_sink_never_writes_through_a_planted_link(
    serve: Starter, tmp_path: Path
) -> None:
    """A rotating sink's names, the first and the later ones, refuse a symbolic link planted
    at them (RotatingWriter used to open without O_NOFOLLOW and truncate the link's target)."""
    srv = await serve()
    target = secret(tmp_path)
    before = target.read_bytes()
    write_pcap(srv.output_dir / "in.pcap", udp_frames(200))
    ring = {"type": "pcap", "path": "r.pcap", "rotate_mb": 0.002, "max_files": 3}

    (srv.output_dir / "r.pcap0").symlink_to(target)
    status, body = await srv.post("/v1/sessions", file_spec("first", "in.pcap", ring))
    assert status == 403 and "r.pcap0" in body["error"], body
    (srv.output_dir / "r.pcap0").unlink()

    (srv.output_dir / "r.pcap1").symlink_to(target)  # the name of the first rotation
    status, body = await srv.post("/v1/sessions", file_spec("later", "in.pcap", ring))
    assert status == 201, body
    final = await srv.service.stop_session("later")
    assert final.sink_errors == 1  # the rotation failed, counted
    assert target.read_bytes() == before
    assert (srv.output_dir / "r.pcap1").is_symlink()


# 2 --------------------------------------------------------------------------------------------


async def test_strftime_fields_cannot_lead_outside(serve: Starter, tmp_path: Path) -> None:
    """``r-%D.pcap`` formats to ``r-MM/DD/YY.pcap``: the formatted name is checked and made of
    directories inside the output directory (the template alone used to be checked)."""
    srv = await serve()
    write_pcap(srv.output_dir / "in.pcap", udp_frames(5))
    around = tree(tmp_path, skip=srv.output_dir)
    sink = {"type": "pcap", "path": "r-%D.pcap", "rotate_seconds": 3600}
    status, body = await srv.post("/v1/sessions", file_spec("d", "in.pcap", sink))
    assert status == 201, body
    await srv.service.stop_session("d")
    assert tree(tmp_path, skip=srv.output_dir) == around
    made = [p for p in srv.output_dir.rglob("*.pcap") if p.name != "in.pcap"]
    assert len(made) == 1 and made[0].relative_to(srv.output_dir).parts[0].startswith("r-")
    assert len(tcpdump_read(made[0].read_bytes())) == 5
    assert stat.S_IMODE(made[0].parent.stat().st_mode) == 0o700

    for bad in ("%D/../../x.pcap", "/tmp/%D.pcap"):
        sink = {"type": "pcap", "path": bad, "rotate_seconds": 3600}
        status, _ = await srv.post("/v1/sessions", file_spec("e", "in.pcap", sink))
        assert status == 403


# 3 --------------------------------------------------------------------------------------------


async def test_file_source_through_a_link_is_refused_without_quoting_it(
    serve: Starter, tmp_path: Path
) -> None:
    """A file source that is a symbolic link to /etc/passwd-like content is refused (403), and
    no answer quotes the bytes of a file that is no capture (it used to print "unknown magic
    number 0x726f6f74", the file's first bytes, in a 500)."""
    srv = await serve()
    target = secret(tmp_path)
    (srv.output_dir / "src.pcap").symlink_to(target)
    sink = {"type": "pcap", "path": "copy.pcap"}
    status, body = await srv.post("/v1/sessions", file_spec("s", "src.pcap", sink))
    assert status == 403, body
    assert not (srv.output_dir / "copy.pcap").exists()

    (srv.output_dir / "plain.pcap").write_bytes(target.read_bytes())  # a copy, no capture
    status, body = await srv.post("/v1/sessions", file_spec("s", "plain.pcap", sink))
    assert status == 400, body
    assert "plain.pcap" in body["error"]
    for leak in ("root", "726f6f74", "0x"):
        assert leak not in body["error"]


async def test_file_sources_read_the_input_directory(serve: Starter, tmp_path: Path) -> None:
    """``input_dir`` is where file sources are read, the output directory where sinks write."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_pcap(inputs / "x.pcap", udp_frames(7))
    srv = await serve(service={"input_dir": "in"})
    spec = file_spec("i", "x.pcap", {"type": "pcap", "path": "x.pcap"})
    status, body = await srv.post("/v1/sessions", spec)
    assert status == 201, body
    await srv.service.stop_session("i")
    assert len(tcpdump_read((srv.output_dir / "x.pcap").read_bytes())) == 7
    status, body = await srv.post("/v1/sessions", file_spec("j", "missing.pcap"))
    assert status == 404


# 4 --------------------------------------------------------------------------------------------


async def test_a_fifo_as_sink_or_source_never_blocks(serve: Starter) -> None:
    """A FIFO named as a sink or a source is refused at once (open() used to wait for the
    other end on the event loop: /healthz timed out, SIGTERM was ignored)."""
    srv = await serve()
    os.mkfifo(srv.output_dir / "pipe.pcap")
    write_pcap(srv.output_dir / "in.pcap", udp_frames(3))
    for spec in (
        file_spec("f", "in.pcap", {"type": "pcap", "path": "pipe.pcap"}),
        file_spec("g", "pipe.pcap", {"type": "pcap", "path": "out.pcap"}),
    ):
        started = time.monotonic()
        status, body = await srv.post("/v1/sessions", spec)
        assert status == 403 and "regular file" in body["error"], body
        assert time.monotonic() - started < 2
    async with asyncio.timeout(2):
        async with srv.client.get(srv.url + "/healthz") as resp:
            assert resp.status == 200


# 5 --------------------------------------------------------------------------------------------


async def test_one_writer_per_path(serve: Starter) -> None:
    """A second session writing a path is 409 naming the path, and so is a session whose file
    source is its own sink (it used to truncate its own source); the first one's file is
    whole afterwards."""
    srv = await serve()
    write_pcap(srv.output_dir / "in.pcap", udp_frames(50))
    slow = file_spec("a", "in.pcap", {"type": "pcap", "path": "same.pcap"})
    slow["source"]["realtime"] = True  # 50 ms of replay: still running for the second one
    assert (await srv.post("/v1/sessions", slow))[0] == 201
    other = file_spec("b", "in.pcap", {"type": "text", "path": "./same.pcap"})
    status, body = await srv.post("/v1/sessions", other)
    assert status == 409 and "same.pcap" in body["error"] and "'a'" in body["error"], body
    twice = file_spec("c", "in.pcap", *({"type": "pcap", "path": "two.pcap"},) * 2)
    status, body = await srv.post("/v1/sessions", twice)
    assert status == 409 and "two.pcap" in body["error"]
    while srv.service.get("a").running:  # the replay ends by itself
        await asyncio.sleep(0.05)
    assert sorted(read_pcap_numbers((srv.output_dir / "same.pcap").read_bytes())) == (
        list(range(50))
    )

    source = (srv.output_dir / "in.pcap").read_bytes()
    own = file_spec("d", "in.pcap", {"type": "pcap", "path": "in.pcap"})
    status, body = await srv.post("/v1/sessions", own)
    assert status == 409 and "in.pcap" in body["error"] and "read and write" in body["error"]
    assert (srv.output_dir / "in.pcap").read_bytes() == source
    # Paths are free again once their session stopped.
    assert (await srv.post("/v1/sessions", other))[0] == 201


# 6 --------------------------------------------------------------------------------------------


@pytest.mark.netns
async def test_reload_keeps_every_packet_written(tmp_path: Path, veth: VethPair) -> None:
    """A reload that changes a session's filter swaps it in place (the same session goes on);
    one that changes more restarts it appending to its file, or, when the file's header
    differs, writing a new one next to it. Nothing written before is lost (a restart used to
    reopen the file with O_TRUNC)."""

    def config(**changes: Any) -> Any:
        spec = session_spec("r", veth.host, **{"filter": "udp port 9000", **changes})
        return parse_config(
            {"service": {"output_dir": "out", "token_file": "t"}, "session": [spec]},
            cwd=str(tmp_path),
        )

    service = CaptureService(config())
    await service.start()
    try:
        managed = service.get("r")
        await asyncio.to_thread(veth.send_from_peer, frames(veth, 20))
        await asyncio.sleep(0.2)
        await service.reload(config(filter="udp"))
        assert service.get("r") is managed and managed.running and managed.spec.filter == "udp"
        await asyncio.to_thread(veth.send_from_peer, frames(veth, 20, start=20))
        await asyncio.sleep(0.2)
        await service.reload(config(filter="udp", queue_size=1000))  # restart, same header
        assert service.get("r") is not managed
        await asyncio.to_thread(veth.send_from_peer, frames(veth, 20, start=40))
        await asyncio.sleep(0.2)
        await service.reload(config(filter="udp", queue_size=1000, snaplen=128))
        await asyncio.to_thread(veth.send_from_peer, frames(veth, 20, start=60))
        await asyncio.sleep(0.2)
    finally:
        await service.stop()
    out = tmp_path / "out"
    first = (out / "r.pcap").read_bytes()
    assert read_pcap_numbers(first) == list(range(60))
    assert len(tcpdump_read(first)) >= 60  # one valid file, appended to
    assert read_pcap_numbers((out / "r-1.pcap").read_bytes()) == list(range(60, 80))


@pytest.mark.netns
def test_sighup_reload_of_a_filter_keeps_every_packet(
    tmp_path: Path, veth: VethPair, servers: list[subprocess.Popen[str]]
) -> None:
    """``capsvc serve`` given SIGHUP after a filter change: the session keeps running, and
    its file holds every packet from before and after."""
    path = tmp_path / "capsvc.toml"
    write_config(path, session_toml("h", veth.host, 'filter = "udp port 9000"\n'))
    srv = start(tmp_path, servers)
    veth.send_from_peer(frames(veth, 30))
    wait_until(lambda: srv.call("GET", "/v1/sessions/h/stats")[1]["stats"]["written"] >= 30)
    started = srv.call("GET", "/v1/sessions/h")[1]["started"]
    write_config(path, session_toml("h", veth.host, 'filter = "udp"\n'))
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: srv.call("GET", "/v1/sessions/h")[1]["filter"] == "udp")
    assert srv.call("GET", "/v1/sessions/h")[1]["started"] == started
    veth.send_from_peer(frames(veth, 30, start=30))
    wait_until(lambda: srv.call("GET", "/v1/sessions/h/stats")[1]["stats"]["written"] >= 60)
    final = srv.stop()
    assert final[0]["stats"]["written"] == 60
    assert read_pcap_numbers((tmp_path / "out" / "h.pcap").read_bytes()) == list(range(60))


# 7 --------------------------------------------------------------------------------------------


async def test_plain_sink_link_is_403_and_directories_are_private(
    serve: Starter, tmp_path: Path
) -> None:
    """A plain sink named by a symbolic link is a 403 naming it (it was a 500 "Too many levels
    of symbolic links"); directories made on the way are 0700, files 0600 (they were 0755)."""
    srv = await serve()
    target = secret(tmp_path)
    write_pcap(srv.output_dir / "in.pcap", udp_frames(3))
    (srv.output_dir / "trap.pcap").symlink_to(target)
    status, body = await srv.post(
        "/v1/sessions", file_spec("t", "in.pcap", {"type": "pcap", "path": "trap.pcap"})
    )
    assert status == 403 and "trap.pcap" in body["error"] and "link" in body["error"], body
    assert target.read_bytes().startswith(b"root:")
    status, body = await srv.post(
        "/v1/sessions", file_spec("u", "in.pcap", {"type": "text", "path": "a/b/log.txt"})
    )
    assert status == 201, body
    await srv.service.stop_session("u")
    for directory in (srv.output_dir / "a", srv.output_dir / "a" / "b"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((srv.output_dir / "a" / "b" / "log.txt").stat().st_mode) == 0o600


# 8 --------------------------------------------------------------------------------------------


def test_serve_refuses_a_config_that_is_no_file(tmp_path: Path) -> None:
    """``serve --config /dev/zero`` used to read until MemoryError; a FIFO would block."""
    os.mkfifo(tmp_path / "fifo.toml")
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (2 << 20))
    for config, problem in (
        ("/dev/zero", "not a regular file"),
        (str(tmp_path / "fifo.toml"), "not a regular file"),
        (str(huge), "larger than"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "capsvc.cli", "serve", "--config", config],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.returncode == 2, done.stderr
        assert problem in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_sighup_with_a_config_that_is_not_utf8(
    tmp_path: Path, servers: list[subprocess.Popen[str]]
) -> None:
    """A reload of a config that is not UTF-8 is refused and logged; nothing escapes as "Task
    exception was never retrieved ... UnicodeDecodeError" and the service goes on."""
    path = tmp_path / "capsvc.toml"
    write_config(path, "")
    srv = start(tmp_path, servers)
    path.write_bytes(path.read_bytes() + b"# \xff\xfe\n")
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in "".join(srv.lines))
    assert srv.call("GET", "/v1/sessions")[0] == 200
    srv.stop()
    text = "".join(srv.lines)
    assert "UTF-8" in text and "Task exception" not in text and "Traceback" not in text
