"""The C block parser against the Python one: the same packets for every block, whole or broken.

capsvc/_speedups.c stands in for ``parse_block_py`` when it is built; every difference here is
a packet captured wrongly, so the two run side by side on hand-built blocks (raw, cooked, VLAN
tags, several packets) and on every truncation and random damage of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from _blocks import build_block
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc import Direction, Packet
from capsvc._accel import speedups
from capsvc.sources.afpacket._tpacket import (
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    parse_block_py,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def fast() -> ModuleType:
    module = speedups()
    if module is None:
        if shutil.which("cc") and not os.environ.get("CAPSVC_NO_SPEEDUPS"):
            pytest.fail("a C compiler is here, yet capsvc._speedups was not built")
        pytest.skip("capsvc._speedups is not built (no C compiler)")
    return module


def both(fast: ModuleType, block: bytes, base: int = 0, **kw: bool) -> list[Packet]:
    """Parse with both; they must agree, packet for packet and type for type."""
    ours = fast.parse_block(
        block,
        base,
        kw.get("cooked", False),
        kw.get("restore_vlan", False),
        [],
        Packet,
        Direction.INBOUND,
        Direction.OUTBOUND,
    )
    reference = parse_block_py(
        block,
        base,
        cooked=kw.get("cooked", False),
        restore_vlan=kw.get("restore_vlan", False),
    )
    assert ours == reference
    assert all(type(p) is Packet and type(p.data) is bytes for p in ours)
    assert [type(p.direction) for p in ours] == [Direction] * len(ours)
    return list(ours)


SAMPLE = [
    {"data": b"\x01" * 60, "sec": 7, "nsec": 999_999_999, "wire": 1514, "ifindex": 3},
    {"data": bytes(range(200)), "pkttype": 4, "ifindex": -5},
    {"data": b"v" * 40, "status": TP_STATUS_VLAN_VALID, "tci": 0x1_2345, "tpid": 0x88A8},
    {"data": b"w" * 40, "status": TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID, "tpid": 0x88A8},
    {"data": b"s" * 11, "status": TP_STATUS_VLAN_VALID},  # too short to hold a tag
    {"data": b"", "hatype": 772, "addr": b"\xff" * 8},
]


@pytest.mark.parametrize("cooked", [False, True])
@pytest.mark.parametrize("restore_vlan", [False, True])
def test_same_packets_for_every_mode(fast: ModuleType, cooked: bool, restore_vlan: bool) -> None:
    got = both(fast, build_block(SAMPLE), cooked=cooked, restore_vlan=restore_vlan)
    assert len(got) == len(SAMPLE)
    assert got[0].ts_ns == 7 * 10**9 + 999_999_999


def test_block_at_an_offset_appends_to_the_batch(fast: ModuleType) -> None:
    block = build_block(SAMPLE, lead=4096)
    first = [Packet(1, b"x", 1, Direction.UNKNOWN, 0)]
    out = fast.parse_block(block, 4096, False, False, first, Packet, 1, 2)
    assert out is first and len(out) == 1 + len(SAMPLE)
    assert fast.parse_block(block, len(block), False, False, [], Packet, 1, 2) == []
    assert parse_block_py(block, len(block)) == []


def test_every_truncation(fast: ModuleType) -> None:
    """Mutation guarded: a C bounds check off by one (``>`` for ``>=``) reads past the end."""
    block = build_block(SAMPLE)
    for cut in range(len(block) + 1):
        for cooked in (False, True):
            both(fast, block[:cut], cooked=cooked, restore_vlan=True)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=120), min_size=1, max_size=6),
    st.integers(min_value=0, max_value=400),
    st.binary(min_size=1, max_size=24),
    st.booleans(),
)
def test_random_damage(
    fast: ModuleType, frames: list[bytes], at: int, noise: bytes, cooked: bool
) -> None:
    block = bytearray(build_block([{"data": f, "status": TP_STATUS_VLAN_VALID} for f in frames]))
    at %= len(block)
    block[at : at + len(noise)] = noise[: len(block) - at]
    both(fast, bytes(block), cooked=cooked, restore_vlan=True)


def test_no_speedups_in_the_environment_selects_python() -> None:
    code = (
        "from capsvc.sources.afpacket import _tpacket; from capsvc.sinks import _pcap; "
        "print(_tpacket._C is None, _pcap._C is None)"
    )
    for value, expected in (("1", "True True"), ("", "False False")):
        env = {**os.environ, "CAPSVC_NO_SPEEDUPS": value}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if value == "" and speedups() is None:
            expected = "True True"
        assert done.stdout.strip() == expected, done.stderr
