"""Prometheus exposition of the service's sessions.

Pure module: a collector reads a snapshot function at scrape time and turns it into labelled metric
families (one family per counter, one sample per session), so nothing is updated on the hot path
and a stopped session simply disappears from the next scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .._packet import Stats

__all__ = ["CONTENT_TYPE", "SessionSample", "SessionsCollector", "metrics_text"]

#: The Content-Type of the Prometheus text format this module writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SessionSample(NamedTuple):
    """What one scrape knows of one running session.

    Attributes:
        name: the session name (the ``session`` label).
        stats: its counters (summed over workers).
        subscribers: live stream subscribers attached now.
        subscriber_dropped: packets dropped by its subscribers' queues (gone ones included).
        workers: its worker processes (1 for an in-process session).
    """

    name: str
    stats: Stats
    subscribers: int
    subscriber_dropped: int
    workers: int


#: (metric name, help, Stats field) of the per-session counters.
_COUNTERS = (
    ("capsvc_session_packets", "Packets accepted into the session queue.", "packets"),
    ("capsvc_session_bytes", "Wire bytes of the accepted packets.", "bytes"),
    (
        "capsvc_session_dropped_queue",
        "Packets dropped because the session queue was full.",
        "dropped",
    ),
    (
        "capsvc_session_dropped_kernel",
        "Packets the kernel or capture library dropped.",
        "kernel_dropped",
    ),
    ("capsvc_session_filtered", "Packets rejected by the session filter.", "filtered"),
    ("capsvc_session_sink_errors", "Sink failures (a failed sink is disabled).", "sink_errors"),
    ("capsvc_session_written", "Packets handed to the sinks.", "written"),
)


class SessionsCollector:
    """A prometheus-client collector over a snapshot function.

    Args:
        snapshot: returns one SessionSample per running session; called on every scrape.
    """

    def __init__(self, snapshot: Callable[[], Sequence[SessionSample]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families (called by the registry on every scrape)."""
        samples = self._snapshot()
        yield from families(samples)

    def describe(self) -> Iterable[Metric]:
        """No fixed description: the families are built at scrape time."""
        return ()


def families(samples: Sequence[SessionSample]) -> list[Metric]:
    """Build the metric families for a list of session samples.

    Returns:
        One family per counter or gauge, each with one sample labelled ``session`` per session.
    """
    out: list[Metric] = []
    sessions = GaugeMetricFamily("capsvc_sessions", "Capture sessions running.")
    sessions.add_metric([], len(samples))
    out.append(sessions)
    for name, doc, field in _COUNTERS:
        counter = CounterMetricFamily(name, doc, labels=["session"])
        for s in samples:
            counter.add_metric([s.name], getattr(s.stats, field))
        out.append(counter)
    queued = GaugeMetricFamily(
        "capsvc_session_queued", "Packets waiting in the session queue.", labels=["session"]
    )
    subs = GaugeMetricFamily(
        "capsvc_session_subscribers", "Live stream subscribers attached.", labels=["session"]
    )
    workers = GaugeMetricFamily(
        "capsvc_session_workers", "Worker processes of the session.", labels=["session"]
    )
    sub_dropped = CounterMetricFamily(
        "capsvc_session_subscriber_dropped",
        "Packets dropped by slow live stream subscribers' queues.",
        labels=["session"],
    )
    for s in samples:
        queued.add_metric([s.name], s.stats.queued)
        subs.add_metric([s.name], s.subscribers)
        workers.add_metric([s.name], s.workers)
        sub_dropped.add_metric([s.name], s.subscriber_dropped)
    out += [queued, subs, workers, sub_dropped]
    return out


def metrics_text(samples: Sequence[SessionSample]) -> bytes:
    """Render samples in the Prometheus text format (a fresh registry per call).

    Args:
        samples: one per running session.

    Returns:
        The exposition text, UTF-8.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SessionsCollector(lambda: samples))
    return generate_latest(registry)
