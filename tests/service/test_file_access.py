"""Who can read the service's files: ``file_mode`` and ``file_group`` on every file and directory
it creates (sinks, rotation, recorder dumps), proved by reading them as an unprivileged member
of the group; and ``metrics_auth`` read from the config by ``capsvc serve`` itself."""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _netns import VethPair
from _served import start, write_config
from _service import Starter, frames, session_spec

pytestmark = pytest.mark.netns

#: The unprivileged user the files are read as (Debian's nobody).
NOBODY = 65534


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory anyone may pass through (pytest's own tmp dirs are 0700: nobody could)."""
    where = Path(tempfile.mkdtemp(prefix="capsvc-access-"))
    where.chmod(0o711)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def analysts() -> grp.struct_group:
    """A group that is not root's, for the files (Debian always has ``adm``)."""
    try:
        return grp.getgrnam("adm")
    except KeyError:
        pytest.skip("needs a group named adm")


def read_as(gid: int | None, path: Path) -> subprocess.CompletedProcess[bytes]:
    """``cat path`` as nobody, a member of ``gid`` only (of no group when None)."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")
    if os.geteuid() != 0:
        pytest.skip("needs root to read as another user")
    groups = ["--groups", str(gid)] if gid is not None else ["--clear-groups"]
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", *groups, "cat", str(path)],
        capture_output=True,
        timeout=30,
    )


async def test_files_get_the_mode_and_group(
    serve: Starter, veth: VethPair, shared_dir: Path
) -> None:
    """file_mode 0640 and file_group: a member of the group reads a capture, a recorder dump
    and a file in a subdirectory it made; someone else cannot. The listing says so.

    Mutation: dropping the group (or the directories' search bits) makes the member's read
    fail; a 0644 would let the outsider read."""
    group = analysts()
    out = shared_dir / "out"
    srv = await serve(service={"output_dir": str(out), "file_mode": "0640", "file_group": "adm"})
    spec = session_spec(
        "acc",
        veth.host,
        filter="udp port 9000",
        sinks=[
            {"type": "pcap", "path": "day/acc.pcap"},
            {"type": "recorder", "path": "dumps/acc-%H%M%S.pcap"},
        ],
    )
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    await asyncio.to_thread(veth.send_from_peer, frames(veth, 5))
    status, dump = 0, dict[str, Any]()
    for _ in range(100):
        status, dump = await srv.post("/v1/sessions/acc/dump", {})
        if status == 201 and dump["packets"] == 5:
            break
        await asyncio.sleep(0.05)
    assert status == 201 and dump["packets"] == 5
    assert (await srv.delete("/v1/sessions/acc"))[0] == 200

    for name in ("day/acc.pcap", dump["name"]):
        path = out / name
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_gid == group.gr_gid, name
        parent = path.parent.stat()
        assert stat.S_IMODE(parent.st_mode) == 0o750 and parent.st_gid == group.gr_gid, name
        member = read_as(group.gr_gid, path)
        assert member.returncode == 0, member.stderr
        assert member.stdout == path.read_bytes()
        outsider = read_as(None, path)
        assert outsider.returncode != 0 and b"Permission denied" in outsider.stderr
    top = out.stat()
    assert stat.S_IMODE(top.st_mode) & 0o750 == 0o750 and top.st_gid == group.gr_gid
    listing = {f["name"]: f for f in (await srv.get("/v1/files"))[1]["files"]}
    assert listing["day/acc.pcap"]["mode"] == "0640"
    assert listing["day/acc.pcap"]["group"] == "adm"
    assert listing[dump["name"]]["mode"] == "0640"


async def test_files_are_private_by_default(
    serve: Starter, veth: VethPair, shared_dir: Path
) -> None:
    """Without file_mode a member of the file's group reads nothing (0600, directories 0700)."""
    out = shared_dir / "out"
    srv = await serve(service={"output_dir": str(out)})
    spec = session_spec("priv", veth.host, sinks=[{"type": "pcap", "path": "sub/p.pcap"}])
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    assert (await srv.delete("/v1/sessions/priv"))[0] == 200
    path = out / "sub" / "p.pcap"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    denied = read_as(path.stat().st_gid, path)
    assert denied.returncode != 0 and b"Permission denied" in denied.stderr


async def test_unknown_file_group_is_refused_at_start(tmp_path: Path) -> None:
    from capsvc.service import CaptureService, ConfigError, parse_config

    config = parse_config(
        {"service": {"output_dir": "out", "file_group": "capsvc-no-such-group"}},
        origin="c.toml",
        cwd=str(tmp_path),
    )
    with pytest.raises(ConfigError) as info:
        await CaptureService(config).start()
    assert info.value.key == "service.file_group" and "no group" in info.value.problem
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("auth", [True, False])
def test_serve_reads_metrics_auth_from_the_config(
    tmp_path: Path, servers: list[subprocess.Popen[str]], auth: bool
) -> None:
    """``capsvc serve`` passes ``metrics_auth`` to the API: false opens /metrics alone."""
    write_config(tmp_path / "capsvc.toml", "", service=f"metrics_auth = {str(auth).lower()}")
    srv = start(tmp_path, servers)
    try:
        with urllib.request.urlopen(srv.url + "/metrics", timeout=10) as resp:
            status, body = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    assert status == (401 if auth else 200)
    assert ("capsvc_build_info" in body) is not auth
    assert srv.call("GET", "/v1/sessions")[0] == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(srv.url + "/v1/sessions", timeout=10)
    assert refused.value.code == 401
    srv.stop()
