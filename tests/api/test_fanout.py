"""The fan-out's bookkeeping, as plain logic: who gets which frames, and who is dropped."""

import asyncio

import pytest

from taskstream.api.fanout import Fanout, Frame, StreamClosed
from taskstream.api.problems import field_name


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
        fanout.publish([frame(1), frame(2, "t2")])
        assert [f.key for f in await everything.next_batch()] == [(1, 0), (2, 0)]
        assert [f.key for f in await only_t2.next_batch()] == [(2, 0)]
        fanout.publish([frame(3), frame(4)])  # `slow` never read: 4 frames > limit 3
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
