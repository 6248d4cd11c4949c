"""The fan-out's bookkeeping, as plain logic: who gets which frames, and who is dropped."""

import asyncio

import pytest
from starlette.types import Message

from taskstream.api.caller import ANYONE, Caller
from taskstream.api.fanout import SLICE, Fanout, Frame, StreamClosed
from taskstream.api.filters import EventFilter, parse_filter
from taskstream.api.problems import field_name
from taskstream.api.sse import KEEPALIVE, ClientConnection
from taskstream.api.streams import _fresh
from taskstream.events.ids import ZERO, EventId


def frame(
    n: int,
    task_id: str = "t1",
    final: bool = False,
    owner: str = "",
    type: str = "progress",
    kind: str = "long",
    tags: frozenset[str] = frozenset(),
) -> Frame:
    data = f"id: {n}-0\n\n".encode()
    return Frame((n, 0), task_id, final, data, owner, type, kind, tags)


def keys(frames: list[Frame]) -> list[EventId]:
    return [f.key for f in frames]


def make_fanout(limit: int = 3) -> Fanout:
    return Fanout(store=None, reader=None, block_ms=100, buffer_limit=limit)  # type: ignore[arg-type]


def test_each_client_gets_its_frames_and_a_slow_one_is_dropped() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=3)
        everything = fanout.subscribe(ANYONE)
        only_t2 = fanout.subscribe(ANYONE, "t2")
        slow = fanout.subscribe(ANYONE)
        await fanout.publish([frame(1), frame(2, "t2")])
        assert keys(await everything.next_batch(ZERO)) == [(1, 0), (2, 0)]
        assert keys(await only_t2.next_batch(ZERO)) == [(2, 0)]
        await fanout.publish([frame(3), frame(4)])  # `slow` never read: 4 frames > limit 3
        assert keys(await everything.next_batch(ZERO)) == [(3, 0), (4, 0)]
        with pytest.raises(StreamClosed, match="too slow"):
            await slow.next_batch(ZERO)
        assert fanout.clients == 2
        assert fanout.position == (4, 0)
        fanout.unsubscribe(everything)
        fanout.unsubscribe(only_t2)
        assert fanout.clients == 0
        assert not fanout._by_task  # nothing left behind for a task nobody follows

    asyncio.run(scenario())


def test_a_caller_gets_only_its_own_events_and_is_counted_apart() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        alice, bob = Caller("alice"), Caller("bob")
        alices = fanout.subscribe(alice)
        everyone = fanout.subscribe(ANYONE)
        fanout.subscribe(bob)
        fanout.subscribe(Caller("alice"))  # the same caller, from another request
        await fanout.publish([frame(1, owner="alice"), frame(2, owner="bob"), frame(3)])
        assert keys(await alices.next_batch(ZERO)) == [(1, 0)]
        assert keys(await everyone.next_batch(ZERO)) == [(1, 0), (2, 0), (3, 0)]
        assert (fanout.clients_of(alice), fanout.clients_of(bob), fanout.clients) == (2, 1, 4)

    asyncio.run(scenario())


def test_a_client_gets_the_types_kind_tag_and_tasks_it_asked_for() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=10)
        default = fanout.subscribe(ANYONE)
        output = fanout.subscribe(ANYONE, filter=parse_filter("output,succeeded", None, None, None))
        tagged = fanout.subscribe(ANYONE, filter=parse_filter(None, None, "user:1", None))
        of_add = fanout.subscribe(ANYONE, filter=parse_filter(None, "add", None, None))
        of_t2 = fanout.subscribe(ANYONE, filter=EventFilter(tasks=frozenset({"t2"})))
        one_task = fanout.subscribe(ANYONE, "t1")
        await fanout.publish(
            [
                frame(1, type="output"),
                frame(2, type="log", tags=frozenset({"user:1"})),
                frame(3, type="progress", tags=frozenset({"user:1"})),
                frame(4, "t2", type="succeeded", kind="add", final=True),
            ]
        )
        assert keys(await default.next_batch(ZERO)) == [(3, 0), (4, 0)]
        assert keys(await output.next_batch(ZERO)) == [(1, 0), (4, 0)]
        assert keys(await tagged.next_batch(ZERO)) == [(3, 0)]
        assert keys(await of_add.next_batch(ZERO)) == [(4, 0)]
        assert keys(await of_t2.next_batch(ZERO)) == [(4, 0)]
        assert keys(await one_task.next_batch(ZERO)) == [(1, 0), (2, 0), (3, 0)]

    asyncio.run(scenario())


def test_stop_closes_waiting_clients() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        sub = fanout.subscribe(ANYONE)
        waiter = asyncio.create_task(sub.next_batch(ZERO))
        await asyncio.sleep(0)
        await fanout.stop()
        with pytest.raises(StreamClosed, match="shutting down"):
            await waiter

    asyncio.run(scenario())


class Connection:
    """An ASGI `send` whose writes wait, like a server's, while `writable` is clear."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()

    async def send(self, message: Message) -> None:
        await self.writable.wait()
        self.written.append(message["body"])


async def caught_up(
    fanout: Fanout,
    send_timeout: float = 5,
    task_id: str | None = None,
    sent: EventId | None = None,
) -> tuple[Connection, ClientConnection, asyncio.Task[list[Frame]]]:
    """A client past its catch-up (having sent up to `sent`, by default where it subscribed):
    its task waits for a batch, its connection takes live frames."""
    connection = Connection()
    client = ClientConnection(send_timeout)
    client.bind(connection.send)
    sub = fanout.subscribe(ANYONE, task_id, client)
    waiter = asyncio.create_task(sub.next_batch(sub.start if sent is None else sent))
    await asyncio.sleep(0)
    return connection, client, waiter


def test_live_frames_of_a_caught_up_client_are_written_without_waking_it() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        connection, _, waiter = await caught_up(fanout)
        await fanout.publish([frame(1), frame(2)])
        await fanout.broadcast([KEEPALIVE])
        await fanout.publish([frame(3)])
        assert connection.written == [b"id: 1-0\n\nid: 2-0\n\n", KEEPALIVE.data, b"id: 3-0\n\n"]
        assert not waiter.done()  # every batch went out as one write, none through its task
        assert fanout.stats.delivered == 3  # events: a keep-alive is none
        waiter.cancel()

    asyncio.run(scenario())


def test_a_write_that_must_wait_holds_back_what_follows_until_it_is_done() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=10)
        connection, client, waiter = await caught_up(fanout)
        connection.writable.clear()  # the socket's buffer is full
        await fanout.publish([frame(1)])
        await fanout.publish([frame(2)])
        await fanout.publish([frame(3)])
        assert connection.written == []
        assert not waiter.done()  # the client's task is finishing the first write
        connection.writable.set()
        batch = await waiter  # the rest comes through the task, after the waiting write
        assert connection.written == [b"id: 1-0\n\n"]
        assert keys(batch) == [(2, 0), (3, 0)]
        assert client.ready

    asyncio.run(scenario())


def test_a_client_dropped_while_its_write_waits_ends_when_the_write_is_done() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=2)
        connection, _, waiter = await caught_up(fanout)
        connection.writable.clear()
        await fanout.publish([frame(1)])
        await fanout.publish([frame(2), frame(3), frame(4)])  # more than its buffer holds
        assert fanout.stats.dropped == 1
        connection.writable.set()
        with pytest.raises(StreamClosed, match="too slow"):
            await asyncio.wait_for(waiter, 5)

    asyncio.run(scenario())


def test_a_connection_that_never_drains_ends_its_stream() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=10)
        connection, client, waiter = await caught_up(fanout, send_timeout=0.2)
        connection.writable.clear()
        await fanout.publish([frame(1)])
        with pytest.raises(StreamClosed, match="too slow"):
            await waiter
        assert client.failure is not None

    asyncio.run(scenario())


def test_a_client_that_goes_away_ends_its_stream() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        _, client, waiter = await caught_up(fanout)
        client.hang_up()
        with pytest.raises(StreamClosed, match="went away"):
            await waiter
        await fanout.publish([frame(1)])  # nothing is written to a client that has gone

    asyncio.run(scenario())


def test_a_stream_ahead_of_the_fan_out_gets_live_frames_through_its_task_until_it_is_not() -> None:
    """A resume id (or a task's history) newer than the fan-out's position: written directly,
    the frames in between would repeat events the client has."""

    async def scenario() -> None:
        fanout = make_fanout(limit=10)
        fanout.position = (2, 0)
        connection, client = Connection(), ClientConnection(5)
        client.bind(connection.send)
        sub = fanout.subscribe(ANYONE, connection=client)
        behind = asyncio.create_task(sub.next_batch((4, 0)))  # it has sent up to 4
        await asyncio.sleep(0)
        await fanout.publish([frame(3), frame(4)])
        assert connection.written == []
        assert keys(await behind) == [(3, 0), (4, 0)]  # for the stream to drop
        live = asyncio.create_task(sub.next_batch((4, 0)))
        await asyncio.sleep(0)
        await fanout.publish([frame(5)])
        assert connection.written == [b"id: 5-0\n\n"]
        assert not live.done()
        live.cancel()

    asyncio.run(scenario())


def test_a_task_stream_written_directly_ends_with_the_task() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        connection, _, waiter = await caught_up(fanout, task_id="t1")
        await fanout.publish([frame(1, "t2", final=True), frame(2)])
        assert not waiter.done()
        await fanout.publish([frame(3, final=True)])
        with pytest.raises(StreamClosed, match="task ended"):
            await waiter
        assert connection.written == [b"id: 2-0\n\n", b"id: 3-0\n\n"]

    asyncio.run(scenario())


def test_clients_joining_during_a_fan_out_are_neither_missed_nor_served_twice() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=10)
        early = [fanout.subscribe(ANYONE) for _ in range(3 * SLICE)]
        publishing = asyncio.create_task(fanout.publish([frame(1), frame(2)]))
        await asyncio.sleep(0)  # the fan-out hands the loop back after its first slice
        assert not publishing.done()
        late = fanout.subscribe(ANYONE)
        await publishing
        assert late.start == (2, 0)  # it reads the batch from the log, up to here
        await fanout.publish([frame(3)])
        assert keys(await late.next_batch(late.start)) == [(3, 0)]
        for sub in early:
            assert keys(await sub.next_batch(ZERO)) == [(1, 0), (2, 0), (3, 0)]

    asyncio.run(scenario())


def test_field_names_of_validation_errors() -> None:
    tags = frozenset({"add"})
    assert field_name(("body", "add", "params", "x"), tags) == "params.x"
    assert field_name(("body", "kind"), tags) == "kind"
    assert field_name(("query", "limit"), tags) == "query.limit"
    assert field_name(("body",), tags) == "body"


def test_keep_alives_always_pass_and_never_move_the_resume_point() -> None:
    fresh, sent = _fresh([frame(1), KEEPALIVE, frame(3), KEEPALIVE], (1, 0))
    assert fresh == [KEEPALIVE, frame(3), KEEPALIVE]
    assert sent == (3, 0)
    only_beat, unchanged = _fresh([KEEPALIVE], (7, 0))
    assert only_beat == [KEEPALIVE]
    assert unchanged == (7, 0)
