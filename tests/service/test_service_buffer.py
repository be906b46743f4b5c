"""The session spec's ``buffer_kib`` (tcpdump -B) and pcap sinks' ``nanosecond``."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from _netns import veth_pair

from capsvc.service import ConfigError, SessionSpec, parse_session_spec
from capsvc.service._outputs import open_source


def spec(source: dict[str, object], sinks: list[dict[str, object]] | None = None) -> SessionSpec:
    return parse_session_spec({"name": "b", "source": source, "sinks": sinks or []})


def test_buffer_kib_is_a_source_key_of_afpacket_and_libpcap() -> None:
    for kind in ("afpacket", "libpcap"):
        parsed = spec({"type": kind, "interface": "lo", "buffer_kib": 4096})
        assert dict(parsed.source.options) == {"buffer_kib": 4096}
    with pytest.raises(ConfigError, match=r"source\.buffer_kib.*give buffer_kib or ring_size"):
        spec({"type": "afpacket", "interface": "lo", "buffer_kib": 1, "ring_size": 1 << 22})
    with pytest.raises(ConfigError, match="buffer_kib"):
        spec({"type": "pfring", "interface": "lo", "buffer_kib": 1})  # PF_RING has none
    with pytest.raises(ConfigError, match="buffer_kib"):
        spec({"type": "afpacket", "interface": "lo", "buffer_kib": -1})


def test_pcap_sinks_take_nanosecond() -> None:
    parsed = spec(
        {"type": "afpacket", "interface": "lo"},
        [{"type": "pcap", "path": "a.pcap", "nanosecond": False}],
    )
    assert parsed.sinks[0].nanosecond is False
    with pytest.raises(ConfigError, match="nanosecond"):
        spec(
            {"type": "afpacket", "interface": "lo"},
            [{"type": "pcapng", "path": "a.pcapng", "nanosecond": False}],
        )


@pytest.mark.netns
@pytest.mark.parametrize("backend", ["afpacket", "libpcap"])
def test_buffer_kib_sizes_the_ring_as_tcpdump_B(tmp_path: Path, backend: str) -> None:
    """The ring the service maps for buffer_kib = 1000 is tcpdump -B 1000's: four 256 KiB blocks."""
    if not shutil.which("tcpdump"):
        pytest.skip("needs tcpdump")
    with veth_pair() as pair:
        source = open_source(
            spec({"type": backend, "interface": pair.host, "buffer_kib": 1000}), str(tmp_path)
        )
        try:
            sizes = [
                int(end, 16) - int(start, 16)
                for start, end, name in (
                    (*line.split()[0].split("-"), line.split()[-1])
                    for line in Path("/proc/self/maps").read_text().splitlines()
                )
                if name.startswith("socket:[")
            ]
        finally:
            asyncio.run(source.aclose())
    assert sizes == [4 * 262144]


def _socket_maps() -> list[int]:
    return [
        int(end, 16) - int(start, 16)
        for start, end, name in (
            (*line.split()[0].split("-"), line.split()[-1])
            for line in Path("/proc/self/maps").read_text().splitlines()
        )
        if name.startswith("socket:[")
    ]


@pytest.mark.netns
def test_a_service_session_without_a_ring_size_maps_64_mib(tmp_path: Path) -> None:
    """Mutation guarded: the service's longer default ring (its writer feeds streams and the
    series too) left out, which lost 1.8% of a 1M-frame burst with 4 subscribers."""
    from capsvc.service._outputs import SERVICE_RING_SIZE

    with veth_pair() as pair:
        source = open_source(spec({"type": "afpacket", "interface": pair.host}), str(tmp_path))
        try:
            sizes = _socket_maps()
        finally:
            asyncio.run(source.aclose())
        given = open_source(
            spec({"type": "afpacket", "interface": pair.host, "ring_size": 8 << 20}),
            str(tmp_path),
        )
        try:
            smaller = _socket_maps()
        finally:
            asyncio.run(given.aclose())
    assert sizes == [SERVICE_RING_SIZE] == [64 << 20]
    assert smaller == [8 << 20]
