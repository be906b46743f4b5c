"""PacketQueue: batches and single packets, in order, counted, across two threads."""

from __future__ import annotations

import sys
import threading

from capsvc import Direction, Packet, PacketBatch
from capsvc._queue import PacketQueue
from capsvc._records import RecordBlock


def taken(q: PacketQueue) -> PacketBatch:
    """``take`` where no RecordBlock was put: a list."""
    batch = q.take()
    assert isinstance(batch, list)
    return batch


def pk(i: int) -> Packet:
    return Packet(i, b"x", 1, Direction.INBOUND, 0)


def test_order_and_counts_of_mixed_puts() -> None:
    q = PacketQueue()
    assert not q and len(q) == 0 and q.take() == []
    q.put([pk(1), pk(2)])
    q.put_one(pk(3))
    q.put([pk(4)])
    assert len(q) == 4 and q
    assert [p.ts_ns for p in taken(q)] == [1, 2, 3, 4]
    assert (q.added, q.taken, len(q)) == (4, 4, 0)
    q.put_one(pk(5))
    assert q.take() == [pk(5)]  # a lone packet comes back as a batch of one
    batch = [pk(6), pk(7)]
    q.put(batch)
    assert q.take() is batch  # a lone batch crosses as it is: no copy


def test_a_taking_thread_sees_every_packet_once_in_order() -> None:
    """Mutations guarded: ``taken`` counted before the pops, or ``added`` after the append (the
    taker can pop and count first), let ``len`` go negative on the taking thread."""
    q = PacketQueue()
    got: list[int] = []
    done = threading.Event()

    def taker() -> None:
        while not done.is_set() or q:
            got.extend(p.ts_ns for p in taken(q))
            assert len(q) >= 0

    thread = threading.Thread(target=taker)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    try:
        thread.start()
        n = 0
        for i in range(20_000):
            if i % 3:
                q.put_one(pk(n))
                n += 1
            else:
                q.put([pk(n), pk(n + 1)])
                n += 2
        done.set()
        thread.join(10)
    finally:
        sys.setswitchinterval(switch)
    assert got == list(range(n))
    assert q.added == q.taken == n


def test_a_lone_batch_crosses_as_it_is_after_blocks_came_and_went() -> None:
    """Once every RecordBlock put was taken (one alone, two joined), a lone list batch
    crosses as it is again, not copied: the queue is back on its path for lists.

    Mutations guarded: the count of blocks put or taken kept wrong (``-= 1``, ``+= 2``,
    ``= len``, ``-= len``): the queue then believes blocks are queued for ever and copies."""
    q = PacketQueue()
    one, two = RecordBlock([b"a"], 1, 1), RecordBlock([b"b"], 1, 1)
    q.put(one)
    assert q.take() is one
    q.put(one)
    q.put(two)
    joined = q.take()
    assert isinstance(joined, RecordBlock) and joined.parts == [b"a", b"b"] and len(joined) == 2
    batch = [pk(1), pk(2)]
    q.put(batch)
    assert q.take() is batch
    assert (q.added, q.taken, len(q)) == (5, 5, 0)
