"""One reader of the event log per API process, fanning each event out to every SSE client.

No client ever costs a Redis connection or command while it is live: the reader blocks on
`XREAD` for the whole process, encodes each event once as an SSE message, and hands every batch to
the clients' bounded buffers. A client whose buffer is full has fallen behind: it is dropped, and
resumes from the log by its last event id when it reconnects, so a slow reader cannot grow memory.

Keep-alives are one shared heartbeat, handed to every client like a batch of events, rather than a
timer per client. The counters here are plain integers read when metrics are scraped, so counting
costs the hot path nothing.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, TimeoutError

from taskstream.events.entries import LogEntry, parse_entries
from taskstream.events.ids import ZERO, EventId, format_event_id, parse_event_id
from taskstream.events.store import EventStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    """An event encoded once as an SSE message, shared by every client that gets it."""

    key: EventId
    task_id: str
    final: bool
    data: bytes
    owner: str = ""

    @classmethod
    def of(cls, entry: LogEntry) -> "Frame":
        message = f"id: {entry.id}\nevent: {entry.type}\ndata: {entry.json}\n\n"
        return cls(entry.key, entry.task_id, entry.final, message.encode(), entry.owner)


# A comment line: clients ignore it, proxies see the connection is alive. It has no event id.
HEARTBEAT = Frame(key=ZERO, task_id="", final=False, data=b": keep-alive\n\n")


class StreamClosed(Exception):
    """The subscriber was dropped (too slow) or the server is shutting down."""


class Subscriber:
    def __init__(
        self, task_id: str | None, start: EventId, limit: int, principal: str | None = None
    ) -> None:
        self.task_id = task_id
        self.principal = principal
        self.start = start
        self._limit = limit
        self._frames: deque[Frame] = deque()
        self._wakeup = asyncio.Event()
        self.closed_reason: str | None = None

    def offer(self, frames: list[Frame]) -> bool:
        if len(self._frames) + len(frames) > self._limit:
            self.close("too slow: its buffer is full")
            return False
        self._frames.extend(frames)
        self._wakeup.set()
        return True

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._frames.clear()
        self._wakeup.set()

    async def next_batch(self) -> list[Frame]:
        while not self._frames:
            if self.closed_reason is not None:
                raise StreamClosed(self.closed_reason)
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.closed_reason is not None:
            raise StreamClosed(self.closed_reason)
        batch = list(self._frames)
        self._frames.clear()
        return batch


@dataclass
class FanoutStats:
    published: int = 0
    delivered: int = 0
    dropped: int = 0
    resumes: int = 0
    resets: int = 0
    lag_seconds: float = 0.0


class Fanout:
    def __init__(
        self,
        store: EventStore,
        reader: "aioredis.Redis",
        block_ms: int,
        buffer_limit: int,
        heartbeat_seconds: float = 15.0,
    ) -> None:
        self._store = store
        self._reader = reader
        self._block_ms = block_ms
        self._buffer_limit = buffer_limit
        self._heartbeat_seconds = heartbeat_seconds
        self.position: EventId = ZERO
        self.ready = asyncio.Event()
        # Clients of every task, by the principal whose tasks they see (None: everyone's).
        self._everything: dict[str | None, set[Subscriber]] = {}
        self._by_task: dict[str, set[Subscriber]] = {}
        self._per_principal: Counter[str | None] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = FanoutStats()
        self.observers: list[Callable[[list[LogEntry]], None]] = []

    @property
    def clients(self) -> int:
        return int(sum(self._per_principal.values()))

    def clients_of(self, principal: str | None) -> int:
        return self._per_principal[principal]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="event-log-reader"),
            asyncio.create_task(self._beat(), name="sse-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close_all("server shutting down")

    def _subscribers(self) -> list[Subscriber]:
        return [
            *(sub for subs in self._everything.values() for sub in subs),
            *(sub for subs in self._by_task.values() for sub in subs),
        ]

    def _close_all(self, reason: str) -> None:
        for sub in self._subscribers():
            sub.close(reason)
        self._everything.clear()
        self._by_task.clear()
        self._per_principal.clear()

    def subscribe(self, task_id: str | None = None, principal: str | None = None) -> Subscriber:
        """A new client's buffer; it will get every event after `Subscriber.start`.

        `principal`: only that principal's events reach it (None: everyone's).
        """
        sub = Subscriber(task_id, self.position, self._buffer_limit, principal)
        if task_id is None:
            self._everything.setdefault(principal, set()).add(sub)
        else:
            self._by_task.setdefault(task_id, set()).add(sub)
        self._per_principal[principal] += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        group = self._by_task if sub.task_id is not None else self._everything
        key: Any = sub.task_id if sub.task_id is not None else sub.principal
        subs = group.get(key)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del group[key]
        self._per_principal[sub.principal] -= 1
        if self._per_principal[sub.principal] <= 0:
            del self._per_principal[sub.principal]

    def publish(self, frames: list[Frame]) -> None:
        self.position = frames[-1].key
        stats = self.stats
        stats.published += len(frames)
        stats.lag_seconds = max(0.0, time.time() - frames[-1].key[0] / 1000)
        for principal, subs in list(self._everything.items()):
            # Each principal's share of the batch is picked out once, whatever its client count.
            mine = frames if principal is None else [f for f in frames if f.owner == principal]
            if not mine:
                continue
            offered = 0
            for sub in list(subs):
                if sub.offer(mine):
                    offered += 1
                else:
                    self.unsubscribe(sub)
                    stats.dropped += 1
            stats.delivered += offered * len(mine)
        if not self._by_task:
            return
        per_task: dict[str, list[Frame]] = {}
        for frame in frames:
            if frame.task_id in self._by_task:
                per_task.setdefault(frame.task_id, []).append(frame)
        for task_id, task_frames in per_task.items():
            for sub in list(self._by_task.get(task_id, ())):
                if sub.offer(task_frames):
                    stats.delivered += len(task_frames)
                else:
                    self.unsubscribe(sub)
                    stats.dropped += 1

    async def _beat(self) -> None:
        heartbeat = [HEARTBEAT]
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            for sub in self._subscribers():
                if not sub.offer(heartbeat):
                    self.unsubscribe(sub)
                    self.stats.dropped += 1

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                if not self.ready.is_set():
                    self.position = parse_event_id(await self._store.last_event_id()) or ZERO
                    self.ready.set()
                    log.info("event reader starts after %s", format_event_id(self.position))
                reply: Any = await self._reader.xread(
                    {self._store.keys.events: format_event_id(self.position)},
                    count=1_000,
                    block=self._block_ms,
                )
                delay = 0.1
            except (ConnectionError, TimeoutError, OSError) as exc:
                log.warning("event reader lost Redis (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                await self._check_log_not_rewound()
                continue
            for _stream, raw in reply or ():
                entries = parse_entries(raw)
                if entries:
                    self.publish([Frame.of(entry) for entry in entries])
                    for observe in self.observers:
                        observe(entries)

    async def _check_log_not_rewound(self) -> None:
        """After an outage: if Redis came back with an older log, follow it and drop clients."""
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            bounds = await self._store.bounds()
            if bounds.last_id < self.position:
                log.warning("the event log went back to %s: clients must reset", bounds.last_id)
                self.position = bounds.last_id
                self._close_all("the event log was reset")
