"""The files API on a real server: listing judged by capinfos and tcpdump, Range downloads
checked byte for byte, deletion refused while a session writes, nothing outside the output
directory reachable (links, FIFOs, ``..``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from _helpers import CORPUS
from _netns import VethPair
from _service import Served, Starter, frames, session_spec, tcpdump_read
from multidict import CIMultiDict
from yarl import URL

from capsvc._files import Directory
from capsvc._packet import Direction, LinkType, Packet
from capsvc.service._catalog import Catalog, open_for_writing, service_pids
from capsvc.service._config import parse_session_spec
from capsvc.service._files_api import session_patterns
from capsvc.sinks._pcap import PcapWriter

CORPUS_FILES = ("ahcp.pcapng", "LINKTYPE_RAW_ipv4.pcap", "802.1ad_QinQ.pcap")


def capinfos(path: Path) -> tuple[int, float, float]:
    """(packets, earliest, latest packet time) as Wireshark's capinfos reads them."""
    if shutil.which("capinfos") is None:
        pytest.skip("needs capinfos (Debian package wireshark-common, with tshark)")
    done = subprocess.run(
        ["capinfos", "-T", "-r", "-c", "-a", "-e", "-S", "-M", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    _name, count, first, last = done.stdout.strip().split("\t")
    return int(count), float(first), float(last)


async def listing(srv: Served, query: str = "") -> dict[str, dict[str, Any]]:
    status, body = await srv.get("/v1/files" + query)
    assert status == 200, body
    assert body["directory"] == str(srv.output_dir)
    return {f["name"]: f for f in body["files"]}


async def fetch(srv: Served, path: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    """GET ``path`` as written (percent escapes and dots sent as they are)."""
    url = URL(srv.url + path, encoded=True)
    async with srv.client.get(url, headers={**srv.auth(), **headers}) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def write_pcap(path: Path, count: int, *, start_ns: int = 1_700_000_000_000_000_000) -> None:
    """A pcap of ``count`` 60-byte frames, one microsecond apart, written by capsvc's writer."""
    with open(path, "wb") as f:
        writer = PcapWriter(f, 262144, LinkType.ETHERNET, nanosecond=True)
        writer.write_batch(
            [Packet(start_ns + i * 1000, bytes(60), 60, Direction.UNKNOWN, 0) for i in range(count)]
        )
        writer.flush()


# -- listing --------------------------------------------------------------------------------


async def test_listing_agrees_with_capinfos(serve: Starter) -> None:
    """Counts and earliest/latest times of real pcap and pcapng files, as capinfos gives them.

    Mutation: taking the first and last record's times instead of the earliest and latest
    fails on ahcp.pcapng only if its records are out of order, so the counts, formats and
    link types are checked too.
    """
    if not CORPUS.is_dir():
        pytest.skip(f"capture corpus not found at {CORPUS}")
    srv = await serve()
    for name in CORPUS_FILES:
        shutil.copy(CORPUS / name, srv.output_dir / name)
    (srv.output_dir / "day1").mkdir()
    shutil.copy(CORPUS / CORPUS_FILES[0], srv.output_dir / "day1" / "again.pcapng")
    files = await listing(srv)
    assert sorted(files) == sorted([*CORPUS_FILES, "day1/again.pcapng"])
    for name, f in files.items():
        count, first, last = capinfos(srv.output_dir / name)
        assert f["packets"] == count, name
        assert f["first_packet"] == pytest.approx(first, abs=1e-6), name
        assert f["last_packet"] == pytest.approx(last, abs=1e-6), name
        assert f["complete"] and f["error"] is None and not f["writing"]
        assert f["size"] == (srv.output_dir / name).stat().st_size
        assert f["session"] is None
    assert files["ahcp.pcapng"]["format"] == "pcapng"
    assert files["802.1ad_QinQ.pcap"]["format"] == "pcap"
    assert files["802.1ad_QinQ.pcap"]["linktype"] == "ethernet"
    assert files["LINKTYPE_RAW_ipv4.pcap"]["linktype"] == "raw"


async def test_listing_leaves_out_links_fifos_and_shows_other_files(
    serve: Starter, tmp_path: Path
) -> None:
    srv = await serve()
    out = srv.output_dir
    secret = tmp_path / "secret.pcap"
    write_pcap(secret, 3)
    (out / "link.pcap").symlink_to(secret)
    (tmp_path / "elsewhere").mkdir()
    (out / "linkdir").symlink_to(tmp_path / "elsewhere")
    write_pcap(tmp_path / "elsewhere" / "hidden.pcap", 2)
    os.mkfifo(out / "fifo.pcap")
    (out / "notes.txt").write_text("not a capture\n")
    (out / "empty.pcap").write_bytes(b"")
    write_pcap(out / "short.pcap", 5)
    with open(out / "short.pcap", "ab") as f:
        f.write(b"\x01\x02\x03")  # a record cut short: five packets still read
    files = await listing(srv)
    assert sorted(files) == ["empty.pcap", "notes.txt", "short.pcap"]
    assert files["notes.txt"]["format"] is None and "magic" in files["notes.txt"]["error"]
    assert files["empty.pcap"]["format"] is None and files["empty.pcap"]["packets"] == 0
    assert files["empty.pcap"]["error"] is None
    assert files["short.pcap"]["packets"] == 5 and files["short.pcap"]["error"] is None
    assert files["short.pcap"]["mode"] == f"{(out / 'short.pcap').stat().st_mode & 0o777:04o}"


async def test_a_session_file_is_listed_as_it_grows(serve: Starter, veth: VethPair) -> None:
    """The listing of a file being written follows it (only the new bytes are read again)
    and names its session; after the session stops, the counts equal tcpdump's."""
    srv = await serve()
    assert (await srv.post("/v1/sessions", session_spec("grow", veth.host)))[0] == 201
    await asyncio.to_thread(veth.send_from_peer, frames(veth, 30))

    async def listed_packets(least: int) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while True:
            f = (await listing(srv))["grow.pcap"]
            if f["packets"] >= least or time.monotonic() > deadline:
                return f
            await asyncio.sleep(0.1)

    f = await listed_packets(30)
    assert f["session"] == "grow" and f["writing"] and f["packets"] >= 30
    await asyncio.to_thread(veth.send_from_peer, frames(veth, 20, start=30))
    f = await listed_packets(50)
    assert f["packets"] >= 50
    status, final = await srv.delete("/v1/sessions/grow")
    assert status == 200
    f = (await listing(srv))["grow.pcap"]
    data = (srv.output_dir / "grow.pcap").read_bytes()
    lines = tcpdump_read(data, "-tt")
    assert not f["writing"] and f["complete"]
    assert f["packets"] == len(lines) == final["stats"]["written"]
    assert f["first_packet"] == pytest.approx(float(lines[0].split()[0]), abs=1e-6)
    assert f["last_packet"] == pytest.approx(float(lines[-1].split()[0]), abs=1e-6)
    assert (await listing(srv, "?session=grow")).keys() == {"grow.pcap"}
    assert await listing(srv, "?session=other") == {}


def test_catalog_reads_within_its_budget_and_resumes(tmp_path: Path) -> None:
    """A look with no time left reads nothing and says so; the next look reads everything.

    Mutation: marking a file complete without reading it to its end fails here.
    """
    write_pcap(tmp_path / "big.pcap", 40_000)  # 3 MB: several chunks
    catalog = Catalog()
    with Directory(tmp_path) as directory:
        (first,) = catalog.scan(directory, budget=0.0)
        assert not first.complete and first.packets == 0
        (done,) = catalog.scan(directory)
    assert done.complete and done.packets == 40_000 and done.format == "pcap"
    assert (done.first_ns, done.last_ns) == (
        1_700_000_000_000_000_000,
        1_700_000_000_000_000_000 + 39_999_000,
    )


def test_catalog_rereads_a_file_replaced_in_place(tmp_path: Path) -> None:
    """A file rewritten under the same name (a rotation ring) is read again from its start.

    Mutation: keying the summary by name alone (not device and inode, size and time) would
    keep the old count.
    """
    write_pcap(tmp_path / "ring.pcap", 10)
    catalog = Catalog()
    with Directory(tmp_path) as directory:
        assert catalog.scan(directory)[0].packets == 10
        (tmp_path / "ring.pcap").unlink()
        write_pcap(tmp_path / "ring.pcap", 4, start_ns=1_800_000_000_000_000_000)
        again = catalog.scan(directory)[0]
    assert again.packets == 4 and again.first_ns == 1_800_000_000_000_000_000


def test_open_for_writing_is_what_the_kernel_says(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    path.write_bytes(b"x")
    key = (path.stat().st_dev, path.stat().st_ino)
    with open(path, "rb"):
        assert key not in open_for_writing(service_pids())
    with open(path, "ab"):
        assert key in open_for_writing(service_pids())
    assert key not in open_for_writing(service_pids())


@pytest.mark.parametrize(
    ("sink", "workers", "names", "others"),
    [
        ({"path": "a.pcap"}, 1, ["a.pcap"], ["a.pcap1", "b.pcap", "xa.pcap"]),
        ({"path": "a.pcap", "rotate_mb": 1}, 1, ["a.pcap", "a.pcap3"], ["a.pcapx"]),
        (
            {"path": "d/%Y%m%d-%H%M%S.pcap", "rotate_seconds": 60},
            1,
            ["d/20260101-120000.pcap"],
            ["e/20260101.pcap", "d/x.pcapng"],
        ),
        ({"path": "w.pcap"}, 2, ["w.worker0.pcap", "w.worker1.pcap"], ["w.pcap", "w.worker2.pcap"]),
        ({"path": "100%%.pcap", "rotate_seconds": 1}, 1, ["100%.pcap"], ["100x.pcap"]),
    ],
)
def test_session_patterns(
    sink: dict[str, Any], workers: int, names: list[str], others: list[str]
) -> None:
    source = {"type": "afpacket", "interface": "lo"}
    spec = parse_session_spec(
        {"name": "s", "source": source, "workers": workers, "sinks": [{"type": "pcap", **sink}]}
    )
    pattern = session_patterns(spec)
    assert pattern is not None
    assert [n for n in names if pattern.fullmatch(n)] == names
    assert [n for n in others if pattern.fullmatch(n)] == []


# -- download --------------------------------------------------------------------------------


async def test_download_with_ranges(serve: Starter) -> None:
    srv = await serve()
    write_pcap(srv.output_dir / "r.pcap", 100)
    data = (srv.output_dir / "r.pcap").read_bytes()
    size = len(data)
    status, headers, body = await fetch(srv, "/v1/files/r.pcap")
    assert status == 200 and body == data
    assert headers["Content-Type"] == "application/vnd.tcpdump.pcap"
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Length"] == str(size)
    assert 'filename="r.pcap"' in headers["Content-Disposition"]
    assert len(tcpdump_read(body)) == 100
    etag = headers["ETag"]
    cases = [
        ("bytes=0-23", data[:24], f"bytes 0-23/{size}"),
        ("bytes=100-", data[100:], f"bytes 100-{size - 1}/{size}"),
        ("bytes=-16", data[-16:], f"bytes {size - 16}-{size - 1}/{size}"),
        (f"bytes=10-{size + 500}", data[10:], f"bytes 10-{size - 1}/{size}"),
    ]
    for wanted, expected, content_range in cases:
        status, headers, body = await fetch(srv, "/v1/files/r.pcap", Range=wanted)
        assert (status, body, headers["Content-Range"]) == (206, expected, content_range), wanted
    status, headers, body = await fetch(srv, "/v1/files/r.pcap", Range=f"bytes={size}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    for ignored in ("bytes=0-1,5-6", "lines=1-2", "bytes=9-3"):
        status, _h, body = await fetch(srv, "/v1/files/r.pcap", Range=ignored)
        assert (status, body) == (200, data), ignored
    status, _h, body = await fetch(srv, "/v1/files/r.pcap", Range="bytes=0-3", **{"If-Range": etag})
    assert (status, body) == (206, data[:4])
    status, _h, body = await fetch(
        srv, "/v1/files/r.pcap", Range="bytes=0-3", **{"If-Range": '"x"'}
    )
    assert (status, body) == (200, data)
    async with srv.client.head(srv.url + "/v1/files/r.pcap", headers=srv.auth()) as resp:
        assert resp.status == 200 and resp.headers["Content-Length"] == str(size)
        assert await resp.read() == b""


async def test_download_types_and_refusals(serve: Starter, tmp_path: Path) -> None:
    srv = await serve()
    out = srv.output_dir
    if CORPUS.is_dir():
        shutil.copy(CORPUS / "ahcp.pcapng", out / "a.pcapng")
        status, headers, body = await fetch(srv, "/v1/files/a.pcapng")
        assert status == 200 and headers["Content-Type"] == "application/x-pcapng"
        assert body == (CORPUS / "ahcp.pcapng").read_bytes()
    (out / "sub").mkdir()
    (out / "sub" / "n.txt").write_text("hello")
    status, headers, body = await fetch(srv, "/v1/files/sub/n.txt")
    assert (status, body) == (200, b"hello")
    assert headers["Content-Type"] == "application/octet-stream"
    odd = 'a "b"\\c\nd é.pcap'  # quotes, a backslash, a newline: no header injection
    write_pcap(out / odd, 1)
    status, headers, body = await fetch(srv, "/v1/files/" + urllib.parse.quote(odd))
    assert status == 200 and body == (out / odd).read_bytes()
    assert headers["Content-Disposition"] == (
        'attachment; filename="a _b__c_d _.pcap"; '
        "filename*=UTF-8''a%20%22b%22%5Cc%0Ad%20%C3%A9.pcap"
    )
    write_pcap(tmp_path / "secret.pcap", 1)
    (out / "link.pcap").symlink_to(tmp_path / "secret.pcap")
    os.mkfifo(out / "fifo")
    refused = {
        "/v1/files/link.pcap": 403,
        "/v1/files/fifo": 403,  # refused at once: a FIFO is never opened to wait on
        "/v1/files/sub": 403,
        "/v1/files/nothing.pcap": 404,
        "/v1/files/%2E%2E/secret.pcap": 403,
        "/v1/files/sub/%2E%2E/%2E%2E/secret.pcap": 403,
        "/v1/files/%2Fetc%2Fpasswd": 403,
    }
    for path, expected in refused.items():
        status, _h, body = await fetch(srv, path)
        assert status == expected, (path, body)
        assert b"secret" not in body or b"'" in body  # an error message, never the file


async def test_files_need_the_token(serve: Starter) -> None:
    srv = await serve()
    write_pcap(srv.output_dir / "t.pcap", 1)
    for method, path in [
        ("GET", "/v1/files"),
        ("GET", "/v1/files/t.pcap"),
        ("HEAD", "/v1/files/t.pcap"),
        ("DELETE", "/v1/files/t.pcap"),
    ]:
        async with srv.client.request(method, srv.url + path) as resp:
            assert resp.status == 401, (method, path)
    assert (srv.output_dir / "t.pcap").exists()


# -- delete ----------------------------------------------------------------------------------


async def test_delete_refused_while_a_session_writes(serve: Starter, veth: VethPair) -> None:
    """409 while the session holds the file open; deleted once it stopped.

    Mutation: deciding "being written" from the session's state rather than the open file
    would let a rotated-out file of a running session be refused, or the live one deleted.
    """
    srv = await serve()
    spec = session_spec("busy", veth.host)
    spec["sinks"] = [{"type": "pcap", "path": "busy.pcap", "rotate_mb": 0.002}]
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    await asyncio.to_thread(veth.send_from_peer, frames(veth, 60, size=200))

    async def rotated() -> bool:
        return len(await listing(srv, "?session=busy")) >= 2

    deadline = time.monotonic() + 10
    while not await rotated():
        assert time.monotonic() < deadline, "the session did not rotate"
        await asyncio.sleep(0.1)
    files = await listing(srv, "?session=busy")
    live = [n for n, f in files.items() if f["writing"]]
    done = [n for n, f in files.items() if not f["writing"]]
    assert len(live) == 1 and done
    status, body = await srv.delete(f"/v1/files/{live[0]}")
    assert status == 409 and "busy" in body["error"]
    assert (srv.output_dir / live[0]).exists()
    status, body = await srv.delete(f"/v1/files/{done[0]}")
    assert status == 200 and body["deleted"] and not (srv.output_dir / done[0]).exists()
    assert (await srv.delete("/v1/sessions/busy"))[0] == 200
    status, body = await srv.delete(f"/v1/files/{live[0]}")
    assert status == 200 and not (srv.output_dir / live[0]).exists()
    assert (await srv.delete(f"/v1/files/{live[0]}"))[0] == 404


async def test_delete_never_follows_a_link(serve: Starter, tmp_path: Path) -> None:
    srv = await serve()
    target = tmp_path / "keep.pcap"
    write_pcap(target, 1)
    (srv.output_dir / "l.pcap").symlink_to(target)
    (srv.output_dir / "d").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(srv.output_dir / "sock"))
    try:
        for name in ("l.pcap", "d", "sock", "%2E%2E/keep.pcap"):
            url = URL(f"{srv.url}/v1/files/{name}", encoded=True)
            async with srv.client.delete(url, headers=srv.auth()) as resp:
                assert resp.status == 403, name
    finally:
        sock.close()
    assert target.exists() and (srv.output_dir / "l.pcap").is_symlink()
    assert (srv.output_dir / "d").is_dir()
