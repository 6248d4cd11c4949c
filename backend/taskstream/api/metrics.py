"""Prometheus metrics of one API process, at `/metrics` when METRICS_ENABLED.

The fan-out's counters are plain integers read at scrape time (see `FanoutStats`), so the hot
path pays nothing for them. Task durations are observed from the final events that this process's
reader sees: every API process sees every task, so aggregate them across replicas with `max`, not
`sum`.
"""

import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from taskstream.api.fanout import Fanout
from taskstream.events.entries import LogEntry

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class FanoutCollector(Collector):
    def __init__(self, fanout: Fanout) -> None:
        self._fanout = fanout

    def collect(self) -> Iterator[Metric]:
        stats = self._fanout.stats
        yield GaugeMetricFamily(
            "taskstream_sse_clients", "SSE clients connected", value=self._fanout.clients
        )
        for name, documentation, value in (
            ("taskstream_events_published", "Events read from the log", stats.published),
            ("taskstream_events_delivered", "Events handed to SSE clients", stats.delivered),
            ("taskstream_clients_dropped", "SSE clients dropped as too slow", stats.dropped),
            ("taskstream_resumes", "Streams opened with a last event id", stats.resumes),
            ("taskstream_resets", "Resumes answered with a reset event", stats.resets),
        ):
            yield CounterMetricFamily(name, documentation, value=value)
        yield GaugeMetricFamily(
            "taskstream_reader_lag_seconds",
            "Age of the newest event when the reader handed it out",
            value=stats.lag_seconds,
        )


class Metrics:
    def __init__(self, fanout: Fanout) -> None:
        self.registry = CollectorRegistry()
        self.submissions = Counter(
            "taskstream_submissions", "Tasks submitted", ["kind"], registry=self.registry
        )
        self.durations = Histogram(
            "taskstream_task_seconds",
            "Time from submission to the final event, by kind and final state",
            ["kind", "state"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(FanoutCollector(fanout))

    def observe(self, entries: list[LogEntry]) -> None:
        for entry in entries:
            if entry.final:
                event = json.loads(entry.json)
                created_ms = int(entry.task_id[:12], 16)
                self.durations.labels(event["kind"], event["state"]).observe(
                    max(0.0, entry.key[0] / 1000 - created_ms / 1000)
                )
