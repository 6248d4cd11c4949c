"""The sync client on a live stack: submit, read, list by pages, cancel, output and wait."""

import uuid

import httpx
import pytest

from taskstream.client import Client, Event, Snapshot, TaskState, WaitTimeout
from taskstream.kinds.demo import AddParams
from tests.client.conftest import FAST
from tests.support.stack import Stack


def unique_tag() -> str:
    return f"client-{uuid.uuid4().hex[:12]}"


def test_submit_get_and_wait_return_the_apis_task_models(client: Client) -> None:
    tag = unique_tag()
    task = client.submit("add", {"x": 2, "y": 3}, tags=[tag])
    assert task.kind == "add"
    assert task.state is TaskState.queued
    assert task.tags == [tag]
    assert task.watch_token is None
    assert client.get(task.id).id == task.id
    done = client.wait(task.id, timeout=30)
    assert done.state is TaskState.succeeded
    assert done.result == 5
    assert client.wait(task.id, timeout=30) == client.get(task.id)  # finished: at once


def test_params_may_be_the_kinds_model_and_an_idempotency_key_repeats_the_task(
    client: Client,
) -> None:
    key = f"client-{uuid.uuid4().hex}"
    first = client.submit("add", AddParams(x=1, y=1), idempotency_key=key)
    again = client.submit("add", AddParams(x=1, y=1), idempotency_key=key)
    assert again.id == first.id
    assert first.params == {"x": 1, "y": 1}
    assert client.submit("unreliable").params == {"failure_rate": 0.5, "max_retries": 3}


def test_list_iterates_every_page_by_its_cursor(stack: Stack) -> None:
    tag = unique_tag()
    asked: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [asked.append]})
    with http:
        with Client(stack.api.url, http=http, reconnect=FAST) as client:
            submitted = [client.submit("add", {"x": n, "y": 0}, tags=[tag]).id for n in range(5)]
            listed = [task.id for task in client.list(tag=tag, page_size=2)]
            pages = [r for r in asked if r.url.path == "/api/tasks" and r.method == "GET"]
            for task_id in submitted:
                client.wait(task_id, timeout=30)
            succeeded = list(client.list(tag=tag, state="succeeded", page_size=200))
            assert list(client.list(tag=tag, state=TaskState.failed)) == []
        assert not http.is_closed  # passed in: the caller's to close
    assert listed == submitted[::-1]  # newest first
    assert len(pages) >= 3
    assert [p.url.params["limit"] for p in pages] == ["2"] * len(pages)
    assert "cursor" not in pages[0].url.params
    assert all("cursor" in page.url.params for page in pages[1:])
    assert {task.id for task in succeeded} == set(submitted)


def test_cancel_stops_a_running_task_and_wait_sees_it_end(client: Client) -> None:
    task = client.submit("long", {"seconds": 30})
    with pytest.raises(WaitTimeout) as timed_out:
        client.wait(task.id, timeout=0.5)
    assert isinstance(timed_out.value, TimeoutError)
    for item in client.watch(task.id):  # until it runs
        if isinstance(item, Event) and item.type == "started":
            break
    asked = client.cancel(task.id)
    assert asked.cancel_requested or asked.state is TaskState.cancelled
    assert client.wait(task.id, timeout=30).state is TaskState.cancelled


def test_output_then_watch_from_its_position_gives_exactly_the_rest(client: Client) -> None:
    task = client.submit("generate", {"words": 40, "rate": 40})
    for item in client.watch(task.id):
        if isinstance(item, Event) and item.type == "output":
            break
    so_far = client.output(task.id)
    rest = [e for e in client.watch(task.id, last_event_id=so_far.last_event_id)]
    history = [e for e in client.watch(task.id)]
    ids = [e.id for e in history]
    assert rest == history[ids.index(so_far.last_event_id) + 1 :]
    text = "".join(
        e.output.text or "" for e in rest if isinstance(e, Event) and e.output is not None
    )
    before = so_far.streams["output"].text or ""
    assert before + text == client.output(task.id).streams["output"].text
    assert isinstance(rest[-1], Event)
    assert rest[-1].type == "succeeded"
    # From the final event there is nothing more: the watch ends at once.
    assert list(client.watch(task.id, last_event_id=rest[-1].id)) == []
    [snapshot] = client.watch(task.id, snapshot=True)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.task == client.get(task.id)
    assert snapshot.output == client.output(task.id)
