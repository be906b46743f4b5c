"""The C pcap record encoder against the Python one: byte for byte, clamping included."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc import Direction, Packet
from capsvc._accel import speedups
from capsvc.sinks._pcap import encode_records_py


@pytest.fixture(scope="module")
def fast() -> ModuleType:
    module = speedups()
    if module is None:
        pytest.skip("capsvc._speedups is not built (no C compiler)")
    return module


packets = st.builds(
    Packet,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=300) | st.binary(max_size=40).map(lambda b: bytes(memoryview(b))),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from(list(Direction)),
    st.integers(min_value=0, max_value=2**32 - 1),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(packets, max_size=12), st.integers(min_value=1, max_value=400), st.booleans())
def test_same_bytes_as_python(
    fast: ModuleType, batch: list[Packet], snaplen: int, nanosecond: bool
) -> None:
    """Mutation guarded: clamping left out of C turns a time before 1970 into 2106."""
    assert fast.encode_records(batch, snaplen, nanosecond) == encode_records_py(
        batch, snaplen, nanosecond=nanosecond
    )


def test_buffers_other_than_bytes_and_refusals(fast: ModuleType) -> None:
    view = Packet(5_000_000_123, memoryview(b"abcdef"), 6, Direction.INBOUND, 0)  # type: ignore[arg-type]
    assert fast.encode_records([view], 4, True) == encode_records_py([view], 4, nanosecond=True)
    with pytest.raises(TypeError):
        fast.encode_records([("not", "a packet")], 10, True)
    assert fast.encode_records([], 10, False) == b""


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, max_size=30))
def test_wire_total_is_the_sum_of_wire_lengths(fast: ModuleType, batch: list[Packet]) -> None:
    assert fast.wire_total(batch) == sum(p.wire_len for p in batch)
