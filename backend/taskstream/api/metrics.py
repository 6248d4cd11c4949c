"""Prometheus metrics of one API process, at `/metrics` when METRICS_ENABLED.

Every API process serves its own `/metrics`: scrape each one (Prometheus labels each by its
`instance`), never one address that a load balancer spreads. Across replicas:

1. `sum` what each process counts of its own work: HTTP requests and their latency
   (`http_metrics`), SSE clients, events delivered, clients dropped, resumes and resets,
   submissions, and the `process_*` and `python_*` families.
2. `max`, never `sum`, what every process sees alike: each reads the whole event log, so events
   published, tasks finished and task durations (observed from the final events its reader sees)
   are counted once per replica. The reader's lag is per process: `max` is the worst.
3. `max` what is read from Redis when a scrape asks (`read_redis`), the same for every process:
   each queue's depth and the live workers (as `/workers` counts them). When Redis does not answer,
   `taskstream_redis_up` is 0 and neither is reported.

The fan-out's counters are plain integers read at scrape time (see `FanoutStats`), so the hot
path pays nothing for them.
"""

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from taskstream.api.fanout import Fanout
from taskstream.api.http_metrics import RequestMetrics
from taskstream.events.entries import LogEntry
from taskstream.events.store import EventStore

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
# A scrape still answers (with the process's own metrics) when Redis is slow to.
REDIS_READ_SECONDS = 3.0


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


@dataclass(frozen=True)
class RedisReading:
    queue_depths: dict[str, int]
    live_workers: int


class RedisCollector(Collector):
    """What the scrape read from Redis just before rendering (`Metrics.read_redis`)."""

    def __init__(self) -> None:
        self.reading: RedisReading | None = None

    def collect(self) -> Iterator[Metric]:
        reading = self.reading
        yield GaugeMetricFamily(
            "taskstream_redis_up",
            "Whether Redis answered this scrape's reads",
            value=int(reading is not None),
        )
        if reading is None:
            return
        depths = GaugeMetricFamily(
            "taskstream_queue_depth",
            "Messages waiting in a Celery queue's list, not yet taken by a worker",
            labels=["queue"],
        )
        for queue, depth in reading.queue_depths.items():
            depths.add_metric([queue], depth)
        yield depths
        yield GaugeMetricFamily(
            "taskstream_live_workers",
            "Workers whose heartbeat is fresh",
            value=reading.live_workers,
        )


class Metrics:
    def __init__(self, fanout: Fanout) -> None:
        self.registry = CollectorRegistry()
        # What prometheus_client's global registry holds, on this process's own.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.submissions = Counter(
            "taskstream_submissions", "Tasks submitted", ["kind"], registry=self.registry
        )
        self.finished = Counter(
            "taskstream_tasks_finished",
            "Tasks that reached a final state, by kind and final state",
            ["kind", "state"],
            registry=self.registry,
        )
        self.durations = Histogram(
            "taskstream_task_seconds",
            "Time from submission to the final event, by kind and final state",
            ["kind", "state"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.http = RequestMetrics(self.registry)
        self.redis = RedisCollector()
        self.registry.register(FanoutCollector(fanout))
        self.registry.register(self.redis)

    def observe(self, entries: list[LogEntry]) -> None:
        for entry in entries:
            if entry.final:
                event = json.loads(entry.json)
                created_ms = int(entry.task_id[:12], 16)
                labels = (event["kind"], event["state"])
                self.finished.labels(*labels).inc()
                self.durations.labels(*labels).observe(
                    max(0.0, entry.key[0] / 1000 - created_ms / 1000)
                )

    async def read_redis(self, store: EventStore, queues: list[str]) -> None:
        """Reads each queue's depth (the length of its Redis list) and the live workers, for the
        scrape about to render. Celery's Redis transport keeps a queue's messages of priority 0
        in a list named as the queue, and taskstream never gives a message another priority."""
        try:
            async with asyncio.timeout(REDIS_READ_SECONDS):
                async with store.redis.pipeline(transaction=False) as pipe:
                    for queue in queues:
                        pipe.llen(queue)
                    depths = await pipe.execute()
                workers = await store.live_workers()
        except (RedisError, TimeoutError, OSError):
            self.redis.reading = None
            return
        self.redis.reading = RedisReading(
            dict(zip(queues, (int(depth) for depth in depths), strict=True)), workers
        )
