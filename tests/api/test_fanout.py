"""The fan-out's bookkeeping, as plain logic: who gets which frames, and who is dropped."""

import asyncio

import pytest
from starlette.types import Message

from taskstream.api.fanout import HEARTBEAT, SLICE, Fanout, Frame, StreamClosed
from taskstream.api.problems import field_name
from taskstream.api.sse import ConnectionSink


def frame(n: int, task_id: str = "t1", final: bool = False) -> Frame:
    return Frame(key=(n, 0), task_id=task_id, final=final, data=f"id: {n}-0\n\n".encode())


def make_fanout(limit: int = 3) -> Fanout:
    return Fanout(store=None, reader=None, block_ms=100, buffer_limit=limit)  # type: ignore[arg-type]


def test_each_client_gets_its_frames_and_a_slow_one_is_dropped() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=3)
        everything = fanout.subscribe()
        only_t2 = fanout.subscribe("t2")
        slow = fanout.subscribe()
        await fanout.publish([frame(1), frame(2, "t2")])
        assert [f.key for f in await everything.next_batch()] == [(1, 0), (2, 0)]
        assert [f.key for f in await only_t2.next_batch()] == [(2, 0)]
        await fanout.publish([frame(3), frame(4)])  # `slow` never read: 4 frames > limit 3
        assert [f.key for f in await everything.next_batch()] == [(3, 0), (4, 0)]
        with pytest.raises(StreamClosed, match="too slow"):
            await slow.next_batch()
        assert fanout.clients == 2
        assert fanout.position == (4, 0)
        fanout.unsubscribe(everything)
        fanout.unsubscribe(only_t2)
        assert fanout.clients == 0
        assert not fanout._by_task  # nothing left behind for a task nobody follows

    asyncio.run(scenario())


def test_stop_closes_waiting_clients() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        sub = fanout.subscribe()
        waiter = asyncio.create_task(sub.next_batch())
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
    fanout: Fanout, send_timeout: float = 5
) -> tuple[Connection, ConnectionSink, asyncio.Task[list[Frame]]]:
    """A client past its catch-up: its task waits for a batch, its sink takes live frames."""
    connection = Connection()
    sink = ConnectionSink(send_timeout)
    sink.bind(connection.send)
    sub = fanout.subscribe(sink=sink)
    waiter = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    return connection, sink, waiter


def test_live_frames_of_a_caught_up_client_are_written_without_waking_it() -> None:
    async def scenario() -> None:
        fanout = make_fanout()
        connection, _, waiter = await caught_up(fanout)
        await fanout.publish([frame(1), frame(2)])
        await fanout.publish([HEARTBEAT])
        await fanout.publish([frame(3)])
        assert connection.written == [b"id: 1-0\n\nid: 2-0\n\n", HEARTBEAT.data, b"id: 3-0\n\n"]
        assert not waiter.done()  # every batch went out as one write, none through its task
        assert fanout.stats.delivered == 4
        waiter.cancel()

    asyncio.run(scenario())


def test_a_write_that_must_wait_holds_back_what_follows_until_it_is_done() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=10)
        connection, sink, waiter = await caught_up(fanout)
        connection.writable.clear()  # the socket's buffer is full
        await fanout.publish([frame(1)])
        await fanout.publish([frame(2)])
        await fanout.publish([frame(3)])
        assert connection.written == []
        assert not waiter.done()  # the client's task is finishing the first write
        connection.writable.set()
        batch = await waiter  # the rest comes through the task, after the waiting write
        assert connection.written == [b"id: 1-0\n\n"]
        assert [f.key for f in batch] == [(2, 0), (3, 0)]
        assert sink.ready

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
        connection, sink, waiter = await caught_up(fanout, send_timeout=0.2)
        connection.writable.clear()
        await fanout.publish([frame(1)])
        with pytest.raises(StreamClosed, match="too slow"):
            await waiter
        assert sink.failure is not None

    asyncio.run(scenario())


def test_clients_joining_during_a_fan_out_are_neither_missed_nor_served_twice() -> None:
    async def scenario() -> None:
        fanout = make_fanout(limit=10)
        early = [fanout.subscribe() for _ in range(3 * SLICE)]
        publishing = asyncio.create_task(fanout.publish([frame(1), frame(2)]))
        await asyncio.sleep(0)  # the fan-out hands the loop back after its first slice
        assert not publishing.done()
        late = fanout.subscribe()
        await publishing
        assert late.start == (2, 0)  # it reads the batch from the log, up to here
        await fanout.publish([frame(3)])
        assert [f.key for f in await late.next_batch()] == [(3, 0)]
        for sub in early:
            assert [f.key for f in await sub.next_batch()] == [(1, 0), (2, 0), (3, 0)]

    asyncio.run(scenario())


def test_field_names_of_validation_errors() -> None:
    tags = frozenset({"add"})
    assert field_name(("body", "add", "params", "x"), tags) == "params.x"
    assert field_name(("body", "kind"), tags) == "kind"
    assert field_name(("query", "limit"), tags) == "query.limit"
    assert field_name(("body",), tags) == "body"


def test_heartbeats_always_pass_and_never_move_the_resume_point() -> None:
    from taskstream.api.fanout import HEARTBEAT
    from taskstream.api.streams import _fresh

    fresh, sent = _fresh([frame(1), HEARTBEAT, frame(3), HEARTBEAT], (1, 0))
    assert fresh == [HEARTBEAT, frame(3), HEARTBEAT]
    assert sent == (3, 0)
    only_beat, unchanged = _fresh([HEARTBEAT], (7, 0))
    assert only_beat == [HEARTBEAT]
    assert unchanged == (7, 0)
