"""A session's flight recorder, conversations and I/O series over the real HTTP API: dumps
written on request and by a trigger on a live veth capture, listed and downloaded and read back
by tcpdump; top talkers counted exactly while the tables are not full; per-second series that
sum to what was sent; the metrics they add, judged by the conventions; bad queries refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import Any

import pytest
from _helpers import ether, ipv4, udp
from _netns import VethPair
from _promlint import lint
from _service import Served, Starter, frames, read_pcap_numbers, session_spec, tcpdump_read
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.netns

#: Only the tests' own frames: nothing the namespace may send by itself counts.
UDP_9000 = "udp port 9000"


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def written(srv: Served, name: str, count: int) -> None:
    """Wait until ``count`` packets of the session reached its sinks."""

    async def done() -> bool:
        status, body = await srv.get(f"/v1/sessions/{name}/stats")
        assert status == 200, body
        return bool(body["stats"]["written"] >= count)

    await wait_for(done)


async def send(vp: VethPair, batch: list[bytes], gap: float = 0.0) -> None:
    await asyncio.to_thread(vp.send_from_peer, batch, gap=gap)


async def download(srv: Served, name: str) -> tuple[int, str, bytes]:
    async with srv.client.get(f"{srv.url}/v1/files/{name}", headers=srv.auth()) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def scrape(srv: Served) -> str:
    async with srv.client.get(srv.url + "/metrics", headers=srv.auth()) as resp:
        assert resp.status == 200
        return await resp.text()


def recorder_spec(name: str, interface: str, **recorder: Any) -> dict[str, Any]:
    """A session on ``interface`` (UDP port 9000 only) with a recorder sink, and nothing else."""
    return session_spec(name, interface, filter=UDP_9000, sinks=[{"type": "recorder", **recorder}])


def from_host(vp: VethPair, source: str, count: int, dport: int = 9000) -> list[bytes]:
    """``count`` UDP frames from ``source`` (any address: they are sent raw) to 10.200.0.1."""
    packet = ipv4(source, "10.200.0.1", udp(4000, dport, b"x" * 40))
    return [ether(packet, src=vp.peer_mac, dst=vp.host_mac)] * count


# -- the flight recorder ---------------------------------------------------------------------


async def test_dump_writes_what_the_recorder_holds(serve: Starter, veth: VethPair) -> None:
    """POST .../dump writes the packets held to a new file named by the template; the file is
    listed with its session, downloads byte for byte, and tcpdump reads every packet in order.

    Mutation: a dump that stopped capture would lose the 10 frames sent after it; a name not
    made unique would overwrite the first dump (the second has -1)."""
    srv = await serve()
    spec = recorder_spec("rec", veth.host, path="dumps/rec-%Y%m%d-%H%M%S.pcap")
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    batch = frames(veth, 30)
    await send(veth, batch)
    await written(srv, "rec", 30)

    async with srv.client.post(f"{srv.url}/v1/sessions/rec/dump", headers=srv.auth()) as resp:
        assert resp.status == 201
        first = await resp.json()
        location = resp.headers["Location"]
    assert first["session"] == "rec" and first["name"].startswith("dumps/rec-")
    assert first["name"].endswith(".pcap") and location == "/v1/files/" + first["name"]
    assert first["packets"] == 30 and first["bytes"] == sum(len(f) for f in batch)
    assert first["first_packet"] <= first["last_packet"] <= time.time()
    assert first["trigger"] is None

    await send(veth, frames(veth, 10, start=30))
    await written(srv, "rec", 40)
    status, second = await srv.post("/v1/sessions/rec/dump", {})
    assert status == 201 and second["packets"] == 40
    if second["name"][:-5] == first["name"][:-5]:  # the same second: the name is kept free
        assert second["name"] == first["name"][:-5] + "-1.pcap"

    status, kind, data = await download(srv, first["name"])
    assert status == 200 and kind == "application/vnd.tcpdump.pcap"
    assert data == (srv.output_dir / first["name"]).read_bytes()
    assert read_pcap_numbers(data) == list(range(30))
    assert len(tcpdump_read(data)) == 30
    _, _, data = await download(srv, second["name"])
    assert read_pcap_numbers(data) == list(range(40))

    status, listing = await srv.get("/v1/files?session=rec")
    assert status == 200
    files = {f["name"]: f for f in listing["files"]}
    assert set(files) == {first["name"], second["name"]}
    assert files[first["name"]]["packets"] == 30 and files[first["name"]]["format"] == "pcap"

    status, info = await srv.get("/v1/sessions/rec")
    recorder = info["recorder"]
    assert recorder["packets"] == 40 and recorder["latest_dumps"][-1]["name"] == second["name"]
    assert [d["name"] for d in recorder["latest_dumps"]] == [first["name"], second["name"]]
    assert recorder["evicted"] == 0 and recorder["max_bytes"] == 64 * 2**20
    assert recorder["dumps"] == 2


async def test_dump_refusals(serve: Starter, veth: VethPair) -> None:
    """404 for no such session, 409 for a session without a recorder or a stopped one; JSON
    like every other error."""
    srv = await serve()
    status, body = await srv.post("/v1/sessions/nosuch/dump", {})
    assert status == 404 and body["status"] == 404 and "nosuch" in body["error"]
    assert (await srv.post("/v1/sessions", session_spec("plain", veth.host)))[0] == 201
    status, body = await srv.post("/v1/sessions/plain/dump", {})
    assert status == 409 and "no flight recorder" in body["error"]
    spec = recorder_spec("brief", veth.host)
    spec["duration"] = 0.3
    assert (await srv.post("/v1/sessions", spec))[0] == 201

    async def stopped() -> bool:
        return bool((await srv.get("/v1/sessions/brief"))[1]["state"] == "stopped")

    await wait_for(stopped)
    status, body = await srv.post("/v1/sessions/brief/dump", {})
    assert status == 409 and "stopped" in body["error"]
    assert not any(p.name.startswith("brief-") for p in srv.output_dir.iterdir())


async def test_trigger_dump_on_a_live_capture(serve: Starter, veth: VethPair) -> None:
    """A packet matching the trigger writes one file with the packets before it and ``after``
    seconds after it; a second match within the holdoff writes none. The metrics count it.

    Mutation: dumping at the trigger packet would leave the 5 frames after it out; ignoring the
    holdoff would write a second file."""
    srv = await serve()
    spec = session_spec(
        "trig",
        veth.host,
        filter="udp and (port 9000 or port 7777)",
        sinks=[{"type": "recorder", "trigger": "udp dst port 7777", "after": 0.5}],
    )
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    await send(veth, frames(veth, 20))
    await written(srv, "trig", 20)
    # The trigger, then 5 frames within its 0.5 s (one sender: no start-up time between).
    await send(
        veth, from_host(veth, veth.peer_ip, 1, dport=7777) + frames(veth, 5, start=20), gap=0.02
    )

    async def dumped() -> bool:
        info = (await srv.get("/v1/sessions/trig"))[1]["recorder"]
        return bool(info["latest_dumps"])

    await wait_for(dumped)
    await send(veth, from_host(veth, veth.peer_ip, 1, dport=7777))  # within the holdoff
    await written(srv, "trig", 27)
    await asyncio.sleep(1.0)  # what a second trigger window would take to end
    info = (await srv.get("/v1/sessions/trig"))[1]["recorder"]
    (dump,) = info["latest_dumps"]
    assert info["triggers"] == 1 and info["dumps"] == 1 and info["state"] == "holdoff"
    assert dump["trigger"] is not None and dump["packets"] == 26
    _, _, data = await download(srv, dump["name"])
    lines = tcpdump_read(data)
    assert len(lines) == 26 and ".7777: UDP" in lines[20]
    assert read_pcap_numbers(data) == list(range(25))
    listing = (await srv.get("/v1/files?session=trig"))[1]["files"]
    assert [f["name"] for f in listing] == [dump["name"]]
    families = {f.name: f for f in text_string_to_metric_families(await scrape(srv))}
    assert families["capsvc_recorder_triggers"].samples[0].value == 1
    assert families["capsvc_recorder_dumps"].samples[0].value == 1


async def test_dump_on_stop_writes_pcapng(serve: Starter, veth: VethPair) -> None:
    """``dump_on_stop`` writes what is held when the session stops; a ``.pcapng`` template
    makes pcapng dumps, served as such."""
    srv = await serve()
    spec = recorder_spec("last", veth.host, path="last-%H%M%S.pcapng", dump_on_stop=True)
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    await send(veth, frames(veth, 7))
    await written(srv, "last", 7)
    assert (await srv.delete("/v1/sessions/last"))[0] == 200
    listing = (await srv.get("/v1/files"))[1]["files"]
    (only,) = [f for f in listing if f["name"].startswith("last-")]
    assert only["format"] == "pcapng" and only["packets"] == 7 and only["session"] == "last"
    status, kind, data = await download(srv, only["name"])
    assert status == 200 and kind == "application/x-pcapng"
    assert len(tcpdump_read(data)) == 7


async def test_recorder_memory_is_bounded_service_wide(serve: Starter, veth: VethPair) -> None:
    srv = await serve(service={"max_recorder_bytes": 3 << 20})
    assert (await srv.post("/v1/sessions", recorder_spec("r1", veth.host, max_bytes=2 << 20)))[
        0
    ] == 201
    status, body = await srv.post("/v1/sessions", recorder_spec("r2", veth.host, max_bytes=2 << 20))
    assert status == 409 and "max_recorder_bytes" in body["error"]
    assert (await srv.delete("/v1/sessions/r1"))[0] == 200
    status, body = await srv.post("/v1/sessions", recorder_spec("r2", veth.host, max_bytes=2 << 20))
    assert status == 201, body


# -- conversations ---------------------------------------------------------------------------


async def test_conversations_count_what_was_sent(serve: Starter, veth: VethPair) -> None:
    """40 frames over 4 UDP flows between two addresses: one address pair, 4 flows of 10, two
    endpoints, all exact (nothing evicted); ``top`` cuts each table, ``by`` ranks them."""
    srv = await serve()
    spec = session_spec("talk", veth.host, filter=UDP_9000, sinks=[], conversations=True)
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    batch = frames(veth, 40, flows=4) + frames(veth, 5, start=40, flows=1)  # port 20000: 15
    await send(veth, batch)
    await written(srv, "talk", 45)
    size = len(batch[0])

    status, body = await srv.get("/v1/sessions/talk/conversations?top=3&by=packets")
    assert status == 200 and body["session"] == "talk" and body["by"] == "packets"
    assert body["packets"] == 45 and body["bytes"] == 45 * size
    (pair,) = body["ip"]["rows"]
    assert (pair["a"], pair["b"], pair["packets_ab"], pair["packets_ba"]) == (
        veth.peer_ip,
        "10.200.0.1",
        45,
        0,
    )
    assert pair["bytes_ab"] == 45 * size and pair["error"] == 0
    flows = body["udp"]["rows"]
    assert [(f["a_port"], f["packets_ab"]) for f in flows] == [
        (20000, 15),
        (20001, 10),
        (20002, 10),
    ]
    assert all(f["b_port"] == 9000 and f["error"] == 0 for f in flows)
    assert body["udp"]["held"] == 4 and body["udp"]["evictions"] == 0
    assert body["tcp"]["rows"] == []
    hosts = {e["address"]: e for e in body["endpoints"]["rows"]}
    assert hosts[veth.peer_ip]["tx_packets"] == 45 and hosts["10.200.0.1"]["rx_packets"] == 45

    status, default = await srv.get("/v1/sessions/talk/conversations")
    assert status == 200 and default["by"] == "bytes" and default["top"] == 20
    assert len(default["udp"]["rows"]) == 4


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("top=0", "top"),
        ("top=-1", "top"),
        ("top=ten", "top"),
        ("top=1001", "top"),
        ("top=" + "9" * 40, "top"),
        ("by=size", "by"),
        ("by=", "by"),
    ],
)
async def test_bad_conversation_queries(
    serve: Starter, veth: VethPair, query: str, key: str
) -> None:
    srv = await serve()
    assert (
        await srv.post("/v1/sessions", session_spec("q", veth.host, sinks=[], conversations=True))
    )[0] == 201
    status, body = await srv.get(f"/v1/sessions/q/conversations?{query}")
    assert status == 400 and body["status"] == 400
    assert body["error"].startswith(f"request: {key}: ")


async def test_sessions_without_conversations_or_series(serve: Starter, veth: VethPair) -> None:
    """Turned off for the service, or for one session: 409 naming the key; 404 for none."""
    srv = await serve(service={"conversations": False})
    spec = session_spec("quiet", veth.host, sinks=[], series=False)
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    status, body = await srv.get("/v1/sessions/quiet/conversations")
    assert status == 409 and "conversations = false" in body["error"]
    status, body = await srv.get("/v1/sessions/quiet/series")
    assert status == 409 and "series = false" in body["error"]
    spec = session_spec("loud", veth.host, sinks=[], conversations=True)
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    assert (await srv.get("/v1/sessions/loud/conversations"))[0] == 200
    assert (await srv.get("/v1/sessions/loud/series"))[0] == 200
    info = (await srv.get("/v1/sessions/loud"))[1]
    assert info["conversations"] is True and info["series"] is True and info["recorder"] is None
    for route in ("conversations", "series"):
        status, body = await srv.get(f"/v1/sessions/none/{route}")
        assert status == 404 and "none" in body["error"]


# -- the I/O series --------------------------------------------------------------------------


async def test_series_sums_to_what_was_sent(serve: Starter, veth: VethPair) -> None:
    """Per-second packets and bytes add up to what was sent; seconds after the traffic stopped
    are listed as zeros up to now; ``last`` keeps the newest seconds."""
    srv = await serve()
    spec = session_spec("io", veth.host, filter=UDP_9000, sinks=[])
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    before = time.time()
    batch = frames(veth, 60)
    await send(veth, batch, gap=0.02)
    await written(srv, "io", 60)
    status, body = await srv.get("/v1/sessions/io/series")
    assert status == 200 and body["interval"] == 1.0 and body["seconds"] == 600
    assert sum(body["packets"]) == 60 and sum(body["bytes"]) == sum(len(f) for f in batch)
    assert sum(body["protocols"]["udp"]) == 60 and sum(body["protocols"]["tcp"]) == 0
    assert before - 1 <= body["start"] <= time.time()
    assert len(body["packets"]) == len(body["bytes"]) >= 2  # 1.2 s of traffic
    await asyncio.sleep(2.2)
    later = (await srv.get("/v1/sessions/io/series"))[1]
    assert later["start"] == body["start"] and sum(later["packets"]) == 60
    assert len(later["packets"]) >= len(body["packets"]) + 2 and later["packets"][-2:] == [0, 0]
    status, last = await srv.get("/v1/sessions/io/series?last=3")
    assert status == 200 and len(last["packets"]) == 3 and last["packets"][-2:] == [0, 0]
    assert last["start"] >= body["start"] + len(later["packets"]) - 3
    for bad in ("last=0", "last=601", "last=abc", "last=-5"):
        status, err = await srv.get(f"/v1/sessions/io/series?{bad}")
        assert status == 400 and err["error"].startswith("request: last: "), bad


# -- metrics ---------------------------------------------------------------------------------


async def test_metrics_of_recorders_and_top_talkers(serve: Starter, veth: VethPair) -> None:
    """The recorder's gauges and counters (evictions exact: held + evicted = appended), and the
    top ``metrics_top`` address pairs and endpoints only, whatever the number of talkers;
    the exposition still follows the conventions.

    Mutation: exporting every pair would show 3 conversations here; counting evictions by
    anything but the recorder's own counter breaks held + evicted = sent."""
    srv = await serve(service={"metrics_top": 2})
    spec = recorder_spec("tk", veth.host, max_bytes=1 << 20)
    spec["conversations"] = True
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    big = [f + b"y" * (1000 - len(f)) for f in frames(veth, 1500)]  # 1000-byte frames
    batch = from_host(veth, "10.200.0.7", 30) + from_host(veth, "10.200.0.8", 20)
    batch += from_host(veth, "10.200.0.9", 10)
    await send(veth, batch + big)
    await written(srv, "tk", 1560)
    text = await scrape(srv)
    assert lint(text) == []
    promtool = shutil.which("promtool")
    if promtool is not None:  # Prometheus's own linter, where installed (Debian: prometheus)
        done = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def only(name: str, **labels: str) -> float:
        (sample,) = [
            s
            for s in families[name].samples
            if s.labels["session"] == "tk" and all(s.labels[k] == v for k, v in labels.items())
        ]
        return float(sample.value)

    held = only("capsvc_recorder_held_packets")
    assert 0 < held < 1560
    assert held * (1000 + 24) <= 1 << 20 < (held + 1) * (1000 + 24)
    assert only("capsvc_recorder_evicted_packets", reason="size") == 1560 - held
    assert only("capsvc_recorder_evicted_packets", reason="age") == 0
    assert only("capsvc_recorder_capacity_bytes") == 1 << 20
    assert only("capsvc_recorder_held_bytes") == held * 1000
    assert only("capsvc_recorder_dumps") == 0 and only("capsvc_recorder_dump_errors") == 0

    pairs = {
        (s.labels["a"], s.labels["b"]): s.value
        for s in families["capsvc_conversation_packets"].samples
    }
    assert pairs == {(veth.peer_ip, "10.200.0.1"): 1500, ("10.200.0.7", "10.200.0.1"): 30}
    hosts = {s.labels["address"]: s.value for s in families["capsvc_endpoint_packets"].samples}
    assert hosts == {"10.200.0.1": 1560, veth.peer_ip: 1500}
    status, body = await srv.get("/v1/sessions/tk/conversations?top=2")
    assert status == 200
    by_bytes = {(r["a"], r["b"]): r["bytes"] for r in body["ip"]["rows"]}
    assert by_bytes == {
        (s.labels["a"], s.labels["b"]): s.value
        for s in families["capsvc_conversation_bytes"].samples
    }
