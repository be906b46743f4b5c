"""Prometheus exposition of the service: its sessions, its build, its process.

Pure module apart from the process collector (which reads /proc at scrape time): a collector
reads a snapshot function at scrape time and turns it into labelled metric families, so nothing
is updated on the hot path and a stopped session simply disappears from the next scrape.

Names follow Prometheus's conventions (and ``promtool check metrics``): one ``capsvc_`` prefix,
snake case, the unit in the name and in base units (``_bytes``, ``_seconds``, ``_packets``),
``_total`` on counters and only there, help text on every family. Every per-session series
carries ``session``, ``source`` (afpacket, libpcap, pfring or file) and ``interface`` ("" for
a file source). Drops are one family, ``capsvc_dropped_packets_total``, told apart by
``reason``: ``queue`` (the session queue was full), ``kernel`` (the kernel or capture library
dropped them), ``subscriber`` (a slow live stream client's own queue was full) and ``sink``
(accepted packets no sink could take, once every sink of the session has failed).

A session with a flight recorder adds ``capsvc_recorder_*``: what it holds (packets, bytes,
beside its capacity), evictions by ``reason`` (``age``: older than its seconds, ``size``: to
stay within its bytes), triggers, dumps and failed dumps. A session that counts conversations
adds the top ``metrics_top`` (default 10) address pairs and endpoints by bytes as gauges
(``capsvc_conversation_bytes{a,b}``, ``capsvc_endpoint_bytes{address}`` and their
``_packets``): at most ``metrics_top`` series per family and session, whatever the traffic; a
pair or endpoint that leaves the top leaves the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from .._packet import Stats
from ..sinks._conversations import Conversation, Endpoint
from ..sinks._recorder import RecorderStats

if TYPE_CHECKING:
    from ._managed import ServiceSession
    from ._service import CaptureService

__all__ = [
    "CONTENT_TYPE",
    "DROP_REASONS",
    "EVICTION_REASONS",
    "SessionSample",
    "SessionsCollector",
    "families",
    "metrics_text",
    "registry_of",
    "sample_of",
    "scrape",
    "scrape_sessions",
]

#: The Content-Type of the Prometheus text format this module writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The values of the ``reason`` label of ``capsvc_dropped_packets_total``.
DROP_REASONS = ("queue", "kernel", "subscriber", "sink")
#: Labels of every per-session series.
SESSION_LABELS = ("session", "source", "interface")
#: The values of the ``reason`` label of ``capsvc_recorder_evicted_packets_total``.
EVICTION_REASONS = ("age", "size")


class SessionSample(NamedTuple):
    """What one scrape knows of one running session.

    Attributes:
        name: the session name (the ``session`` label).
        stats: its counters (summed over workers).
        subscribers: live stream subscribers attached now.
        subscriber_dropped: packets dropped by its subscribers' queues (gone ones included).
        workers: its worker processes (1 for an in-process session).
        source: the source type (the ``source`` label).
        interface: the interface ("" for a file source).
        queue_capacity: the session queue's capacity in packets (summed over workers).
        sink_dropped: accepted packets no sink took because every sink had failed.
        started: when it started (seconds since the epoch); 0 if unknown.
        recorder: its flight recorder's counters; None without one.
        talkers: its top address pairs by bytes (at most ``metrics_top``).
        endpoints: its top endpoints by bytes (at most ``metrics_top``).
    """

    name: str
    stats: Stats
    subscribers: int = 0
    subscriber_dropped: int = 0
    workers: int = 1
    source: str = ""
    interface: str = ""
    queue_capacity: int = 0
    sink_dropped: int = 0
    started: float = 0.0
    recorder: RecorderStats | None = None
    talkers: tuple[Conversation, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()


def _sink_dropped(stats: Stats, all_failed: bool) -> int:
    """Accepted packets neither queued nor written, once nothing can write them any more.

    While a sink works the difference is only the batch the writer holds in hand, on its way:
    not a drop, so it counts only once every sink has failed (from then on it only grows).
    """
    if not all_failed:
        return 0
    return max(0, stats.packets - stats.written - stats.queued)


def sample_of(managed: ServiceSession, top: int = 0) -> SessionSample:
    """The sample of one running session of the service.

    For a worker group the sink drops count once every sink of every worker has failed (the
    workers report their counters summed).

    Args:
        managed: the session.
        top: address pairs and endpoints sampled (the top by bytes); 0 samples none.
    """
    from .._session import SOURCE_QUEUE_DEFAULT

    stats = managed.stats()
    spec = managed.spec
    if managed.session is not None:
        capacity = managed.session.bufsize
        all_failed = managed.session.sinks_failed.is_set()
    else:
        capacity = (spec.queue_size or SOURCE_QUEUE_DEFAULT) * spec.workers
        all_failed = stats.sink_errors >= spec.workers * max(1, len(spec.sinks))
    return SessionSample(
        name=managed.name,
        stats=stats,
        subscribers=len(managed.subscribers),
        subscriber_dropped=managed.dropped_by_gone_subscribers
        + sum(s.dropped for s in managed.subscriber_stats()),
        workers=spec.workers,
        source=spec.source.type,
        interface=spec.source.interface,
        queue_capacity=capacity,
        sink_dropped=_sink_dropped(stats, all_failed),
        started=managed.started,
        recorder=None if managed.recorder is None else managed.recorder.stats(),
        **_talkers(managed, top),
    )


def _talkers(managed: ServiceSession, top: int) -> dict[str, Any]:
    if not top or managed.conversations is None:
        return {}
    snap = managed.conversations.snapshot(top, "bytes")
    return {"talkers": tuple(snap.ip.rows), "endpoints": tuple(snap.endpoints.rows)}


class SessionsCollector:
    """A prometheus-client collector over a snapshot function.

    Args:
        snapshot: returns one SessionSample per running session; called on every scrape.
    """

    def __init__(self, snapshot: Callable[[], Sequence[SessionSample]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families (called by the registry on every scrape)."""
        yield from families(self._snapshot())

    def describe(self) -> Iterable[Metric]:
        """No fixed description: the families are built at scrape time."""
        return ()


#: (name, help, Stats field) of the per-session counters.
_COUNTERS = (
    (
        "capsvc_received_packets_total",
        "Packets the source's kernel or library reported as received.",
        "received",
    ),
    ("capsvc_accepted_packets_total", "Packets accepted into the session queue.", "packets"),
    ("capsvc_accepted_bytes_total", "Wire bytes of the packets accepted.", "bytes"),
    ("capsvc_filtered_packets_total", "Packets the session filter rejected.", "filtered"),
    ("capsvc_written_packets_total", "Accepted packets handed to at least one sink.", "written"),
    ("capsvc_sink_errors_total", "Sink failures (a failed sink is disabled).", "sink_errors"),
)


def _labels(s: SessionSample) -> list[str]:
    return [s.name, s.source, s.interface]


def families(samples: Sequence[SessionSample]) -> list[Metric]:
    """Build the session metric families for a list of samples.

    Returns:
        ``capsvc_sessions`` and one family per counter or gauge, each with one sample per
        session (the drops: one per session and reason).
    """
    out: list[Metric] = []
    sessions = GaugeMetricFamily("capsvc_sessions", "Capture sessions running.")
    sessions.add_metric([], len(samples))
    out.append(sessions)
    for name, doc, field in _COUNTERS:
        counter = CounterMetricFamily(name, doc, labels=SESSION_LABELS)
        for s in samples:
            counter.add_metric(_labels(s), getattr(s.stats, field))
        out.append(counter)
    dropped = CounterMetricFamily(
        "capsvc_dropped_packets",
        "Packets lost, by reason: queue (the session queue was full), kernel (dropped by the "
        "kernel or capture library), subscriber (a live stream client's queue was full), "
        "sink (every sink of the session had failed).",
        labels=[*SESSION_LABELS, "reason"],
    )
    gauges = {
        "queued": GaugeMetricFamily(
            "capsvc_queued_packets", "Packets waiting in the session queue.", labels=SESSION_LABELS
        ),
        "capacity": GaugeMetricFamily(
            "capsvc_queue_capacity_packets",
            "Capacity of the session queue; beyond it, packets are dropped (reason=queue).",
            labels=SESSION_LABELS,
        ),
        "subscribers": GaugeMetricFamily(
            "capsvc_subscribers", "Live stream subscribers attached.", labels=SESSION_LABELS
        ),
        "workers": GaugeMetricFamily(
            "capsvc_worker_processes", "Worker processes of the session.", labels=SESSION_LABELS
        ),
        "started": GaugeMetricFamily(
            "capsvc_session_start_time_seconds",
            "When the session started, in seconds since the epoch.",
            labels=SESSION_LABELS,
        ),
    }
    for s in samples:
        labels = _labels(s)
        for reason, value in zip(
            DROP_REASONS,
            (s.stats.dropped, s.stats.kernel_dropped, s.subscriber_dropped, s.sink_dropped),
            strict=True,
        ):
            dropped.add_metric([*labels, reason], value)
        gauges["queued"].add_metric(labels, s.stats.queued)
        gauges["capacity"].add_metric(labels, s.queue_capacity)
        gauges["subscribers"].add_metric(labels, s.subscribers)
        gauges["workers"].add_metric(labels, s.workers)
        gauges["started"].add_metric(labels, s.started)
    out.append(dropped)
    out += gauges.values()
    out += _recorder_families(samples)
    out += _talker_families(samples)
    return out


def _recorder_families(samples: Sequence[SessionSample]) -> list[Metric]:
    """The flight recorders' families (sessions without one have no series in them)."""
    labels = SESSION_LABELS
    held_packets = GaugeMetricFamily(
        "capsvc_recorder_held_packets", "Packets the flight recorder holds.", labels=labels
    )
    held_bytes = GaugeMetricFamily(
        "capsvc_recorder_held_bytes",
        "Captured bytes of the packets the flight recorder holds.",
        labels=labels,
    )
    capacity = GaugeMetricFamily(
        "capsvc_recorder_capacity_bytes",
        "The flight recorder's memory bound (max_bytes): held bytes plus 24 a packet stay "
        "within it.",
        labels=labels,
    )
    evicted = CounterMetricFamily(
        "capsvc_recorder_evicted_packets",
        "Packets the flight recorder let go, by reason: age (older than its seconds), size "
        "(to stay within its max_bytes).",
        labels=[*labels, "reason"],
    )
    triggers = CounterMetricFamily(
        "capsvc_recorder_triggers",
        "Trigger matches that opened a dump window.",
        labels=labels,
    )
    dumps = CounterMetricFamily(
        "capsvc_recorder_dumps", "Dumps written (asked for and triggered).", labels=labels
    )
    errors = CounterMetricFamily(
        "capsvc_recorder_dump_errors",
        "Trigger dumps that could not be written (logged; capture went on).",
        labels=labels,
    )
    for s in samples:
        r = s.recorder
        if r is None:
            continue
        values = _labels(s)
        held_packets.add_metric(values, r.packets)
        held_bytes.add_metric(values, r.bytes)
        capacity.add_metric(values, r.max_bytes)
        evicted.add_metric([*values, "age"], r.evicted_age)
        evicted.add_metric([*values, "size"], r.evicted_size)
        triggers.add_metric(values, r.triggers)
        dumps.add_metric(values, r.dumps)
        errors.add_metric(values, r.dump_errors)
    return [held_packets, held_bytes, capacity, evicted, triggers, dumps, errors]


def _talker_families(samples: Sequence[SessionSample]) -> list[Metric]:
    """The top address pairs and endpoints of each session, as gauges (bounded: ``talkers``
    and ``endpoints`` hold at most ``metrics_top`` each)."""
    pair = [*SESSION_LABELS, "a", "b"]
    host = [*SESSION_LABELS, "address"]
    doc = (
        " (a top by bytes, of at most metrics_top rows per session; side a is the source of "
        "the first packet seen; approximate past the table's capacity: see "
        "/v1/sessions/NAME/conversations)."
    )
    pair_bytes = GaugeMetricFamily(
        "capsvc_conversation_bytes",
        "Wire bytes between two addresses, both ways" + doc,
        labels=pair,
    )
    pair_packets = GaugeMetricFamily(
        "capsvc_conversation_packets", "Packets between two addresses, both ways" + doc, labels=pair
    )
    host_bytes = GaugeMetricFamily(
        "capsvc_endpoint_bytes", "Wire bytes an address sent and received" + doc, labels=host
    )
    host_packets = GaugeMetricFamily(
        "capsvc_endpoint_packets", "Packets an address sent and received" + doc, labels=host
    )
    for s in samples:
        values = _labels(s)
        for c in s.talkers:
            pair_bytes.add_metric([*values, c.a, c.b], c.bytes)
            pair_packets.add_metric([*values, c.a, c.b], c.packets)
        for e in s.endpoints:
            host_bytes.add_metric([*values, e.address], e.bytes)
            host_packets.add_metric([*values, e.address], e.packets)
    return [pair_bytes, pair_packets, host_bytes, host_packets]


class _BuildInfo:
    """``capsvc_build_info{version,python}``: always 1, labelled with what runs."""

    def collect(self) -> Iterator[Metric]:
        import platform

        from .. import __version__

        info = InfoMetricFamily("capsvc_build", "The capsvc version running.")
        info.add_metric([], {"version": __version__, "python": platform.python_version()})
        yield info

    def describe(self) -> Iterable[Metric]:
        return self.collect()


def registry_of(snapshot: Callable[[], Sequence[SessionSample]]) -> CollectorRegistry:
    """A registry with everything ``/metrics`` shows.

    The sessions (from ``snapshot``), ``capsvc_build_info``, and prometheus-client's process
    collector (``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
    ``process_open_fds``, ...) and platform collector (``python_info``).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SessionsCollector(snapshot))
    registry.register(_BuildInfo())
    registry.register(ProcessCollector(registry=None))
    registry.register(PlatformCollector(registry=None))
    return registry


def metrics_text(samples: Sequence[SessionSample]) -> bytes:
    """Render samples, the build and the process in the Prometheus text format.

    Args:
        samples: one per running session.

    Returns:
        The exposition text, UTF-8.
    """
    return generate_latest(registry_of(lambda: samples))


def scrape(service: CaptureService) -> bytes:
    """The ``/metrics`` text of a service: every running session, the build, the process."""
    return scrape_sessions(service.sessions(), service.config.service.metrics_top)


def scrape_sessions(sessions: Sequence[ServiceSession], top: int) -> bytes:
    """The ``/metrics`` text of the running ones of ``sessions`` (``top`` address pairs and
    endpoints each). It takes the conversation sinks' locks and sorts their tables: call it
    in a worker thread, with the list of sessions taken on the event loop."""
    return metrics_text([sample_of(m, top) for m in sessions if m.running])
