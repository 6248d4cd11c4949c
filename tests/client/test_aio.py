"""The async client on a live stack: the same calls, awaited, with the same answers."""

import contextlib
import uuid

import pytest

from taskstream.client import (
    Conflict,
    Event,
    NotFound,
    Snapshot,
    TaskState,
    WaitTimeout,
)
from tests.client.conftest import async_client
from tests.support.loops import run_apart
from tests.support.stack import Stack


def test_async_submit_get_list_output_cancel_and_wait(stack: Stack) -> None:
    tag = f"client-{uuid.uuid4().hex[:12]}"

    async def scenario() -> None:
        async with async_client(stack.api.url) as client:
            added = [
                (await client.submit("add", {"x": n, "y": 1}, tags=[tag])).id for n in range(3)
            ]
            assert [t.id async for t in client.list(tag=tag, page_size=2)] == added[::-1]
            assert (await client.get(added[0])).kind == "add"
            finished = await client.wait(added[0], timeout=30)
            assert finished.state is TaskState.succeeded
            assert finished.result == 1
            assert (await client.output(added[0])).last_event_id == finished.last_event_id

            long = await client.submit("long", {"seconds": 30}, tags=[tag])
            with pytest.raises(WaitTimeout):
                await client.wait(long.id, timeout=0.5)
            async with contextlib.aclosing(client.watch(long.id)) as events:
                async for item in events:
                    if isinstance(item, Event) and item.type == "started":
                        break
            await client.cancel(long.id)
            assert (await client.wait(long.id, timeout=30)).state is TaskState.cancelled
            with pytest.raises(Conflict):
                await client.cancel(long.id)
            with pytest.raises(NotFound):
                await client.get("0" * 32)

            seqs = [item.seq async for item in client.watch(long.id) if isinstance(item, Event)]
            assert seqs == list(range(1, (await client.get(long.id)).seq + 1))
            snapshots = [item async for item in client.watch(long.id, snapshot=True)]
            assert [type(item) for item in snapshots] == [Snapshot]

    run_apart(scenario())
