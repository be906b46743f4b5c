"""Sessions with ``workers = N``: processes on one AF_PACKET fanout group splitting flows."""

from __future__ import annotations

import asyncio
import io
import struct
import time
from collections import defaultdict
from pathlib import Path

import dpkt
import pytest
from _netns import VethPair
from _service import Starter, frames, read_pcap_numbers, session_spec
from prometheus_client.parser import text_string_to_metric_families

from capsvc.service import CaptureService, parse_config, parse_session_spec

pytestmark = pytest.mark.netns

FLOWS = 64


def flows_of(data: bytes) -> dict[int, set[int]]:
    """Source port -> frame numbers, from a pcap."""
    out: dict[int, set[int]] = defaultdict(set)
    for _ts, buf in dpkt.pcap.Reader(io.BytesIO(data)):
        ip = dpkt.ethernet.Ethernet(buf).data
        if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.udp.UDP):
            out[ip.data.sport].add(struct.unpack("!I", bytes(ip.data.data)[:4])[0])
    return out


async def test_two_workers_split_flows_losing_and_duplicating_nothing(
    serve: Starter, veth: VethPair
) -> None:
    srv = await serve()
    count = 2000
    status, info = await srv.post("/v1/sessions", session_spec("split", veth.host, workers=2))
    assert status == 201, info
    assert info["workers"] == 2
    await asyncio.to_thread(veth.send_from_peer, frames(veth, count, flows=FLOWS))
    deadline = time.monotonic() + 15
    while (await srv.get("/v1/sessions/split/stats"))[1]["stats"]["written"] < count:
        assert time.monotonic() < deadline, "workers did not report every packet"
        await asyncio.sleep(0.1)

    async with srv.client.get(srv.url + "/metrics", headers=srv.auth()) as resp:
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    assert families["capsvc_worker_processes"].samples[0].value == 2
    summed = families["capsvc_accepted_packets"].samples[0].value
    assert summed >= count

    status, stream = await srv.get("/v1/sessions/split/pcap")
    assert status == 409 and "workers" in stream["error"]

    status, final = await srv.delete("/v1/sessions/split")
    assert status == 200
    files = [(srv.output_dir / f"split.worker{k}.pcap").read_bytes() for k in (0, 1)]
    per_worker = [read_pcap_numbers(data) for data in files]
    assert all(per_worker), "both workers must have captured flows"
    everything = per_worker[0] + per_worker[1]
    assert sorted(everything) == list(range(count))  # nothing lost, nothing twice
    records = sum(1 for data in files for _ in dpkt.pcap.Reader(io.BytesIO(data)))
    assert records == final["stats"]["packets"] == final["stats"]["written"]  # summed stats
    assert final["stats"]["packets"] >= count and final["stats"]["dropped"] == 0
    flows = [flows_of(data) for data in files]
    assert not set(flows[0]) & set(flows[1]), "a flow was split across workers"
    assert len(set(flows[0]) | set(flows[1])) == FLOWS


async def test_embedded_worker_session_and_failures(tmp_path: Path, veth: VethPair) -> None:
    config = parse_config({"service": {"output_dir": "out", "token_file": "t"}}, cwd=str(tmp_path))
    service = CaptureService(config)
    await service.start()
    try:
        bad = parse_session_spec(session_spec("bad", "cstnosuch0", workers=2))
        with pytest.raises(Exception, match="cstnosuch0"):
            await service.start_session(bad)
        assert service.sessions() == []
        good = await service.start_session(
            parse_session_spec(session_spec("ok", veth.host, workers=2))
        )
        assert good.session is None and good.running
        await asyncio.to_thread(veth.send_from_peer, frames(veth, 100, flows=FLOWS))
        deadline = time.monotonic() + 10
        while good.stats().written < 100:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        final = await service.stop_session("ok")
        assert final.packets == final.written >= 100
    finally:
        await service.stop()
