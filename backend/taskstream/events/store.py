"""The event log and task state in Redis, for the API (asyncio) and the worker (blocking).

Both share the scripts and key layout of `scripts.py`; these classes only run them.
"""

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.connection import ConnectionInterface
from redis.exceptions import NoScriptError

from taskstream.events.contract import ScriptCall
from taskstream.events.entries import LogEntry, merged, parse_entries, text_fields
from taskstream.events.ids import ZERO, EventId, parse_event_id
from taskstream.events.keys import Keys
from taskstream.events.models import (
    EventDraft,
    LoggedLine,
    StreamContent,
    Task,
    TaskOutput,
    TaskState,
)
from taskstream.events.scripts import (
    APPEND_SCRIPT,
    BEGIN_SCRIPT,
    CANCEL_SCRIPT,
    READ_OUTPUT_SCRIPT,
    Appended,
    Begun,
    CancelCall,
    Interrupted,
    NotRunnable,
    ReadOutputCall,
    Script,
    append_call,
    begin_call,
    parse_append_reply,
    parse_begin_reply,
)
from taskstream.events.state import task_from_hash
from taskstream.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LogBounds:
    """What the global log holds: ids from `first_id` to `last_id`, and whether any were trimmed.

    (Redis's `max-deleted-entry-id` is not moved by trimming, only by XDEL: so whether an id is
    older than what is retained is told by the first entry and the count of entries ever added.)
    """

    first_id: EventId | None
    last_id: EventId
    trimmed: bool
    added: int = 0  # entries ever added
    length: int = 0  # entries held


@dataclass(frozen=True)
class TaskPage:
    items: list[Task]
    next_cursor: str | None


class EventStore:
    def __init__(self, client: "aioredis.Redis", settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)

    async def _run(self, script: Script, call: ScriptCall) -> Any:
        command = script.command(call)
        try:
            return await self.redis.execute_command(*command)  # type: ignore[no-untyped-call]
        except NoScriptError:  # Redis restarted, or its script cache was flushed
            await self.redis.script_load(script.source)
            return await self.redis.execute_command(*command)  # type: ignore[no-untyped-call]

    async def append(
        self,
        draft: EventDraft,
        allowed: Iterable[TaskState] | None = None,
        enqueue: tuple[str, str] | None = None,
    ) -> Appended:
        """Appends `draft`; with `enqueue` (a queue and a message) also queues it, atomically."""
        call = append_call(self.keys, self.settings, draft, allowed, enqueue=enqueue)
        reply = await self._run(APPEND_SCRIPT, call)
        return parse_append_reply(draft.task_id, draft.type, reply)

    async def get_task(self, task_id: str) -> Task | None:
        raw = text_fields(await self.redis.hgetall(self.keys.task(task_id)))
        return task_from_hash(raw) if raw.get("state") else None

    async def read_output(self, task_id: str) -> tuple[Task, TaskOutput] | None:
        """The task and its output so far, read in one step (None: no such task)."""
        call = ReadOutputCall(task=self.keys.task(task_id))
        flat, parts, logs = await self._run(READ_OUTPUT_SCRIPT, call)
        raw = text_fields(dict(zip(flat[::2], flat[1::2], strict=True)))
        if not raw.get("state"):
            return None
        task = task_from_hash(raw)
        streams = {}
        for name, content in zip(parts[::2], parts[1::2], strict=True):
            summary = task.output[str(name)]
            if summary.type == "text":
                streams[str(name)] = StreamContent(**dict(summary), text=str(content))
            else:
                items = [json.loads(line) for line in str(content).splitlines()]
                streams[str(name)] = StreamContent(**dict(summary), items=items)
        lines = [LoggedLine.model_validate_json(line) for line in logs]
        output = TaskOutput(
            task_id=task_id, last_event_id=task.last_event_id, streams=streams, logs=lines
        )
        return task, output

    async def request_cancel(self, task_id: str) -> str:
        """Marks a running task for cancellation; returns the task's state ("" if unknown)."""
        return str(await self._run(CANCEL_SCRIPT, CancelCall(task=self.keys.task(task_id))))

    async def list_tasks(
        self,
        *,
        state: TaskState | None,
        kind: str | None,
        limit: int,
        cursor: str | None,
        owner: str | None = None,
        tag: str | None = None,
    ) -> TaskPage:
        if tag is not None:
            index = self.keys.index_tag(tag)
        elif owner is not None:
            index = self.keys.index_owner(owner)
        elif state is not None:
            index = self.keys.index_state(state)
        elif kind is not None:
            index = self.keys.index_kind(kind)
        else:
            index = self.keys.index
        items: list[Task] = []
        upper = f"({cursor}" if cursor else "+"
        scanned_budget = max(limit * 20, 200)
        last: str | None = None
        exhausted = False
        while len(items) < limit and scanned_budget > 0:
            batch = min(max(limit - len(items), 10) * 2, 500)
            found = await self.redis.zrange(
                index, upper, "-", desc=True, bylex=True, offset=0, num=batch
            )
            ids = [str(task_id) for task_id in found]
            if not ids:
                exhausted = True
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hgetall(self.keys.task(task_id))
                hashes = [text_fields(raw) for raw in await pipe.execute()]
            gone: list[str] = []
            for task_id, raw in zip(ids, hashes, strict=True):
                last = task_id
                scanned_budget -= 1
                if not raw.get("state"):
                    gone.append(task_id)
                    continue
                task = task_from_hash(raw)
                if (
                    (kind is None or task.kind == kind)
                    and (state is None or task.state == state)
                    and (owner is None or task.owner == owner)
                    and (tag is None or tag in task.tags)
                ):
                    items.append(task)
                    if len(items) == limit:
                        break
            if gone:
                await self.redis.zrem(index, *gone)
                await self.redis.zrem(self.keys.index, *gone)
            if len(ids) < batch and last == ids[-1]:
                exhausted = True
                break
            upper = f"({last}"
        return TaskPage(items=items, next_cursor=None if exhausted else last)

    async def read_log(
        self, after: str, until: str, count: int, output: bool = False
    ) -> list[LogEntry]:
        """Entries of the event log (and, with `output`, of the output log) with `after` < id
        <= `until`, oldest first: up to `count` of each log, less where they are merged."""
        logs = [self.keys.events, self.keys.output_events] if output else [self.keys.events]
        async with self.redis.pipeline(transaction=False) as pipe:
            for log in logs:
                pipe.xrange(log, f"({after}", until, count=count)
            replies = await pipe.execute()
        reads = [parse_entries(reply) for reply in replies]
        return merged([(entries, len(entries) == count) for entries in reads])

    async def read_task_log(
        self, task_id: str, after: str | None, until: str, count: int
    ) -> list[LogEntry]:
        start = "-" if after is None else f"({after}"
        key = self.keys.task_events(task_id)
        return parse_entries(await self.redis.xrange(key, start, until, count=count))

    async def last_event_id(self) -> str:
        """The newest id given to an event of either global log ("0-0" before the first)."""
        newest = await self.redis.get(self.keys.clock)
        if newest is None:  # written before the output log existed, or nothing written
            entries = await self.redis.xrevrange(self.keys.events, "+", "-", count=1)
            return str(entries[0][0]) if entries else "0-0"
        return str(newest)

    async def bounds(self, output: bool = False) -> LogBounds:
        """What the event log (or the output log) holds."""
        try:
            info = await self.redis.xinfo_stream(
                self.keys.output_events if output else self.keys.events
            )
        except redis.ResponseError:  # no event written yet
            return LogBounds(first_id=None, last_id=ZERO, trimmed=False)
        first = info.get("first-entry")
        return LogBounds(
            first_id=parse_event_id(str(first[0])) if first else None,
            last_id=parse_event_id(str(info["last-generated-id"])) or ZERO,
            # Redis before 7.0 does not count entries added: assume the log was trimmed.
            trimmed=int(info.get("entries-added", -1)) != int(info["length"]),
            added=int(info.get("entries-added", info["length"])),
            length=int(info["length"]),
        )

    async def has_event(self, event_id: str, output: bool = False) -> bool:
        """Whether the event log (or the output log) holds `event_id`."""
        log = self.keys.output_events if output else self.keys.events
        return bool(await self.redis.xrange(log, event_id, event_id, count=1))

    async def has_task_event(self, task_id: str, event_id: str) -> bool:
        key = self.keys.task_events(task_id)
        return bool(await self.redis.xrange(key, event_id, event_id, count=1))

    async def live_workers(self) -> int:
        since = time.time() - self.settings.worker_stale_seconds
        return int(await self.redis.zcount(self.keys.workers, since, "+inf"))

    async def live_worker_names(self) -> list[str]:
        since = time.time() - self.settings.worker_stale_seconds
        return sorted(
            str(n) for n in await self.redis.zrangebyscore(self.keys.workers, since, "+inf")
        )

    async def claim_idempotency_key(self, key: str, value: str) -> str | None:
        """Stores `value` under `key` unless it has one; returns the value already there."""
        name = self.keys.idempotency(key)
        ttl = self.settings.idempotency_ttl_seconds
        if await self.redis.set(name, value, nx=True, ex=ttl):
            return None
        existing = await self.redis.get(name)
        return None if existing is None else str(existing)

    async def count_submission(self, owner: str, window: int = 60) -> tuple[int, int]:
        """Counts a submission in the owner's current window: (count so far, seconds left)."""
        now = int(time.time())
        start = now - now % window
        name = f"{self.keys.prefix}rate:{owner}:{start}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count, _ = await pipe.execute()
        return int(count), start + window - now

    async def release_idempotency_key(self, key: str) -> None:
        await self.redis.delete(self.keys.idempotency(key))


@dataclass(frozen=True)
class RunningTask:
    """What recovery needs of a task marked running."""

    id: str
    kind: str
    worker: str
    attempts: int
    dispatch: int
    lost: int


class SyncEventStore:
    """The worker's side: start attempts, append events, keep heartbeats, find lost attempts."""

    def __init__(self, client: "redis.Redis", settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        # Connections for scripts, each used by one call at a time (see `_run_all`).
        self._idle: list[ConnectionInterface] = []

    def _run(self, script: Script, call: ScriptCall) -> Any:
        """Runs `script` as `EventStore._run` does, waiting out a Redis restart (`_patiently`)."""
        return self._run_all(script, [script.command(call)])[0]

    def _run_all(self, script: Script, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Runs calls of `script` in order, in one round trip; their replies, in that order.

        A task's scripts are the worker's per-task path: they go out on connections of this
        store's own, made by the client's pool but kept here (a call takes one, and puts it back
        after), which saves the pool's checkout, retry and metrics wrapping on every call (see
        `docs/benchmarks.md`). Any exception between a command and its reply closes that
        connection, so a reply is never read by the wrong command; its next use opens it again.
        An error reply raises once every reply is read.
        """

        def run() -> list[Any]:
            connection = self._take_connection()
            try:
                replies = _roundtrip(connection, commands)
                forgotten = next(
                    (i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)),
                    None,
                )
                if forgotten is not None:  # Redis restarted, or its script cache was flushed
                    _roundtrip(connection, [("SCRIPT", "LOAD", script.source)])
                    # From the first refused on: a call repeated after it ran answers the same.
                    replies[forgotten:] = _roundtrip(connection, commands[forgotten:])
            except BaseException:
                connection.disconnect()  # type: ignore[no-untyped-call]
                raise
            finally:
                self._idle.append(connection)
            for reply in replies:
                if isinstance(reply, redis.ResponseError):
                    raise reply
            return replies

        return self._patiently(run)

    def _take_connection(self) -> "ConnectionInterface":
        try:
            return self._idle.pop()  # atomic: two threads never take the same one
        except IndexError:
            return self.redis.connection_pool.make_connection()

    def _patiently(self, call: Callable[[], T]) -> T:
        """Waits out a Redis restart (REDIS_OUTAGE_PATIENCE_SECONDS) rather than fail a task.

        Repeating a script is safe: each call carries a token, and a script whose reply was lost
        returns the same result again instead of acting twice.
        """
        deadline = time.monotonic() + self.settings.redis_outage_patience_seconds
        delay = 0.2
        while True:
            try:
                return call()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("Redis unreachable (%s); trying again in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def append(
        self,
        draft: EventDraft,
        allowed: Iterable[TaskState] | None = None,
        expect: Mapping[str, str] | None = None,
        changes: Mapping[str, str] | None = None,
        enqueue: tuple[str, str] | None = None,
    ) -> Appended:
        call = append_call(self.keys, self.settings, draft, allowed, expect, changes, enqueue)
        reply = self._run(APPEND_SCRIPT, call)
        return parse_append_reply(draft.task_id, draft.type, reply)

    def append_all(self, drafts: Sequence[EventDraft]) -> list[Appended]:
        """Appends `drafts` in order, in one round trip. If the log refuses one (the task ended
        meanwhile), those before it are written and `TransitionRefused` is raised."""
        calls = [append_call(self.keys, self.settings, draft) for draft in drafts]
        replies = self._run_all(APPEND_SCRIPT, [APPEND_SCRIPT.command(call) for call in calls])
        return [
            parse_append_reply(draft.task_id, draft.type, reply)
            for draft, reply in zip(drafts, replies, strict=True)
        ]

    def begin(self, draft: EventDraft, dispatch: int) -> Begun | Interrupted | NotRunnable:
        """Starts an attempt with `draft`, a `started` event, if the task waits to run."""
        call = begin_call(self.keys, self.settings, draft, dispatch)
        return parse_begin_reply(self._run(BEGIN_SCRIPT, call))

    def running_tasks(self, limit: int = 500) -> list[RunningTask]:
        ids = [str(i) for i in self.redis.zrange(self.keys.index_state("running"), 0, limit - 1)]
        fields = ("kind", "worker", "attempts", "dispatch", "lost", "state")
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self.keys.task(task_id), fields)
            rows = pipe.execute()
        return [
            RunningTask(
                id=task_id,
                kind=str(kind),
                worker=str(worker or ""),
                attempts=int(attempts or 0),
                dispatch=int(dispatch or 1),
                lost=int(lost or 0),
            )
            for task_id, (kind, worker, attempts, dispatch, lost, state) in zip(
                ids, rows, strict=True
            )
            if state == "running"
        ]

    def live_workers(self) -> set[str]:
        since = time.time() - self.settings.worker_stale_seconds
        return {str(name) for name in self.redis.zrangebyscore(self.keys.workers, since, "+inf")}

    def get_task(self, task_id: str) -> Task | None:
        raw = text_fields(self._patiently(lambda: self.redis.hgetall(self.keys.task(task_id))))
        return task_from_hash(raw) if raw.get("state") else None

    def cancel_requested(self, task_id: str) -> bool:
        key = self.keys.task(task_id)
        return self._patiently(lambda: self.redis.hget(key, "cancel_requested")) == "1"

    def claim_idempotency_key(self, key: str, value: str) -> str | None:
        """As `EventStore.claim_idempotency_key` (for `taskstream.submit`)."""
        name = self.keys.idempotency(key)
        ttl = self.settings.idempotency_ttl_seconds

        def claim() -> str | None:
            if self.redis.set(name, value, nx=True, ex=ttl):
                return None
            existing = self.redis.get(name)
            # Our own value: a SET repeated after its reply was lost.
            return None if existing is None or existing == value else str(existing)

        return self._patiently(claim)

    def release_idempotency_key(self, key: str) -> None:
        self.redis.delete(self.keys.idempotency(key))

    def heartbeat(self, worker: str) -> None:
        now = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {worker: now})
            pipe.zremrangebyscore(self.keys.workers, "-inf", now - 24 * 3600)
            pipe.execute()

    def forget_worker(self, worker: str) -> None:
        self.redis.zrem(self.keys.workers, worker)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().disconnect()  # type: ignore[no-untyped-call]
        self.redis.close()


def _roundtrip(connection: "ConnectionInterface", commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Sends `commands` at once and reads every reply, an error reply as its exception."""
    if len(commands) == 1:  # the per-task path: no joining of packed commands
        connection.send_command(*commands[0])  # type: ignore[no-untyped-call]
    else:
        connection.send_packed_command(connection.pack_commands(commands))  # type: ignore[no-untyped-call]
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as error:  # a whole reply was read: still in step
            replies.append(error)
    return replies
