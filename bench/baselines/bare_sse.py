"""Baseline 3, the machine's limit: an SSE server on bare asyncio transports (uvloop, no framework).

python -m bench.baselines.bare_sse --port 8100   (REDIS_URL as taskstream's)

The task side is taskstream's own: `POST /api/tasks` validates the params with the kind's model,
then records the `queued` event and task state and queues the Celery message as taskstream does,
with its own `EventStore.append` and `broker` (in one script when this taskstream can, else
`broker.send` after the append), so the real taskstream worker runs the task and writes its
events. Only the streaming side differs: one `XREAD` reader encodes each event of
`ts:events` once and writes the same bytes straight to every client's transport, with no
coroutine, queue or framework per client. A client whose unsent output passes `--max-buffer`
bytes is dropped. `Last-Event-ID` resumes from the log like taskstream (without its `reset`
handling of trimmed or unknown ids).

`GET /api/tasks/{id}/events` (the token-stream scenario) is one task's stream the same way: the
first watcher of a task starts one `XREAD` reader of that task's own stream (`ts:task:<id>:events`,
from its first event), which writes each batch of entries, encoded once, to every watcher of the
task, and closes them all after the task's final event. A watcher that joins later gets what
is read from then on (no catch-up: the scenario's watchers are all in before the task writes).
Kinds are loaded with TASK_KIND_MODULES, as taskstream's API does.
"""

import argparse
import asyncio
import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from inspect import signature
from typing import Any, cast

import redis.asyncio as aioredis
import uvloop
from celery import Celery
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskstream import broker
from taskstream.broker import make_celery
from taskstream.events.connection import async_redis
from taskstream.events.entries import LogEntry
from taskstream.events.ids import ZERO, EventId, format_event_id, new_task_id, parse_event_id
from taskstream.events.models import EventDraft, EventType
from taskstream.events.store import EventStore
from taskstream.kinds import load
from taskstream.settings import Settings

log = logging.getLogger("bare_sse")

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 2000\n\n"
)
PING = b": ping\n\n"
PAGE = 500
Frames = list[tuple[EventId, bytes]]


def encode(entry: LogEntry) -> bytes:
    return f"id: {entry.id}\nevent: {entry.type}\ndata: {entry.json}\n\n".encode()


def response(status: str, body: bytes, keep_alive: bool = True) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: "
        + connection
        + b"\r\n\r\n"
        + body
    )


class Hub:
    """The one reader of the log, and every streaming client."""

    def __init__(self, store: EventStore, settings: Settings, celery: Celery) -> None:
        self.store = store
        self.settings = settings
        self.celery = celery
        self.kinds = load(settings.task_kind_modules)
        self.threads = ThreadPoolExecutor(8, thread_name_prefix="send")
        # Whichever way this taskstream queues a task: in the append itself, or after it.
        self.one_step = (
            hasattr(broker, "message") and "enqueue" in signature(store.append).parameters
        )
        self.reader = async_redis(settings, socket_timeout=10, name="bare-reader")
        self.position: EventId = ZERO
        self.live: set[Connection] = set()
        self.catching_up: set[Connection] = set()
        self.max_buffer = 1 << 20
        self.tasks: dict[str, TaskWatchers] = {}

    async def run(self) -> None:
        self.position = parse_event_id(await self.store.last_event_id()) or ZERO
        key = self.store.keys.events
        while True:
            try:
                reply: Any = await self.reader.xread(
                    {key: format_event_id(self.position)}, count=1000, block=1000
                )
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:  # retry
                log.warning("reader: %s", exc)
                await asyncio.sleep(0.2)
                continue
            for _stream, entries in reply or ():
                frames: Frames = []
                for entry_id, fields in entries:
                    entry = LogEntry.from_redis(str(entry_id), fields)
                    frames.append((entry.key, encode(entry)))
                if frames:
                    self.position = frames[-1][0]
                    self.publish(frames)

    def publish(self, frames: Frames) -> None:
        batch = b"".join(data for _key, data in frames)
        limit = self.max_buffer
        for conn in list(self.live):
            transport = conn.transport
            if transport.get_write_buffer_size() > limit:
                self.live.discard(conn)
                transport.abort()
            else:
                transport.write(batch)
        for conn in self.catching_up:
            conn.pending.extend(frames)

    def watch(self, conn: "Connection", task_id: str) -> None:
        watchers = self.tasks.get(task_id)
        if watchers is None:
            watchers = self.tasks[task_id] = TaskWatchers(self, task_id)
        watchers.live.add(conn)
        conn.watching = watchers

    async def submit(self, request: Any) -> bytes:
        """What taskstream's submission does: task state and `queued` event, then the message."""
        kind = self.kinds.get(str(request.get("kind")))
        if kind is None:
            raise ValueError("unknown kind")
        params = kind.params.model_validate(request.get("params") or {})
        values = params.model_dump(mode="json")
        task_id = new_task_id()
        draft = EventDraft(task_id=task_id, kind=kind.name, type=EventType.queued, params=values)
        soft_limit = kind.time_limit(params)
        if self.one_step:  # as taskstream does now: event, state and message in one script
            queued = getattr(broker, "message")(  # noqa: B009
                self.celery, self.settings, kind, task_id, soft_limit
            )
            appended = await self.store.append(draft, enqueue=queued)  # type: ignore[call-arg,unused-ignore]
        else:  # as taskstream did: the event and state, then the message from a thread
            appended = await self.store.append(draft)
            send = partial(broker.send, self.celery, self.settings, kind, task_id, soft_limit)
            await asyncio.get_running_loop().run_in_executor(self.threads, send)
        task = {"id": task_id, "kind": kind.name, "params": values, "state": "queued"}
        task |= {"created_at": draft.at.isoformat(), "last_event_id": appended.id}
        return json.dumps(task).encode()

    async def ping(self) -> None:
        while True:
            await asyncio.sleep(15)
            for conn in list(self.live):
                conn.transport.write(PING)


class TaskWatchers:
    """One task's watchers and the one reader of its own stream, until its final event."""

    def __init__(self, hub: Hub, task_id: str) -> None:
        self.hub = hub
        self.task_id = task_id
        self.live: set[Connection] = set()
        self.reader = async_redis(hub.settings, socket_timeout=10, name="bare-task-reader")
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        key = self.hub.store.keys.task_events(self.task_id)
        position = "0-0"
        limit = self.hub.max_buffer
        try:
            while True:
                try:
                    reply: Any = await self.reader.xread({key: position}, count=1000, block=1000)
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:  # retry
                    log.warning("task reader: %s", exc)
                    await asyncio.sleep(0.2)
                    continue
                for _stream, entries in reply or ():
                    final = False
                    parts = []
                    for entry_id, fields in entries:
                        entry = LogEntry.from_redis(str(entry_id), fields)
                        parts.append(encode(entry))
                        final = final or entry.final
                    position = str(entries[-1][0])
                    batch = b"".join(parts)
                    for conn in list(self.live):
                        transport = conn.transport
                        if transport.get_write_buffer_size() > limit:
                            self.live.discard(conn)
                            transport.abort()
                        else:
                            transport.write(batch)
                    if final:
                        for conn in self.live:
                            conn.transport.close()  # once what it holds is sent
                        return
        finally:
            self.hub.tasks.pop(self.task_id, None)
            await self.reader.aclose()


class Connection(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.watching: TaskWatchers | None = None
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buffer = b""
        self.busy = False
        self.streaming = False
        self.pending: Frames = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.live.discard(self)
        self.hub.catching_up.discard(self)
        if self.watching is not None:
            self.watching.live.discard(self)

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return
        self.buffer += data
        self.next_request()

    def next_request(self) -> None:
        if self.busy or self.transport.is_closing():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target = rest.rpartition(" ")[0]
        path, _, query = target.partition("?")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        if method == "GET" and path == "/api/events":
            resume = headers.get("last-event-id")
            if resume is None and query.startswith("last_event_id="):
                resume = query.partition("=")[2]
            self.stream(resume)
        elif method == "GET" and path.startswith("/api/tasks/") and path.endswith("/events"):
            self.streaming = True
            self.buffer = b""
            self.transport.write(STREAM_HEAD)
            self.hub.watch(self, path.split("/")[3])
        elif method == "POST" and path == "/api/tasks":
            self.busy = True
            asyncio.get_running_loop().create_task(self.submit(body))
        elif method == "GET" and path == "/healthz":
            self.transport.write(response("200 OK", b'{"status":"ok"}'))
            self.next_request()
        else:
            self.transport.write(response("404 Not Found", b'{"detail":"not found"}'))
            self.next_request()

    async def submit(self, body: bytes) -> None:
        try:
            task = await self.hub.submit(json.loads(body))
            reply = response("202 Accepted", task)
        except (ValueError, ValidationError, AttributeError) as exc:
            reply = response("422 Unprocessable Content", json.dumps({"detail": str(exc)}).encode())
        except Exception as exc:
            log.exception("submit failed")
            reply = response("503 Service Unavailable", json.dumps({"detail": str(exc)}).encode())
        if not self.transport.is_closing():
            self.transport.write(reply)
        self.busy = False
        self.next_request()

    def stream(self, resume: str | None) -> None:
        self.streaming = True
        self.buffer = b""
        self.transport.write(STREAM_HEAD)
        after = parse_event_id(resume) if resume else None
        if after is None:
            self.hub.live.add(self)
            return
        self.hub.catching_up.add(self)
        asyncio.get_running_loop().create_task(self.catch_up(after, self.hub.position))

    async def catch_up(self, sent: EventId, until: EventId) -> None:
        """From the log up to where the reader was, then what it has read since, then live."""
        try:
            while sent < until:
                entries = await self.hub.store.read_log(
                    format_event_id(sent), format_event_id(until), PAGE
                )
                if not entries:
                    break
                self.transport.write(b"".join(encode(entry) for entry in entries))
                sent = entries[-1].key
        finally:
            self.hub.catching_up.discard(self)
        fresh = [data for key, data in self.pending if key > sent]
        self.pending = []
        if self.transport.is_closing():
            return
        if fresh:
            self.transport.write(b"".join(fresh))
        self.hub.live.add(self)


async def serve(host: str, port: int, max_buffer: int) -> None:
    settings = Settings()
    kinds = load(settings.task_kind_modules)
    # Catch-ups and submissions queue for one of 64 connections rather than fail when a
    # thousand clients reconnect at once (redis-py's default pool refuses its 101st user).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=64, timeout=None, decode_responses=True
    )
    store = EventStore(aioredis.Redis(connection_pool=pool), settings)
    celery = make_celery(settings, kinds)
    hub = Hub(store, settings, celery)
    hub.max_buffer = max_buffer
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(hub), host, port, backlog=4096)
    reader = loop.create_task(hub.run())
    pinger = loop.create_task(hub.ping())
    log.warning("bare SSE server on %s:%d", host, port)
    try:
        await server.serve_forever()
    finally:
        reader.cancel()
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        celery.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--max-buffer", type=int, default=1 << 20, help="bytes per slow client")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port, args.max_buffer))


if __name__ == "__main__":
    main()
