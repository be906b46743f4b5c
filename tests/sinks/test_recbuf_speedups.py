"""The flight recorder's C append against the Python one: the same records held, the same
counts, whatever the batches, bounds, buffer sizes and open views."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc import Direction, Packet
from capsvc.sinks import _recbuf
from capsvc.sinks._recbuf import RecordRing

pytestmark = pytest.mark.skipif(
    _recbuf._ring_append is None, reason="capsvc._speedups is not built (no C compiler)"
)


@contextmanager
def python_append() -> Iterator[None]:
    """RecordRing.append through its Python loop (the reference) while inside."""
    saved = _recbuf._ring_append
    _recbuf._ring_append = None
    try:
        yield
    finally:
        _recbuf._ring_append = saved


packets = st.builds(
    Packet,
    st.integers(min_value=0, max_value=3_000_000_000),  # 3 s of packet time, in any order
    st.binary(max_size=300),
    # wire lengths and interfaces past 32 bits: the C loop leaves those to the Python code
    st.integers(min_value=0, max_value=2**33) | st.integers(min_value=0, max_value=400),
    st.sampled_from(list(Direction)),
    st.integers(min_value=0, max_value=2**33) | st.just(1),
)
#: ("append", batch) or ("view", None) / ("release", None): a reader that comes and goes.
steps = st.lists(
    st.tuples(st.just("append"), st.lists(packets, max_size=40))
    | st.tuples(st.sampled_from(["view", "release"]), st.none()),
    max_size=25,
)


def state(ring: RecordRing) -> tuple[object, ...]:
    view = ring.view()
    try:
        held = [p for batch in RecordRing.read(view) for p in batch]
    finally:
        ring.release(view)
    return (
        held,
        ring.packets,
        ring.bytes,
        ring.charged,
        ring.appended,
        ring.evicted_age,
        ring.evicted_size,
        ring.newest_ns,
        ring.first_ns,
        ring.last_ns,
    )


def run(
    todo: list[tuple[str, list[Packet] | None]], max_bytes: int, seconds: float, chunk: int
) -> tuple[object, ...]:
    ring = RecordRing(max_bytes, seconds, chunk_size=chunk)
    views = []
    for what, batch in todo:
        if what == "append":
            assert batch is not None
            ring.append(batch)
            assert ring.charged <= max_bytes or ring.packets == 0
        elif what == "view":
            views.append(ring.view())
        elif views:
            ring.release(views.pop())
    return state(ring)


@settings(max_examples=300, deadline=None)
@given(
    steps,
    st.integers(min_value=25, max_value=6000),
    st.sampled_from([0.0, 0.5, 2.0]),
    st.integers(min_value=24, max_value=3000),
)
def test_c_append_holds_what_the_python_one_holds(
    todo: list[tuple[str, list[Packet] | None]], max_bytes: int, seconds: float, chunk: int
) -> None:
    """Mutation guarded: the C loop evicting one record too few (``>=`` for ``>``), reading
    the next record's length from the wrong offset, or not charging the 24-byte header."""
    fast = run(todo, max_bytes, seconds, chunk)
    with python_append():
        slow = run(todo, max_bytes, seconds, chunk)
    assert fast == slow


def test_a_full_ring_evicts_across_buffers_in_c() -> None:
    """The steady state of a long capture: every append evicts, the oldest buffer empties
    again and again (the C loop stops there and the Python code goes on past it)."""
    batch = [Packet(i, bytes([i % 256]) * 100, 100, Direction.INBOUND, 2) for i in range(5000)]
    fast = run([("append", batch[k : k + 700]) for k in range(0, 5000, 700)], 20_000, 0, 4096)
    with python_append():
        slow = run([("append", batch[k : k + 700]) for k in range(0, 5000, 700)], 20_000, 0, 4096)
    assert fast == slow
    held = fast[0]
    assert isinstance(held, list)
    assert len(held) == 20_000 // 124 and held == batch[-len(held) :]


def test_the_c_loop_refuses_a_state_the_ring_never_makes() -> None:
    """Positions outside the buffers take nothing and change nothing (no write out of
    bounds)."""
    assert _recbuf._ring_append is not None
    tail = bytearray(100)
    batch = [Packet(1, b"x" * 10, 10, Direction.INBOUND, 0)]
    got = _recbuf._ring_append(batch, 0, tail, 101, tail, 0, 0, 0, 1000, None)
    assert got == (1, 101, 0, 0, 0, 0, 0, 0, None)
    assert tail == bytearray(100)
