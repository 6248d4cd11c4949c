"""An event stream's whole life as an HTTP response, for both stream routes.

A route admits a stream (`admit`) and returns an `EventStream` of its content (`streams`). From
there this module owns the stream: its headers and HEAD answer (sse-starlette's public
`EventSourceResponse`), the `retry:` hint, writing and its send timeout, the client leaving, the
keep-alive and the server's shutdown (both once per process: `streaming`, for the lifespan).

Deliberate oddities (do not fix these without reading why):

1. A GET never runs sse-starlette's `EventSourceResponse.__call__`, only its constructor (the
   headers) and its HEAD answer. Its GET runs a task group of three tasks per client, with a lock
   and a shutdown event each, and sends every chunk from the client's own task. Here a stream is
   its request's task plus one task that waits for the client to leave; with 2. and 3., an idle
   stream holds 14 kB of Python objects instead of 44 kB, and a live event wakes no client's task.
2. The fan-out writes a caught-up client's live events itself (`ClientConnection.write`, behind
   the `fanout.Connection` protocol) by running the server's `send` coroutine by hand: on uvicorn
   it completes at once unless the socket's buffer is full, so a live batch costs one call per
   client and no task switch. A write that must wait is finished by the client's own task
   (`drain`), within the send timeout, before anything else is written.
3. Once its headers are out (through the middleware, which may add some, as CORS does), a stream
   hands the rest of itself to the application's outermost layer (`below_the_framework`), which
   runs it once the request's handling has unwound, with the server's own `send`: an idle stream
   keeps none of the framework's exit stacks, dependency cache and middleware frames, and live
   writes pass no middleware wrapper (they only look at a response's start). It keeps the
   middleware's `receive`, so a request body past the size limit still ends it.
4. One keep-alive for the process (`streaming`), handed to every client by the fan-out like a
   batch of events (in order with them), instead of a ping task per client (`ping=0`).
5. uvicorn waits for open responses before it stops, and tells them nothing. `streaming` puts a
   handler in front of the server's SIGINT and SIGTERM handlers (and then calls them) that ends
   every stream at once. sse-starlette's shutdown watch is reachable only through its GET (1.). A
   server stopped without a signal, or run off the main thread, ends streams at its
   graceful-shutdown timeout instead.
6. A connection that stopped taking data (or failed) ends its response with an error
   (`StreamAborted`): the server then drops the connection rather than wait to write the end.
"""

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from types import FrameType
from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskstream.api.caller import Caller
from taskstream.api.fanout import Connection, Fanout, Frame, StreamClosed
from taskstream.api.models import Reset, Snapshot
from taskstream.errors import StoreUnavailable, TooManyRequests, Unavailable
from taskstream.events.ids import ZERO
from taskstream.events.models import Event
from taskstream.settings import Settings

__all__ = [
    "DOC",
    "KEEPALIVE",
    "ClientConnection",
    "EventSourceResponse",
    "EventStream",
    "StreamAborted",
    "admit",
    "below_the_framework",
    "streaming",
]

HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}

DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of Server-Sent Events. Each message has `id:` (the log's event "
        "id), `event:` (the event's type, `reset` or `snapshot`) and `data:` (the event as "
        "JSON: the `Event` schema; a reset's is the `Reset` schema, a snapshot's the "
        "`Snapshot` schema).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def document(app: FastAPI) -> None:
    """Adds the stream messages' data (`Event`, `Reset`, `Snapshot`) to the OpenAPI
    description's schemas: no operation answers them as JSON, so FastAPI would leave them out."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        _, defined = models_json_schema(
            [(model, "serialization") for model in (Event, Reset, Snapshot)],
            ref_template="#/components/schemas/{model}",
        )
        known = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defined.get("$defs", {}).items():
            known.setdefault(name, definition)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# A comment line: clients ignore it, proxies see the connection is alive. It has no event id.
KEEPALIVE = Frame(
    key=ZERO,
    task_id="",
    final=False,
    data=ServerSentEvent(comment="keep-alive", sep="\n").encode(),
)

GONE = "the client went away"

# The scope key by which the outermost layer offers to run a stream below the framework (3.).
_BELOW = "taskstream.sse.below"

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# A stream's content, given the connection the fan-out may write its live events to.
Content = Callable[[Connection], AsyncGenerator[bytes, None]]


class StreamAborted(Exception):
    """The client's connection failed or stopped taking data: the server drops it (6.)."""


async def admit(fanout: Fanout, settings: Settings, caller: Caller) -> None:
    """Refuses a stream over the limits, while the fan-out cannot follow the log yet, or once the
    server was told to stop (a stream admitted then would hold the process until it ended)."""
    if fanout.stopping:
        raise Unavailable("this server is shutting down; try again", 1)
    if fanout.clients >= settings.max_streams:
        raise Unavailable("this server holds as many streams as it may; try another", 5)
    if not caller.sees_all and fanout.clients_of(caller) >= settings.max_streams_per_principal:
        raise TooManyRequests(
            f"at most {settings.max_streams_per_principal} open streams per principal", 5
        )
    try:
        await asyncio.wait_for(fanout.ready.wait(), timeout=5)
    except TimeoutError as exc:
        raise StoreUnavailable("the event log is not reachable yet") from exc


class EventStream(EventSourceResponse):
    """A stream of Server-Sent Events whose content is `content(connection)`.

    Routes name its base as their `response_class`: FastAPI documents a response class by its
    constructor's signature, and this one's takes what a stream needs instead.
    """

    def __init__(self, settings: Settings, content: Content) -> None:
        connection = ClientConnection(settings.client_send_timeout_seconds)
        body = content(connection)
        super().__init__(
            body,
            headers=HEADERS,
            ping=0,  # one keep-alive for the process (4.)
            send_timeout=settings.client_send_timeout_seconds,
        )
        self.stream = _Stream(body, connection, settings.sse_retry_ms)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await super().__call__(scope, receive, send)  # headers, and no body (1.)
            return
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        await send(start)
        self.stream.receive = receive  # the middleware's, as given (3.)
        if _BELOW in scope:
            scope[_BELOW] = self.stream.run
            return
        await self.stream.run(send)


async def below_the_framework(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Runs `app` on a request, then the rest of the event stream it began, if any (3.)."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    own = set(scope)
    scope[_BELOW] = None
    await app(scope, receive, send)
    rest = scope[_BELOW]
    if rest is not None:
        # What the framework put in the scope (its exit stacks, router, endpoint) is done with:
        # let it go rather than keep it as long as the stream lives.
        for key in set(scope) - own:
            del scope[key]
        del own
        await rest(send)


@contextlib.asynccontextmanager
async def streaming(fanout: Fanout, keepalive_seconds: float) -> AsyncIterator[None]:
    """For the application's lifespan: one keep-alive for every stream (4.), and every stream
    ended as soon as the server is told to stop (5.)."""
    beat = asyncio.create_task(_keep_alive(fanout, keepalive_seconds), name="sse-keep-alive")

    def stop_streaming() -> None:
        fanout.stopping = True  # the server may take a few more requests before it stops
        fanout.close_all("server shutting down")

    undo = _when_told_to_stop(stop_streaming)
    try:
        yield
    finally:
        undo()
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat


async def _keep_alive(fanout: Fanout, seconds: float) -> None:
    frames = [KEEPALIVE]
    while True:
        await asyncio.sleep(seconds)
        await fanout.broadcast(frames)


def _when_told_to_stop(callback: Callable[[], None]) -> Callable[[], None]:
    """Calls `callback` on this loop when the process is signalled to stop, before the handler
    the server put there. Returns what puts the server's handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread may handle signals
    loop = asyncio.get_running_loop()
    chained: dict[int, Callable[[int, FrameType | None], Any]] = {}
    for sig in STOP_SIGNALS:
        previous = signal.getsignal(sig)
        if callable(previous):  # never turn a signal that would end the process into none
            chained[sig] = previous

    def handler(signum: int, frame: FrameType | None) -> None:
        # A signal handler may run in the middle of a fan-out: end the streams on the loop.
        loop.call_soon_threadsafe(callback)
        chained[signum](signum, frame)

    for signum in chained:
        signal.signal(signum, handler)

    def undo() -> None:
        for signum, previous in chained.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, previous)

    return undo


class ClientConnection:
    """A client's connection: the stream writes to it from its own task (`put`), the fan-out
    writes live events to it inline (`fanout.Connection`, 2.)."""

    __slots__ = ("_close", "_send", "_timeout", "_unfinished", "failure", "gone")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._send: Send | None = None
        self._unfinished: _Unfinished | None = None
        self._close: Callable[[str], None] | None = None
        self.failure: str | None = None
        self.gone = False

    def bind(self, send: Send) -> None:
        self._send = send

    def hang_up(self) -> None:
        self.gone = True
        if self._close is not None:
            self._close(GONE)

    async def put(self, data: bytes, more: bool = True) -> None:
        """Writes `data` from the stream's own task, waiting (within the send timeout) if the
        connection is full."""
        if not self._start({"type": "http.response.body", "body": data, "more_body": more}):
            await self.drain()

    # fanout.Connection

    @property
    def ready(self) -> bool:
        return (
            self._send is not None
            and self._unfinished is None
            and self.failure is None
            and not self.gone
        )

    def write(self, data: bytes) -> bool:
        # `_start`, inline: this runs once per client for every live batch. The fan-out writes
        # only while `ready`, so `_send` is bound.
        message = {"type": "http.response.body", "body": data, "more_body": True}
        coro: Any = self._send(message)  # type: ignore[misc]
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return True
        except Exception as exc:
            self.failure = f"the connection failed: {exc!r}"
            return False
        self._unfinished = _Unfinished(coro, waiting_on)
        return False

    async def drain(self) -> None:
        unfinished, self._unfinished = self._unfinished, None
        if unfinished is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    await unfinished
            except TimeoutError:
                self.failure = f"too slow: its connection took nothing for {self._timeout:g} s"
        if self.failure is not None:
            raise StreamClosed(self.failure)

    def on_hang_up(self, close: Callable[[str], None]) -> None:
        self._close = close
        if self.gone:
            close(GONE)

    def _start(self, message: Message) -> bool:
        """Runs the server's `send(message)` until it first waits. True: it is done. False: it
        waits (kept for `drain`), or the server refused it (`failure`)."""
        assert self._send is not None
        coro: Any = self._send(message)
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return True
        except Exception as exc:  # the server refused the write: the stream is over
            self.failure = f"the connection failed: {exc!r}"
            return False
        self._unfinished = _Unfinished(coro, waiting_on)
        return False


class _Unfinished:
    """The rest of a started coroutine: awaiting this runs it to its end in the awaiting task."""

    __slots__ = ("_coro", "_waiting_on")

    def __init__(self, coro: Generator[Any, Any, Any], waiting_on: Any) -> None:
        self._coro = coro
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        waiting_on = self._waiting_on
        while True:
            try:
                resumed = yield waiting_on
            except GeneratorExit:
                self._coro.close()
                raise
            except BaseException as exc:  # cancellation, passed on to the write
                try:
                    waiting_on = self._coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                waiting_on = self._coro.send(resumed)
            except StopIteration:
                return


class _Stream:
    """A stream after its headers: its content, written through its connection, until it ends
    or its client leaves."""

    __slots__ = ("_body", "_connection", "_retry", "receive")

    def __init__(
        self, body: AsyncGenerator[bytes, None], connection: ClientConnection, retry_ms: int
    ) -> None:
        self._body = body
        self._connection = connection
        self._retry = ServerSentEvent(retry=retry_ms, sep="\n").encode()
        self.receive: Receive | None = None

    async def run(self, send: Send) -> None:
        """`send`: the server's own, once below the framework."""
        self._connection.bind(send)
        watcher = asyncio.create_task(self._watch_for_disconnect())
        try:
            await self._write_all()
        finally:
            watcher.cancel()

    async def _watch_for_disconnect(self) -> None:
        assert self.receive is not None
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self._connection.hang_up()

    async def _write_all(self) -> None:
        connection = self._connection
        try:
            async with contextlib.aclosing(self._body) as body:
                await connection.put(self._retry)
                async for chunk in body:
                    await connection.put(chunk)
                    if connection.gone:
                        break  # no need to read the rest of a catch-up for nobody
        except StreamClosed:
            pass  # the connection failed: see below
        if connection.failure is not None:
            raise StreamAborted(connection.failure)
        await connection.put(b"", more=False)
