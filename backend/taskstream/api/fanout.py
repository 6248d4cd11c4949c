"""One reader of the event log per API process, fanning each event out to every SSE client.

No client ever costs a Redis connection or command while it is live: the reader blocks on
`XREAD` for the whole process, encodes each event once as an SSE message, and hands every batch to
the clients' bounded buffers. A client whose buffer is full has fallen behind: it is dropped, and
resumes from the log by its last event id when it reconnects, so a slow reader cannot grow memory.
"""

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, TimeoutError

from taskstream.events.entries import LogEntry
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

    @classmethod
    def of(cls, entry: LogEntry) -> "Frame":
        message = f"id: {entry.id}\nevent: {entry.type}\ndata: {entry.json}\n\n"
        return cls(key=entry.key, task_id=entry.task_id, final=entry.final, data=message.encode())


class StreamClosed(Exception):
    """The subscriber was dropped (too slow) or the server is shutting down."""


class Subscriber:
    def __init__(self, task_id: str | None, start: EventId, limit: int) -> None:
        self.task_id = task_id
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


class Fanout:
    def __init__(
        self, store: EventStore, reader: "aioredis.Redis", block_ms: int, buffer_limit: int
    ) -> None:
        self._store = store
        self._reader = reader
        self._block_ms = block_ms
        self._buffer_limit = buffer_limit
        self.position: EventId = ZERO
        self.ready = asyncio.Event()
        self._everything: set[Subscriber] = set()
        self._by_task: dict[str, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        return len(self._everything) + sum(len(subs) for subs in self._by_task.values())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-log-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in [*self._everything, *(s for subs in self._by_task.values() for s in subs)]:
            sub.close("server shutting down")
        self._everything.clear()
        self._by_task.clear()

    def subscribe(self, task_id: str | None = None) -> Subscriber:
        """A new client's buffer; it will get every event after `Subscriber.start`."""
        sub = Subscriber(task_id, self.position, self._buffer_limit)
        if task_id is None:
            self._everything.add(sub)
        else:
            self._by_task.setdefault(task_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub.task_id is None:
            self._everything.discard(sub)
            return
        subs = self._by_task.get(sub.task_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_task[sub.task_id]

    def publish(self, frames: list[Frame]) -> None:
        self.position = frames[-1].key
        for sub in list(self._everything):
            if not sub.offer(frames):
                self._everything.discard(sub)
        if not self._by_task:
            return
        per_task: dict[str, list[Frame]] = {}
        for frame in frames:
            if frame.task_id in self._by_task:
                per_task.setdefault(frame.task_id, []).append(frame)
        for task_id, task_frames in per_task.items():
            for sub in list(self._by_task.get(task_id, ())):
                if not sub.offer(task_frames):
                    self.unsubscribe(sub)

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
            for _stream, entries in reply or ():
                frames = [Frame.of(LogEntry.from_redis(str(i), _text(f))) for i, f in entries]
                if frames:
                    self.publish(frames)

    async def _check_log_not_rewound(self) -> None:
        """After an outage: if Redis came back with an older log, follow it and drop clients."""
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            bounds = await self._store.bounds()
            if bounds.last_id < self.position:
                log.warning("the event log went back to %s: clients must reset", bounds.last_id)
                self.position = bounds.last_id
                for sub in [*self._everything, *(s for v in self._by_task.values() for s in v)]:
                    sub.close("the event log was reset")
                self._everything.clear()
                self._by_task.clear()


def _text(fields: dict[object, object]) -> dict[str, str]:
    return {str(key): str(value) for key, value in fields.items()}
