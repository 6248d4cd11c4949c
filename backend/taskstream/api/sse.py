"""The one place that turns an event stream into an HTTP response.

sse-starlette keeps what it does well: the headers, watching for the client's disconnect and for
the server's shutdown, and the catch-up chunks a stream yields. Live events take a shorter way:
once a client has caught up, the fan-out writes each batch to its connection through a
`ConnectionSink`, with the server's own `send`, below the middleware (which only looks at a
response's start) and without waking the client's task.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import anyio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

from taskstream.api.fanout import Fanout, StreamClosed
from taskstream.errors import StoreUnavailable, TooManyRequests, Unavailable
from taskstream.settings import Settings

__all__ = [
    "DOC",
    "HANDOFF",
    "HEADERS",
    "ConnectionSink",
    "EventSourceResponse",
    "LiveEventSourceResponse",
    "admit",
    "close_streams_on_exit",
    "ensure_ready",
    "event_stream",
]

HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}

# The scope key by which the application's outermost layer offers to carry a live stream on
# below the framework once its headers are out: the response puts the rest of itself there.
HANDOFF = "taskstream.handoff"

DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of Server-Sent Events. Each message has `id:` (the log's event "
        "id), `event:` (the event's type, or `reset`) and `data:` (the event as JSON, see the "
        "`Event` schema).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def admit(fanout: Fanout, settings: Settings, principal: str) -> str | None:
    """Checks the stream limits; returns whose events the stream may carry (None: everyone's)."""
    viewer = principal if settings.auth_required else None
    if fanout.clients >= settings.max_streams:
        raise Unavailable("this server holds as many streams as it may; try another", 5)
    if viewer is not None and fanout.clients_of(viewer) >= settings.max_streams_per_principal:
        raise TooManyRequests(
            f"at most {settings.max_streams_per_principal} open streams per principal", 5
        )
    return viewer


async def ensure_ready(fanout: Fanout) -> None:
    try:
        await asyncio.wait_for(fanout.ready.wait(), timeout=5)
    except TimeoutError as exc:
        raise StoreUnavailable("the event log is not reachable yet") from exc


class _Rest:
    """The rest of a started coroutine: awaiting this runs it to its end in the awaiting task."""

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


class ConnectionSink:
    """Writes a client's live chunks from the fan-out, inline.

    A body write runs the server's `send` coroutine by hand: on uvicorn it completes at once
    unless the connection's write buffer is full, so a live batch costs one call per client, not a
    task switch. A write that has to wait is kept, and the client's own task finishes it
    (`drain`) within the send timeout before sending anything else.
    """

    def __init__(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._send: Send | None = None
        self._pending: _Rest | None = None
        self._close: Callable[[str], None] | None = None
        self.failure: str | None = None

    def bind(self, send: Send) -> None:
        self._send = send

    def attach(self, close: Callable[[str], None]) -> None:
        self._close = close

    def hang_up(self) -> None:
        """The client went away: end the stream."""
        self._send = None
        if self._close is not None:
            self._close("the client went away")

    @property
    def ready(self) -> bool:
        return self._send is not None and self._pending is None and self.failure is None

    def write(self, data: bytes) -> bool:
        assert self._send is not None
        coro: Any = self._send({"type": "http.response.body", "body": data, "more_body": True})
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return True
        except Exception as exc:  # the server refused the write: the stream is over
            self.failure = f"the connection failed: {exc!r}"
            return False
        self._pending = _Rest(coro, waiting_on)
        return False

    async def drain(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            with anyio.move_on_after(self._timeout) as scope:
                await pending
            if scope.cancelled_caught:
                self.failure = "too slow: its connection stopped taking events"
        if self.failure is not None:
            raise StreamClosed(self.failure)


class LiveEventSourceResponse(EventSourceResponse):
    """An `EventSourceResponse` whose live events the fan-out writes through `sink`.

    Its headers go out through the middleware (which may add some, as CORS does). Then, where
    the application offers it (`HANDOFF`), the rest of the response runs below the framework, with
    the server's own `send` and `receive`: the request's handling unwinds and frees what it held
    (an idle stream keeps only what it needs), and live writes pass no middleware wrapper (they
    only look at a response's start). It runs in the request's task with one helper task that
    watches for the client leaving: no task group, lock or shutdown event per client
    (`close_streams_on_exit` ends every stream when the server stops, once for the process).
    """

    def __init__(self, content: AsyncIterator[bytes], sink: ConnectionSink, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.sink = sink
        self._receive: Receive | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await super().__call__(scope, receive, send)
            return
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        await send(start)
        self._receive = receive  # as the middleware gave it: a body past the limit ends it
        if HANDOFF in scope:
            scope[HANDOFF] = self.rest
            return
        await self.rest(send)

    async def rest(self, send: Send) -> None:
        """The response after its start: the stream, until it ends or the client leaves."""
        watcher = asyncio.create_task(self._watch_for_disconnect(self._receive))
        try:
            await self._stream(send)
        finally:
            watcher.cancel()

    async def _watch_for_disconnect(self, receive: Receive | None) -> None:
        assert receive is not None
        while (await receive())["type"] != "http.disconnect":
            pass
        self.sink.hang_up()

    async def _stream(self, send: Send) -> None:
        self.sink.bind(send)
        try:
            async for data in self.body_iterator:
                await self._send_with_timeout(
                    send, {"type": "http.response.body", "body": data, "more_body": True}
                )
        except BaseException:
            # The stream is suspended at a yield: close it so its cleanup runs first.
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.move_on_after(self._cleanup_timeout, shield=True):
                    await aclose()
            raise
        if self.sink.failure is not None:
            raise SendTimeoutError()  # the connection is stuck: let the server close it
        await self._send_with_timeout(
            send, {"type": "http.response.body", "body": b"", "more_body": False}
        )


async def close_streams_on_exit(fanout: Fanout) -> None:
    """Ends every stream when the server begins to shut down, so it does not wait for them."""
    await EventSourceResponse._listen_for_exit_signal()
    fanout.close_all("server shutting down")


def event_stream(
    body: AsyncIterator[bytes], settings: Settings, sink: ConnectionSink | None = None
) -> EventSourceResponse:
    options: dict[str, Any] = {
        "headers": HEADERS,
        "ping": 0,  # the fan-out's one heartbeat keeps every stream alive
        "send_timeout": settings.client_send_timeout_seconds,
    }
    if sink is None:
        return EventSourceResponse(body, **options)
    return LiveEventSourceResponse(body, sink, **options)
