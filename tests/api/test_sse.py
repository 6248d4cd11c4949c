"""A stream's life as a response, on a stand-in ASGI server: what goes out, and when it ends."""

import asyncio
import signal
from functools import partial
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from taskstream.api import streams
from taskstream.api.caller import ANYONE
from taskstream.api.fanout import Fanout, Frame, StreamClosed
from taskstream.api.sse import KEEPALIVE, EventStream, StreamAborted, below_the_framework, streaming
from taskstream.events.ids import ZERO
from taskstream.settings import Settings

SETTINGS = Settings(_env_file=None, client_send_timeout_seconds=0.2, sse_retry_ms=1500)
RETRY = b"retry: 1500\n\n"
END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class Server:
    """An ASGI server's side of one request: its `send` waits, as uvicorn's does, while the
    socket is full (`writable` clear); its `receive` answers once the client leaves."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.left = asyncio.Event()

    async def send(self, message: Message) -> None:
        if not self.writable.is_set():
            await self.writable.wait()
        self.messages.append(message)

    async def receive(self) -> Message:
        await self.left.wait()
        return {"type": "http.disconnect"}

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]


async def settle() -> None:
    """Lets the tasks started so far run until each waits for something from outside."""
    for _ in range(20):
        await asyncio.sleep(0)


def make_fanout() -> Fanout:
    return Fanout(store=None, reader=None, block_ms=100, buffer_limit=10)  # type: ignore[arg-type]


def every_event(fanout: Fanout) -> EventStream:
    # Without a resume id the stream never reads the log: no store needed.
    store: Any = None
    return EventStream(SETTINGS, partial(streams.all_events, store, fanout, ANYONE, None))


def frame(n: int) -> Frame:
    data = f"id: {n}-0\n\n".encode()
    return Frame(key=(n, 0), task_id="t1", final=False, data=data, type="progress")


def request(method: str = "GET") -> Scope:
    return {"type": "http", "method": method, "headers": []}


def test_head_gets_the_headers_and_no_stream() -> None:
    async def scenario() -> None:
        fanout, server = make_fanout(), Server()
        await every_event(fanout)(request("HEAD"), server.receive, server.send)
        start, end = server.messages
        headers = {name.decode(): value.decode() for name, value in start["headers"]}
        assert headers["content-type"] == "text/event-stream; charset=utf-8"
        assert headers["cache-control"] == "no-cache, no-transform"
        assert headers["x-accel-buffering"] == "no"
        assert end == END
        assert fanout.clients == 0

    asyncio.run(scenario())


def test_a_stream_runs_below_the_framework_on_the_servers_own_send() -> None:
    async def scenario() -> None:
        fanout, server = make_fanout(), Server()
        through_middleware: list[str] = []

        async def framework(scope: Scope, receive: Receive, send: Send) -> None:
            async def middleware_send(message: Message) -> None:
                through_middleware.append(message["type"])
                await send(message)

            scope["framework.exit_stack"] = object()
            await every_event(fanout)(scope, receive, middleware_send)

        scope = request()
        running = asyncio.create_task(
            below_the_framework(framework, scope, server.receive, server.send)
        )
        await settle()
        assert fanout.clients == 1
        assert set(scope) == {"type", "method", "headers"}  # the framework's keys are let go
        await fanout.publish([frame(1)])
        await fanout.publish([frame(2)])
        assert server.bodies == [RETRY, b"id: 1-0\n\n", b"id: 2-0\n\n"]
        assert through_middleware == ["http.response.start"]
        server.left.set()
        await asyncio.wait_for(running, 5)
        assert server.messages[-1] == END
        assert fanout.clients == 0

    asyncio.run(scenario())


def test_without_the_outer_layer_a_stream_runs_in_place() -> None:
    async def scenario() -> None:
        fanout, server = make_fanout(), Server()
        running = asyncio.create_task(every_event(fanout)(request(), server.receive, server.send))
        await settle()
        assert fanout.clients == 1
        fanout.close_all("server shutting down")
        await asyncio.wait_for(running, 5)
        assert server.bodies == [RETRY, b""]

    asyncio.run(scenario())


class NoHistory:
    """A store in which the task has no events yet."""

    async def read_task_log(self, *args: object) -> list[object]:
        return []


def test_a_task_stream_written_live_ends_after_the_tasks_final_event() -> None:
    async def scenario() -> None:
        fanout, server = make_fanout(), Server()
        store: Any = NoHistory()
        content = partial(streams.task_events, store, fanout, ANYONE, "t1", None)
        running = asyncio.create_task(
            EventStream(SETTINGS, content)(request(), server.receive, server.send)
        )
        await settle()
        final = Frame(key=(2, 0), task_id="t1", final=True, data=b"id: 2-0\n\n", type="failed")
        await fanout.publish([frame(1)])
        await fanout.publish([final])
        await asyncio.wait_for(running, 5)
        assert server.bodies == [RETRY, b"id: 1-0\n\n", b"id: 2-0\n\n", b""]
        assert fanout.clients == 0

    asyncio.run(scenario())


def test_a_connection_that_takes_nothing_aborts_its_response() -> None:
    async def scenario() -> None:
        fanout, server = make_fanout(), Server()
        running = asyncio.create_task(every_event(fanout)(request(), server.receive, server.send))
        await settle()
        assert fanout.clients == 1
        server.writable.clear()  # the client stopped reading, and the socket filled up
        await fanout.publish([frame(1)])
        with pytest.raises(StreamAborted, match="too slow"):
            await asyncio.wait_for(running, 5)
        assert fanout.clients == 0
        assert END not in server.messages

    asyncio.run(scenario())


def test_one_keep_alive_reaches_every_stream() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        subs = [fanout.subscribe(ANYONE), fanout.subscribe(ANYONE, "t1")]
        async with streaming(fanout, keepalive_seconds=0.01):
            batches = [await asyncio.wait_for(sub.next_batch(ZERO), 5) for sub in subs]
        assert batches == [[KEEPALIVE], [KEEPALIVE]]

    asyncio.run(scenario())


def test_a_stop_signal_ends_every_stream_and_still_reaches_the_servers_handler() -> None:
    caught: list[int] = []

    def servers_handler(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGTERM, servers_handler)
    try:

        async def scenario() -> None:
            fanout = make_fanout()
            sub = fanout.subscribe(ANYONE)
            async with streaming(fanout, keepalive_seconds=60):
                signal.raise_signal(signal.SIGTERM)
                with pytest.raises(StreamClosed, match="shutting down"):
                    await asyncio.wait_for(sub.next_batch(ZERO), 5)
            assert caught == [signal.SIGTERM]
            assert signal.getsignal(signal.SIGTERM) is servers_handler

        asyncio.run(scenario())
    finally:
        signal.signal(signal.SIGTERM, previous)
