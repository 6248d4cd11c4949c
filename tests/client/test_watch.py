"""Following streams on a live stack: across an API restart every event once, filters, resuming
by id, and a `reset` where an id cannot be resumed from."""

import asyncio
import concurrent.futures
import contextlib
import uuid
from collections.abc import Generator

import httpx

from taskstream.client import Client, Event, Reset, Snapshot, TaskState
from tests.client.conftest import FAST, async_client
from tests.support.loops import run_apart
from tests.support.processes import ApiServer

# Some 4 s of writing: an API restart falls in the middle of it.
WORDS = {"words": 80, "rate": 20}


def seqs(items: list[Event | Snapshot]) -> list[int]:
    assert all(isinstance(item, Event) for item in items), "a snapshot: events were missed"
    return [item.seq for item in items if isinstance(item, Event)]


def api_pid(api: ApiServer) -> int:
    return api.process.pid


def test_watch_across_an_api_restart_yields_every_seq_once(restartable: ApiServer) -> None:
    first_pid = api_pid(restartable)
    items: list[Event | Snapshot] = []
    tries: list[int] = []  # how many items had come when the stream was asked for

    def connecting(request: httpx.Request) -> None:
        if request.url.path.endswith("/events"):
            tries.append(len(items))

    http = httpx.Client(event_hooks={"request": [connecting]})
    with (
        http,
        Client(restartable.url, reconnect=FAST, http=http) as client,
        concurrent.futures.ThreadPoolExecutor(1) as thread,
    ):
        task = client.submit("generate", WORDS)
        started: concurrent.futures.Future[ApiServer] | None = None
        for item in client.watch(task.id):
            items.append(item)
            if started is None and isinstance(item, Event) and item.type == "output":
                # Gone before the watch reads on (its stream ends, unread, in the socket's
                # buffer); it comes back while the watch tries to reconnect.
                restartable.stop()
                started = thread.submit(restartable.start)
        assert started is not None
        started.result(timeout=60)
        final = client.get(task.id)
    assert api_pid(restartable) != first_pid
    assert len(tries) >= 3, tries  # refused at least once while it was down
    assert 0 < tries[1] < len(items)  # then resumed mid-task
    assert seqs(items) == list(range(1, final.seq + 1))
    assert final.state is TaskState.succeeded
    assert isinstance(items[-1], Event)
    assert items[-1].type == "succeeded"


def test_async_watch_and_watch_events_across_an_api_restart(restartable: ApiServer) -> None:
    first_pid = api_pid(restartable)

    async def scenario() -> tuple[list[Event | Snapshot], list[Event | Reset], int]:
        async with async_client(restartable.url) as client:
            task = await client.submit("generate", WORDS)
            starting: asyncio.Task[ApiServer] | None = None
            watched: list[Event | Snapshot] = []
            seen: list[Event | Reset] = []

            async def everyone() -> None:
                stream = client.watch_events(task=task.id, last_event_id=task.last_event_id)
                async with contextlib.aclosing(stream) as events:
                    async for item in events:
                        seen.append(item)
                        if isinstance(item, Event) and item.type.final:
                            return

            following = asyncio.create_task(everyone())
            async for item in client.watch(task.id):
                watched.append(item)
                if starting is None and isinstance(item, Event) and item.type == "output":
                    # Stopped with the loop held: neither stream reconnects to it meanwhile.
                    restartable.stop()
                    starting = asyncio.create_task(asyncio.to_thread(restartable.start))
            await asyncio.wait_for(following, 60)
            assert starting is not None
            await starting
            return watched, seen, (await client.get(task.id)).seq

    watched, seen, last = run_apart(scenario())
    assert api_pid(restartable) != first_pid
    assert seqs(watched) == list(range(1, last + 1))
    # Everyone's stream leaves out output and log events, and began after the queued one.
    expected = [e.id for e in watched if isinstance(e, Event) and not e.type.output_log][1:]
    assert [e.id for e in seen if isinstance(e, Event)] == expected
    assert not any(isinstance(item, Reset) for item in seen)


def collect(
    stream: Generator[Event | Reset, None, None], until: str, task_id: str
) -> list[Event | Reset]:
    """What `stream` yields up to the event of type `until` of the task `task_id`."""
    items: list[Event | Reset] = []
    for item in stream:
        items.append(item)
        if isinstance(item, Event) and item.task_id == task_id and item.type == until:
            break
    return items


def test_watch_events_filters_and_resumes_after_an_id(client: Client) -> None:
    tag = f"client-{uuid.uuid4().hex[:12]}"
    first = client.submit("add", {"x": 1, "y": 1}, tags=[tag])
    client.submit("add", {"x": 2, "y": 2})  # without the tag: never seen below
    last = client.submit("add", {"x": 3, "y": 3}, tags=[tag, "other"])
    for task in (first, last):
        client.wait(task.id, timeout=30)

    items = collect(
        client.watch_events(tag=tag, last_event_id=first.last_event_id), "succeeded", last.id
    )
    events = [item for item in items if isinstance(item, Event)]
    assert len(events) == len(items)
    assert {e.task_id for e in events} == {first.id, last.id}
    assert [(e.task_id, e.type) for e in events if e.task_id == first.id] == [
        (first.id, "started"),
        (first.id, "succeeded"),
    ]
    assert [e.type for e in events if e.task_id == last.id] == ["queued", "started", "succeeded"]
    ids = [e.id for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))

    resumed = collect(client.watch_events(tag=tag, last_event_id=ids[1]), "succeeded", last.id)
    assert resumed == events[2:]

    finals = collect(
        client.watch_events(
            types=["succeeded"], task=[first.id, last.id], last_event_id=first.last_event_id
        ),
        "succeeded",
        last.id,
    )
    assert [(e.task_id, e.type) for e in finals if isinstance(e, Event)] == [
        (first.id, "succeeded"),
        (last.id, "succeeded"),
    ]


def test_an_id_that_cannot_be_resumed_from_yields_a_reset_then_goes_on(client: Client) -> None:
    tag = f"client-{uuid.uuid4().hex[:12]}"
    for bad_id in ("not-an-id", "1-0"):
        stream = client.watch_events(tag=tag, last_event_id=bad_id)
        reset = next(stream)
        assert isinstance(reset, Reset), reset
        assert ("malformed" if bad_id == "not-an-id" else "unknown") in reset.reason
        assert reset.id == reset.last_event_id
        task = client.submit("add", {"x": 1, "y": 2}, tags=[tag])
        after = collect(stream, "succeeded", task.id)
        assert [e.type for e in after if isinstance(e, Event)] == ["queued", "started", "succeeded"]
        stream.close()

    # A task's own stream replays such an id's task from its first event: nothing is missed.
    done = client.wait(task.id, timeout=30)
    replayed = list(client.watch(task.id, last_event_id="not-an-id"))
    assert seqs(replayed) == list(range(1, done.seq + 1))
