"""The SSE streams on a live server: format, resume with no gap or duplicate, reset, shutdown."""

import signal
import threading
import time
from typing import Any

import httpx
import pytest

from tests.conftest import StackFactory
from tests.support.processes import ApiServer
from tests.support.sse import FINAL, SSEClient, of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def test_stream_format_headers_retry_and_keepalive(stack: Stack) -> None:
    with stack.events() as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in stream.headers["cache-control"]
        assert stream.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in stream.headers  # asked for gzip, never compressed
        task = stack.submit("add", x=1, y=1)
        messages = stream.wait_for(lambda ms: len(of_task(task["id"])(ms)) == 3)
        wait_until(lambda: stream.comments, 10, message="a keep-alive comment")
        assert stream.retry is not None
        assert stream.retry > 0
    mine = [m for m in messages if m.json().get("task_id") == task["id"]]
    assert [m.event for m in mine] == ["queued", "started", "succeeded"]
    assert all(m.id == m.json()["id"] for m in mine)


def test_resume_mid_task_replays_exactly_the_missed_events(stack: Stack) -> None:
    first = stack.events()
    with first:
        long = stack.submit("long", seconds=4)
        first.wait_for(lambda ms: any(e["type"] == "progress" for e in of_task(long["id"])(ms)))
    seen = list(first.messages)
    last_id = first.last_event_id
    assert last_id is not None
    # While the client is away and while it catches up, other tasks keep writing events.
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            stack.submit("add", x=1, y=2)

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        wait_until(lambda: stack.task(long["id"])["seq"] >= 5, 30, message="missed progress")
        second = stack.events(headers={"Last-Event-ID": last_id})
        with second:
            second.wait_for(
                lambda ms: any(
                    m.event in FINAL for m in ms if m.json().get("task_id") == long["id"]
                ),
                30,
            )
    finally:
        stop.set()
        flooder.join()
    stack.assert_resumed_exactly(seen, second.messages, long["id"])


def test_query_parameter_resumes_a_first_connection_and_the_header_wins(stack: Stack) -> None:
    task = stack.submit("add", x=3, y=4)
    events = stack.events(f"/api/tasks/{task['id']}/events")
    with events:
        events.wait_ended()
    queued, started, _ = events.messages
    with stack.events(f"/api/events?last_event_id={queued.id}") as stream:
        got = stream.wait_for(lambda ms: len(of_task(task["id"])(ms)) == 2)
    assert [e["seq"] for e in of_task(task["id"])(got)] == [2, 3]
    headers = {"Last-Event-ID": str(started.id)}
    with stack.events(f"/api/events?last_event_id={queued.id}", headers) as stream:
        got = stream.wait_for(lambda ms: len(of_task(task["id"])(ms)) >= 1)
    assert [e["seq"] for e in of_task(task["id"])(got)] == [3]


@pytest.mark.parametrize("bad_id", ["garbage", "1-1", "99999999999999-0", "1" * 70])
def test_unusable_last_event_id_gets_reset_then_live_events(stack: Stack, bad_id: str) -> None:
    with stack.events(headers={"Last-Event-ID": bad_id}) as stream:
        if len(bad_id) > 64:
            assert stream.status == 422
            return
        reset = stream.wait_for(lambda ms: len(ms) >= 1)[0]
        assert reset.event == "reset"
        assert reset.json()["last_event_id"] == reset.id
        task = stack.submit("add", x=0, y=0)
        stream.wait_for(lambda ms: len(of_task(task["id"])(ms)) == 3)


def test_trimmed_history_gets_reset(make_stack: StackFactory) -> None:
    private = make_stack(api_env={"EVENTS_MAXLEN": "100"}, worker_env={"EVENTS_MAXLEN": "100"})
    first = private.submit("add", x=1, y=1)
    ids = [private.submit("add", x=i, y=1)["id"] for i in range(50)]
    private.wait_state(ids[-1], "succeeded")
    assert private.redis.client().xlen("ts:events") < 130  # about 150 written, 100 retained
    with private.events(headers={"Last-Event-ID": first["last_event_id"]}) as stream:
        reset = stream.wait_for(lambda ms: len(ms) >= 1)[0]
    assert reset.event == "reset"
    assert "no longer retained" in reset.json()["reason"]
    # The task's own history outlives the global log's retention.
    with private.events(f"/api/tasks/{first['id']}/events") as own:
        own.wait_ended()
    assert [m.event for m in own.messages] == ["queued", "started", "succeeded"]


def test_task_stream_of_a_finished_task_replays_and_ends(stack: Stack) -> None:
    task = stack.submit("add", x=1, y=2)
    stack.wait_state(task["id"], "succeeded")
    with stack.events(f"/api/tasks/{task['id']}/events") as stream:
        stream.wait_ended(10)
    assert [m.json()["seq"] for m in stream.messages] == [1, 2, 3]
    with stack.events("/api/tasks/" + "f" * 32 + "/events") as missing:
        missing.wait_ended(10)
    assert missing.status == 404


def test_one_reader_serves_every_client(stack: Stack) -> None:
    redis = stack.redis.client()

    def api_connections() -> int:
        return sum(1 for c in redis.client_list() if c["name"].startswith("taskstream-"))

    before = api_connections()
    streams = [stack.events().open() for _ in range(50)]
    try:
        task = stack.submit("add", x=5, y=5)
        for stream in streams:
            stream.wait_for(lambda ms: len(of_task(task["id"])(ms)) == 3)
        assert api_connections() <= before + 2  # the pool may open one more for the POST
    finally:
        for stream in streams:
            stream.close()


def test_shutdown_ends_streams_promptly(stack: Stack) -> None:
    api = ApiServer(stack.redis.url, stack.directory, name="api-shutdown").start()
    streams = [SSEClient(f"{api.url}/api/events").open() for _ in range(3)]
    started = time.monotonic()
    api.process.signal(signal.SIGTERM)
    for stream in streams:
        stream.wait_ended(10)
    assert api.process.proc is not None
    # uvicorn exits by re-raising the signal it caught, once its shutdown is complete
    assert api.process.proc.wait(15) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 8
    assert "Application shutdown complete" in api.process.log_path.read_text()
    for stream in streams:
        stream.close()


def test_cors_allows_only_listed_origins(stack: Stack) -> None:
    allowed = "http://localhost:5173"
    preflight: dict[str, Any] = {
        "Origin": allowed,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,idempotency-key",
    }
    ok = stack.http.options("/api/tasks", headers=preflight)
    assert ok.headers["access-control-allow-origin"] == allowed
    other = httpx.get(f"{stack.api.url}/api/task-kinds", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in other.headers
