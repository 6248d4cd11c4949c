"""One reader of the event log per API process, fanning each event out to every SSE client.

No client ever costs a Redis connection or command while it is live: the reader blocks on
`XREAD` for the whole process, encodes each event once as an SSE message, and joins each batch
into one chunk per audience (everyone, one caller, one task). A client that has caught up gets
that chunk written straight to its connection (a `Connection`, which `sse` implements), with no
task of its own woken; a client still catching up, or whose connection cannot take more yet,
collects frames in a bounded buffer that its stream drains. A client whose buffer is full has
fallen behind: it is dropped, and resumes from the log by its last event id when it reconnects,
so a slow reader cannot grow memory.

The fan-out hands the event loop back between slices of clients, so requests are served in the
middle of a large fan-out rather than after it. `broadcast` hands one frame to every client
alike: the streams' one keep-alive for the whole process (see `sse`). The counters here are plain
integers read when metrics are scraped, so counting costs the hot path nothing.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, TimeoutError

from taskstream.api.caller import Caller
from taskstream.api.filters import DEFAULT_TYPES, EVERYTHING, OUTPUT_TYPE_NAMES, EventFilter
from taskstream.api.models import Reset
from taskstream.events.entries import LogEntry, merged, parse_entries
from taskstream.events.ids import ZERO, EventId, format_event_id, parse_event_id
from taskstream.events.store import EventStore

log = logging.getLogger(__name__)

# Clients served between two hand-backs of the event loop during one fan-out.
SLICE = 500
# Entries read of each global log at once.
READ = 1_000


def sse_message(event_id: str, event: str, data: str) -> bytes:
    """One Server-Sent Events message. `data` is JSON, one line: JSON escapes line breaks."""
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()


@dataclass(frozen=True, slots=True)
class Frame:
    """An event encoded once as an SSE message, shared by every client that gets it. A frame
    keyed `ZERO` is no event (a keep-alive comment): it carries no id and never moves a resume
    point."""

    key: EventId
    task_id: str
    final: bool
    data: bytes
    owner: str = ""
    type: str = ""
    kind: str = ""
    tags: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entry: LogEntry) -> "Frame":
        return cls(
            entry.key,
            entry.task_id,
            entry.final,
            sse_message(entry.id, entry.type, entry.json),
            entry.owner,
            entry.type,
            entry.kind,
            entry.tags,
        )

    def admitted(self, by: EventFilter) -> bool:
        return by.admits(self.type, self.kind, self.tags, self.task_id)


def reset_frame(position: EventId, reason: str) -> Frame:
    """A `reset`: the client may have missed events; it refetches over REST and goes on from
    `position`. Keyed `ZERO` like a keep-alive: it never moves the server's resume point."""
    event_id = format_event_id(position)
    data = Reset(reason=reason, last_event_id=event_id).model_dump_json()
    message = sse_message(event_id, "reset", data)
    return Frame(key=ZERO, task_id="", final=False, data=message, type="reset")


def joined(frames: Iterable[Frame]) -> bytes:
    return b"".join(frame.data for frame in frames)


def newest_id(frames: list[Frame], than: EventId) -> EventId:
    """The newest event id among `frames` if it is newer than `than`, else `than`."""
    for frame in reversed(frames):
        if frame.key != ZERO:  # events are in log order; a keep-alive has no id
            return max(frame.key, than)
    return than


class StreamClosed(Exception):
    """The subscriber was dropped (too slow), its task ended, its client went away, or the
    server is shutting down."""


class Connection(Protocol):
    """A client's connection, which the fan-out writes to itself while the client's stream waits
    with nothing buffered (`sse` implements it). Writes never overlap: the fan-out writes only
    while the stream waits in `Subscriber.next_batch`, which drains first."""

    @property
    def ready(self) -> bool:
        """Whether a write may start now: the response has begun, no write waits, none failed,
        and the client has not gone."""

    def write(self, data: bytes) -> bool:
        """Writes `data` now: True. False: it took `data` but must wait for the connection to
        drain (or the connection failed); `drain()` finishes that write."""

    async def drain(self) -> None:
        """Finishes a write that had to wait (at once if none did). Raises `StreamClosed` if the
        connection failed or took nothing for its send timeout."""

    def on_hang_up(self, close: Callable[[str], None]) -> None:
        """Calls `close(reason)` when the client goes away (at once if it has gone)."""


class Subscriber:
    """One client's place in the fan-out. Thousands are alive at once, so it keeps no more than
    it must: a list for its buffer and a future only while its stream waits."""

    __slots__ = (
        "_connection",
        "_direct",
        "_frames",
        "_limit",
        "_seen",
        "_waiter",
        "caller",
        "closed_reason",
        "filter",
        "start",
        "task_id",
    )

    def __init__(
        self,
        caller: Caller,
        task_id: str | None,
        start: EventId,
        limit: int,
        connection: Connection | None = None,
        filter: EventFilter = EVERYTHING,
    ) -> None:
        self.caller = caller
        self.filter = filter
        self.task_id = task_id
        self.start = start
        self.closed_reason: str | None = None
        self._limit = limit
        self._frames: list[Frame] = []
        self._waiter: asyncio.Future[None] | None = None
        self._connection = connection
        # True while live frames go straight to the connection instead of the buffer.
        self._direct = False
        # The newest event id handed to its stream through the buffer (or its start).
        self._seen = start
        if connection is not None:
            connection.on_hang_up(self.close)

    def deliver(self, frames: list[Frame], data: bytes) -> bool:
        """Hands over `frames` (`data`: them joined); False if the client is too slow to keep."""
        if self._direct:
            if not self._connection.write(data):  # type: ignore[union-attr]
                # The connection is full: what follows waits in the buffer behind that write.
                self._direct = False
                self._wake()
            if self.task_id is not None and frames[-1].final:
                # Its stream, which would end after this frame, never sees it: end it here
                # (nothing follows a task's final event).
                self.close("the task ended")
            return True
        return self.offer(frames)

    def offer(self, frames: list[Frame]) -> bool:
        if self.closed_reason is not None:
            return True  # on its way out; its stream ends at its next wait
        if len(self._frames) + len(frames) > self._limit:
            self.close("too slow: its buffer is full")
            return False
        self._frames.extend(frames)
        self._wake()
        return True

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._direct = False
        self._frames = []
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next_batch(self, sent: EventId) -> list[Frame]:
        """The buffered frames, once there are any. `sent`: the newest event id its stream has
        sent. With a connection, a stream that has sent all it was given stops buffering here:
        live frames go straight to the connection meanwhile, but only once the fan-out has handed
        it `sent` itself. Until then (a resume id, or a task's history, ahead of the reader) a
        live frame could repeat one sent, and only the stream can tell."""
        while True:
            if self._connection is not None:
                await self._connection.drain()  # a write that had to wait goes out first
            if self.closed_reason is not None:
                raise StreamClosed(self.closed_reason)
            if self._frames:
                break
            self._direct = (
                self._connection is not None and self._connection.ready and sent <= self._seen
            )
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
                self._direct = False
        batch, self._frames = self._frames, []
        self._seen = newest_id(batch, self._seen)
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
    ) -> None:
        self._store = store
        self._reader = reader
        self._block_ms = block_ms
        self._buffer_limit = buffer_limit
        self.position: EventId = ZERO
        self.ready = asyncio.Event()
        # Clients of the everyone stream, by the caller whose tasks they see and what they asked.
        self._everything: dict[tuple[Caller, EventFilter], set[Subscriber]] = {}
        self._by_task: dict[str, set[Subscriber]] = {}
        self._per_caller: Counter[Caller] = Counter()
        self.stopping = False  # set when the server is told to stop: no new streams
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = FanoutStats()
        self.observers: list[Callable[[list[LogEntry]], None]] = []
        # Output log entries behind the reader: those there when it started, and those read since.
        self._output_seen = 0

    @property
    def clients(self) -> int:
        return int(sum(self._per_caller.values()))

    def clients_of(self, caller: Caller) -> int:
        return self._per_caller[caller]

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="event-log-reader")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.close_all("server shutting down")

    def _subscribers(self) -> list[Subscriber]:
        return [
            *(sub for subs in self._everything.values() for sub in subs),
            *(sub for subs in self._by_task.values() for sub in subs),
        ]

    def close_all(self, reason: str) -> None:
        for sub in self._subscribers():
            sub.close(reason)
        self._everything.clear()
        self._by_task.clear()
        self._per_caller.clear()

    def subscribe(
        self,
        caller: Caller,
        task_id: str | None = None,
        connection: Connection | None = None,
        filter: EventFilter = EVERYTHING,
    ) -> Subscriber:
        """A new client's buffer; it will get every event after `Subscriber.start` that `caller`
        may see: of `task_id` only, if given, else those `filter` admits. `connection`: where its
        live frames may be written directly once it has caught up."""
        sub = Subscriber(caller, task_id, self.position, self._buffer_limit, connection, filter)
        if task_id is None:
            self._everything.setdefault((caller, filter), set()).add(sub)
        else:
            self._by_task.setdefault(task_id, set()).add(sub)
        self._per_caller[caller] += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        group: dict[Any, set[Subscriber]] = (
            self._by_task if sub.task_id is not None else self._everything
        )
        key: Any = sub.task_id if sub.task_id is not None else (sub.caller, sub.filter)
        subs = group.get(key)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del group[key]
        self._per_caller[sub.caller] -= 1
        if self._per_caller[sub.caller] <= 0:
            del self._per_caller[sub.caller]

    async def publish(self, frames: list[Frame]) -> None:
        """Delivers a batch to every client it concerns, in slices of `SLICE` clients."""
        self.position = frames[-1].key
        stats = self.stats
        stats.published += len(frames)
        stats.lag_seconds = max(0.0, time.time() - frames[-1].key[0] / 1000)
        audiences: list[tuple[list[Subscriber], list[Frame]]] = []
        everything = [f for f in frames if f.type in DEFAULT_TYPES] if self._everything else []
        for (caller, wants), subs in self._everything.items():
            # Each audience's share of the batch is picked out once, whatever its client count.
            mine = everything if wants.everything else [f for f in frames if f.admitted(wants)]
            if not caller.sees_all:
                mine = [f for f in mine if caller.may_see(f.owner)]
            if mine:
                audiences.append((list(subs), mine))
        if self._by_task:
            per_task: dict[str, list[Frame]] = {}
            for frame in frames:
                if frame.task_id in self._by_task:
                    per_task.setdefault(frame.task_id, []).append(frame)
            for task_id, task_frames in per_task.items():
                audiences.append((list(self._by_task[task_id]), task_frames))
        served = 0
        for audience, mine in audiences:
            data = joined(mine)
            for start in range(0, len(audience), SLICE):
                if served >= SLICE:
                    served = 0
                    await asyncio.sleep(0)  # let requests in between slices
                chunk = audience[start : start + SLICE]
                self._deliver(chunk, mine, data)
                served += len(chunk)

    def _deliver(self, subs: list[Subscriber], frames: list[Frame], data: bytes) -> None:
        kept = 0
        for sub in subs:
            if sub.deliver(frames, data):
                kept += 1
            else:
                self.unsubscribe(sub)
                self.stats.dropped += 1
        self.stats.delivered += kept * len(frames)

    async def broadcast(self, frames: list[Frame]) -> None:
        """Hands `frames` to every client, whatever it follows, in slices of `SLICE` clients."""
        data = joined(frames)
        subs = self._subscribers()
        for start in range(0, len(subs), SLICE):
            for sub in subs[start : start + SLICE]:
                if not sub.deliver(frames, data):
                    self.unsubscribe(sub)
                    self.stats.dropped += 1
            await asyncio.sleep(0)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                if not self.ready.is_set():
                    self.position = parse_event_id(await self._store.last_event_id()) or ZERO
                    self._output_seen = (await self._store.bounds(output=True)).added
                    self.ready.set()
                    log.info("event reader starts after %s", format_event_id(self.position))
                position = format_event_id(self.position)
                logs = (self._store.keys.events, self._store.keys.output_events)
                reply: Any = await self._reader.xread(
                    dict.fromkeys(logs, position), count=READ, block=self._block_ms
                )
                delay = 0.1
            except (ConnectionError, TimeoutError, OSError) as exc:
                log.warning("event reader lost Redis (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                await self._check_log_not_rewound()
                continue
            reads = [parse_entries(raw) for _stream, raw in reply or ()]
            entries = merged([(read, len(read) == READ) for read in reads])
            output = sum(1 for entry in entries if entry.type in OUTPUT_TYPE_NAMES)
            if output:
                await self._check_output_kept(output)
                self._output_seen += output
            if entries:
                for observe in self.observers:
                    observe(entries)
                await self.publish([Frame.of(entry) for entry in entries])

    async def _check_output_kept(self, read: int) -> None:
        """Tells the clients that may have missed output log entries (entries this reader never
        read, trimmed while it was stalled: a paused process; the output log moves fast): the
        everyone stream's get a `reset`, a task's stream ends and comes back by its last id to
        the task's own history."""
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            bounds = await self._store.bounds(output=True)
            lost = bounds.added - bounds.length - (self._output_seen + read)
            if lost <= 0 or bounds.first_id is None or bounds.first_id <= self.position:
                return
            log.warning("%d output log entries were trimmed before they were read", lost)
            self._output_seen += lost
            reason = "output log entries were trimmed before they were read"
            reset = reset_frame(self.position, reason)
            for (_caller, wants), subs in list(self._everything.items()):
                if wants.output:
                    self._deliver(list(subs), [reset], reset.data)
            for subs in list(self._by_task.values()):
                for sub in list(subs):  # back by its last id, to the task's own history
                    sub.close(reason)

    async def _check_log_not_rewound(self) -> None:
        """After an outage: if Redis came back with an older log, follow it and drop clients."""
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            logs = [await self._store.bounds(output) for output in (False, True)]
            newest = max(bounds.last_id for bounds in logs)
            if newest < self.position:
                log.warning("the event log went back to %s: clients must reset", newest)
                self.position = newest
                self.close_all("the event log was reset")
