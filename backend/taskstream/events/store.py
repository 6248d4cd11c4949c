"""The event log and task state in Redis, for the API (asyncio) and the worker (blocking).

Both share the scripts and key layout of `scripts.py`; these classes only run them.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.connection import ConnectionInterface
from redis.exceptions import NoScriptError

from taskstream.events.contract import ScriptCall
from taskstream.events.entries import LogEntry, parse_entries, text_fields
from taskstream.events.ids import ZERO, EventId, parse_event_id
from taskstream.events.keys import Keys
from taskstream.events.models import EventDraft, Task, TaskState
from taskstream.events.scripts import (
    APPEND_SCRIPT,
    BEGIN_SCRIPT,
    CANCEL_SCRIPT,
    Appended,
    Begun,
    CancelCall,
    Interrupted,
    NotRunnable,
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
    ) -> TaskPage:
        if owner is not None:
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

    async def read_log(self, after: str, until: str, count: int) -> list[LogEntry]:
        """Entries of the global log with `after` < id <= `until`, oldest first."""
        return parse_entries(
            await self.redis.xrange(self.keys.events, f"({after}", until, count=count)
        )

    async def read_task_log(
        self, task_id: str, after: str | None, until: str, count: int
    ) -> list[LogEntry]:
        start = "-" if after is None else f"({after}"
        key = self.keys.task_events(task_id)
        return parse_entries(await self.redis.xrange(key, start, until, count=count))

    async def last_event_id(self) -> str:
        entries = await self.redis.xrevrange(self.keys.events, "+", "-", count=1)
        return str(entries[0][0]) if entries else "0-0"

    async def bounds(self) -> LogBounds:
        try:
            info = await self.redis.xinfo_stream(self.keys.events)
        except redis.ResponseError:  # no event written yet
            return LogBounds(first_id=None, last_id=ZERO, trimmed=False)
        first = info.get("first-entry")
        return LogBounds(
            first_id=parse_event_id(str(first[0])) if first else None,
            last_id=parse_event_id(str(info["last-generated-id"])) or ZERO,
            # Redis before 7.0 does not count entries added: assume the log was trimmed.
            trimmed=int(info.get("entries-added", -1)) != int(info["length"]),
        )

    async def has_event(self, event_id: str) -> bool:
        return bool(await self.redis.xrange(self.keys.events, event_id, event_id, count=1))

    async def has_task_event(self, task_id: str, event_id: str) -> bool:
        key = self.keys.task_events(task_id)
        return bool(await self.redis.xrange(key, event_id, event_id, count=1))

    async def live_workers(self) -> int:
        since = time.time() - self.settings.worker_stale_seconds
        return int(await self.redis.zcount(self.keys.workers, since, "+inf"))

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
        self._own = threading.local()

    def _run(self, script: Script, call: ScriptCall) -> Any:
        """Runs `script` as `EventStore._run` does, waiting out a Redis restart (`_patiently`).

        A task's scripts are the worker's per-task path: each thread sends them on a connection
        of its own, made by the client's pool but never returned to it, which saves the pool's
        checkout, retry and metrics wrapping on every call (see `docs/benchmarks.md`). Any
        exception between a command and its reply closes that connection, so a reply is never
        read by the wrong command; the next call opens it again.
        """
        command = script.command(call)

        def run() -> Any:
            connection = self._connection()
            try:
                try:
                    return _roundtrip(connection, command)
                except NoScriptError:  # Redis restarted, or its script cache was flushed
                    _roundtrip(connection, ("SCRIPT", "LOAD", script.source))
                    return _roundtrip(connection, command)
            except redis.ResponseError:
                raise  # a whole reply was read: the connection is in step
            except BaseException:
                connection.disconnect()  # type: ignore[no-untyped-call]
                raise

        return self._patiently(run)

    def _connection(self) -> "ConnectionInterface":
        connection: ConnectionInterface | None = getattr(self._own, "c", None)
        if connection is None:
            connection = self._own.c = self.redis.connection_pool.make_connection()
        return connection

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

    def heartbeat(self, worker: str) -> None:
        now = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {worker: now})
            pipe.zremrangebyscore(self.keys.workers, "-inf", now - 24 * 3600)
            pipe.execute()

    def forget_worker(self, worker: str) -> None:
        self.redis.zrem(self.keys.workers, worker)

    def close(self) -> None:
        connection = getattr(self._own, "c", None)
        if connection is not None:
            connection.disconnect()
        self.redis.close()


def _roundtrip(connection: "ConnectionInterface", command: tuple[Any, ...]) -> Any:
    connection.send_command(*command)  # type: ignore[no-untyped-call]
    return connection.read_response()
