"""A task's output on a real stack: read so far, then exactly the rest; snapshots; a trimmed
history; a flood of output that pushes no other task's event out; the everyone stream's filters;
tags; limits.

One stack of its own serves the module: its API and worker load the test-only `scribe` and `echo`
(`tests.support.extra_kinds`, not imported here: see there), keep 100 events in the event log, in
the output log and in each task's own log (the least they may), and take results of at most
1 KiB. A `scribe` given a `gate` waits for that file: a test holds it running as long as it needs.
"""

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskstream.events.entries import LogEntry, parse_entries
from taskstream.events.ids import EventId, parse_event_id
from tests.support.processes import ApiServer
from tests.support.sse import FINAL, Message, SSEClient, finished, of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until

RETAINED = 100
ENV = {
    "TASK_KIND_MODULES": "tests.support.extra_kinds",
    "EVENTS_MAXLEN": str(RETAINED),
    "TASK_EVENTS_MAXLEN": str(RETAINED),
    "OUTPUT_EVENTS_MAXLEN": str(RETAINED),
    "RESULT_MAX_BYTES": "1024",
}
OUTPUT_TYPES = {"output", "log"}


@pytest.fixture(scope="module")
def scribes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    private = Stack(
        tmp_path_factory.mktemp("output"),
        api_env={**ENV, "KEEPALIVE_SECONDS": "1"},
        worker_env=ENV,
    )
    private.start()
    yield private
    private.stop()


def piece(n: int) -> str:
    """What a scribe writes `n`th (`tests.support.extra_kinds.piece`)."""
    return f"{n}\U0001f600 "


def pieces(start: int, stop: int) -> str:
    return "".join(piece(n) for n in range(start, stop))


def submit(stack: Stack, kind: str, tags: list[str] | None = None, **params: Any) -> str:
    body: dict[str, Any] = {"kind": kind, "params": params}
    if tags is not None:
        body["tags"] = tags
    response = stack.http.post("/api/tasks", json=body)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def output(stack: Stack, task_id: str) -> dict[str, Any]:
    response = stack.http.get(f"/api/tasks/{task_id}/output")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def length(stack: Stack, task_id: str, stream: str = "output") -> int:
    summary = stack.task(task_id)["output"].get(stream)
    return int(summary["length"]) if summary else 0


def task_stream(stack: Stack, task_id: str, query: str = "") -> list[Message]:
    """The task's stream, which the server ends after its final event."""
    with stack.events(f"/api/tasks/{task_id}/events{query}") as stream:
        stream.wait_ended(90)
    assert stream.status == 200
    return list(stream.messages)


def texts(streams: dict[str, Any]) -> dict[str, str]:
    """What `/output` (or a snapshot's `output`) holds of each text stream."""
    return {name: content["text"] for name, content in streams.items()}


def apply(held: dict[str, str], messages: list[Message]) -> dict[str, str]:
    """The text streams after `messages`' `output` events, as a client applies them: each chunk
    must start where the stream held ends, neither past it (a gap) nor before it (a repeat)."""
    held = dict(held)
    for message in messages:
        if message.event == "output":
            chunk = message.json()["output"]
            text = held.get(chunk["stream"], "")
            assert chunk["offset"] == len(text), (chunk, len(text))
            held[chunk["stream"]] = text + chunk["text"]
    return held


def seqs(messages: list[Message]) -> list[int]:
    return [int(m.json()["seq"]) for m in messages]


def entries_after(stack: Stack, position: str) -> list[LogEntry]:
    """Both global logs after `position`, merged by id, read straight from Redis."""
    redis = stack.redis.client()
    found = [
        entry
        for log in ("ts:events", "ts:output-events")
        for entry in parse_entries(redis.xrange(log, f"({position}", "+"))
    ]
    return sorted(found, key=lambda entry: entry.key)


def oldest_output(stack: Stack) -> LogEntry:
    """The oldest entry the output log still holds."""
    return parse_entries(stack.redis.client().xrange("ts:output-events", count=1))[0]


def over(task_id: str) -> Callable[[list[Message]], bool]:
    """A `wait_for` predicate: the task's final event, or a snapshot of it ended, has arrived."""

    def ended(messages: list[Message]) -> bool:
        last = messages[-1] if messages else None
        if last is not None and last.event == "snapshot":
            return last.json()["task"]["state"] in FINAL
        return finished(task_id)(messages)

    return ended


def reset_in(messages: list[Message]) -> bool:
    return any(m.event == "reset" for m in messages)


def more_comments(client: SSEClient) -> Callable[[], bool]:
    seen = len(client.comments)
    return lambda: len(client.comments) > seen


def done_or_ended(
    client: SSEClient, before: list[Message], until: Callable[[list[Message]], bool]
) -> Callable[[list[Message]], bool]:
    return lambda messages: until(before + messages) or client.ended.is_set()


def follow(
    stack: Stack,
    client: SSEClient,
    path: str,
    until: Callable[[list[Message]], bool],
    timeout: float = 60,
) -> list[Message]:
    """What `client` (open on `path`) gets until `until` holds of it, coming back by its last
    event id each time the server ends the stream first, as EventSource does."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while True:
        got = client.wait_for(done_or_ended(client, messages, until), deadline - time.monotonic())
        client.close()
        messages = messages + got
        if until(messages):
            return messages
        last = next(m.id for m in reversed(messages) if m.id)
        client = stack.events(path, {"Last-Event-ID": last}).open()


def key(event_id: str) -> EventId:
    parsed = parse_event_id(event_id)
    assert parsed is not None, event_id
    return parsed


def at_least(count: int) -> Callable[[list[Message]], bool]:
    return lambda messages: len(messages) >= count


def position_after_a_task(stack: Stack) -> str:
    """The id of the final event of a task that has just ended: an event log id, after which the
    tests' own tasks' events follow."""
    task_id = submit(stack, "add", x=0, y=0)
    position: str = stack.wait_state(task_id, "succeeded")["last_event_id"]
    return position


def test_output_so_far_then_the_rest_from_its_last_event_id(scribes: Stack) -> None:
    task_id = submit(scribes, "generate", words=30, rate=10, thinking=True)
    wait_until(lambda: length(scribes, task_id) >= 5 * 2, 60, message="five words written")
    so_far = output(scribes, task_id)
    assert scribes.task(task_id)["state"] == "running"
    assert set(so_far["streams"]) == {"thinking", "output"}
    assert so_far["streams"]["thinking"]["text"] == "Let me think about this. "
    rest = task_stream(scribes, task_id, f"?last_event_id={so_far['last_event_id']}")

    history = task_stream(scribes, task_id)
    ids = [m.id for m in history]
    assert seqs(history) == list(range(1, len(history) + 1))
    assert [m.id for m in rest] == ids[ids.index(so_far["last_event_id"]) + 1 :]
    final = output(scribes, task_id)
    assert apply(texts(so_far["streams"]), rest) == texts(final["streams"])
    assert apply({}, history) == texts(final["streams"])
    assert final["last_event_id"] == ids[-1]
    words = final["streams"]["output"]["text"].split()
    assert len(words) == 30
    assert words[:4] == ["the", "quick", "brown", "fox"]
    task = scribes.task(task_id)
    assert task["state"] == "succeeded"
    assert task["metadata"] == {"stage": "done", "words": 30}
    assert task["output"] == {
        name: {"type": "text", "length": len(text), "truncated": False}
        for name, text in texts(final["streams"]).items()
    }
    assert {"output", "log", "metadata", "progress"} <= {m.event for m in history}
    assert history[-1].event == "succeeded"


def test_a_snapshot_then_the_rest_and_a_finished_tasks_snapshot_ends_its_stream(
    scribes: Stack,
) -> None:
    task_id = submit(scribes, "generate", words=30, rate=10)
    wait_until(lambda: length(scribes, task_id) >= 5 * 2, 60, message="five words written")
    messages = task_stream(scribes, task_id, "?snapshot=1")
    head, rest = messages[0], messages[1:]
    assert head.event == "snapshot"
    snapshot = head.json()
    assert snapshot["task"]["state"] == "running"
    assert head.id == snapshot["task"]["last_event_id"] == snapshot["output"]["last_event_id"]
    assert seqs(rest) == list(
        range(snapshot["task"]["seq"] + 1, snapshot["task"]["seq"] + 1 + len(rest))
    )
    assert rest[-1].event == "succeeded"
    final = output(scribes, task_id)
    assert apply(texts(snapshot["output"]["streams"]), rest) == texts(final["streams"])

    ended = task_stream(scribes, task_id, "?snapshot=1")
    assert [m.event for m in ended] == ["snapshot"]
    assert ended[0].id == final["last_event_id"]
    assert ended[0].json()["task"] == scribes.task(task_id)
    assert ended[0].json()["output"] == final


def test_a_finished_tasks_stream_resumed_from_its_final_event_ends_at_once(
    scribes: Stack,
) -> None:
    """What EventSource does once a finished task's stream (or its final snapshot) has ended: it
    comes back with the last id it got, the final event's. Nothing can follow: the stream ends."""
    task_id = submit(scribes, "echo", text="done")
    final = scribes.wait_state(task_id, "succeeded")["last_event_id"]
    with scribes.events(f"/api/tasks/{task_id}/events", {"Last-Event-ID": final}) as stream:
        try:
            stream.wait_ended(10)
        except TimeoutError:
            pytest.fail(f"still open 10 s after the final event's id {final}: {stream.messages}")
    assert stream.status == 200
    assert stream.messages == []


def test_a_task_whose_own_history_was_trimmed_replays_from_a_snapshot(
    scribes: Stack, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    task_id = submit(scribes, "scribe", writes=20, lines=3 * RETAINED, gate=str(gate), tail=30)
    wait_until(
        lambda: (
            length(scribes, task_id) == len(pieces(0, 20))
            and scribes.task(task_id)["seq"] > 3 * RETAINED + 2
        ),
        60,
        message="every piece and line written",
    )
    first: Any = scribes.redis.client().xrange(f"ts:task:{task_id}:events", count=1)
    assert int(first[0][1]["seq"]) > 1, "its history is trimmed"

    with scribes.events(f"/api/tasks/{task_id}/events") as stream:
        head = stream.wait_for(lambda ms: len(ms) >= 1)[0]
        gate.touch()  # the scribe writes its tail, and ends
        stream.wait_ended(60)
    assert head.event == "snapshot"
    snapshot = head.json()
    assert snapshot["task"]["state"] == "running"
    assert head.id == snapshot["task"]["last_event_id"]
    held = texts(snapshot["output"]["streams"])
    assert held == {"output": pieces(0, 20)}
    counted = snapshot["output"]["streams"]["output"]["length"]
    assert counted == len(pieces(0, 20)) < len(pieces(0, 20).encode("utf-16-le")) // 2
    rest = stream.messages[1:]
    assert seqs(rest) == list(
        range(snapshot["task"]["seq"] + 1, snapshot["task"]["seq"] + 1 + len(rest))
    )
    assert rest[-1].event == "succeeded"
    assert (
        apply(held, rest) == {"output": pieces(0, 50)} == texts(output(scribes, task_id)["streams"])
    )

    # A resume from the snapshot's id, which the task's log holds: exactly what followed it.
    again = task_stream(scribes, task_id, f"?last_event_id={head.id}")
    assert [m.id for m in again] == [m.id for m in rest]
    # From an id it no longer holds: a snapshot, and as the task has ended, nothing after it.
    old = task_stream(scribes, task_id, "?last_event_id=1-0")
    assert [m.event for m in old] == ["snapshot"]
    assert texts(old[0].json()["output"]["streams"]) == {"output": pieces(0, 50)}


def test_a_flood_of_output_pushes_no_other_tasks_event_out_of_the_log(
    scribes: Stack, tmp_path: Path
) -> None:
    position = position_after_a_task(scribes)
    gate = tmp_path / "gate"
    lines = 5 * RETAINED
    added: list[str] = []

    def submit_others() -> None:
        with httpx.Client(base_url=scribes.api.url, timeout=15) as http:
            for n in range(20):
                response = http.post("/api/tasks", json={"kind": "add", "params": {"x": n, "y": 1}})
                assert response.status_code == 202, response.text
                added.append(response.json()["id"])

    flood = submit(scribes, "scribe", writes=200_000, lines=lines, gate=str(gate))
    others = threading.Thread(target=submit_others)
    others.start()
    try:
        wait_until(lambda: length(scribes, flood) > 0, 60, message="the flood to begin")
        # A client that was away since `position` comes back in the middle of the flood.
        with scribes.events(f"/api/events?last_event_id={position}") as resumed:
            others.join()
            resumed.wait_for(lambda ms: all(finished(t)(ms) for t in added), 90)
            gate.touch()
            resumed.wait_for(finished(flood), 90)
    finally:
        gate.touch()
        others.join()

    # Every event the event log holds after `position`, none missed, none repeated, no reset,
    # and none of the output log's.
    received = [m.id for m in resumed.messages]
    assert all(m.event != "reset" for m in resumed.messages)
    assert received == scribes.log_between(f"({position}", str(received[-1]))
    assert not {m.event for m in resumed.messages} & OUTPUT_TYPES
    for task_id in added:
        assert [e["type"] for e in of_task(task_id)(resumed.messages)] == [
            "queued",
            "started",
            "succeeded",
        ]
    assert [e["type"] for e in of_task(flood)(resumed.messages)] == [
        "queued",
        "started",
        "succeeded",
    ]
    # The flood wrote many times what the event log keeps, all of it to the output log.
    redis = scribes.redis.client()
    flood_events = int(scribes.task(flood)["seq"])
    assert flood_events > lines > 4 * RETAINED
    assert redis.xrange("ts:events", position, position), "the position is still retained"
    assert int(redis.xinfo_stream("ts:output-events")["entries-added"]) >= flood_events - 3

    # And the task keeps all it wrote, however little of it the output log keeps.
    assert texts(output(scribes, flood)["streams"]) == {"output": pieces(0, 200_000)}
    assert int(redis.xlen("ts:output-events")) < 2 * RETAINED


def test_the_task_lists_position_resumes_the_stream_while_a_task_writes_output(
    scribes: Stack, tmp_path: Path
) -> None:
    """`GET /api/tasks` answers the position to open `/api/events` from (the web app does): it
    must do so while the newest event is one of the output log's, which that stream leaves out."""
    gate = tmp_path / "gate"
    writer = submit(scribes, "scribe", writes=50, gate=str(gate))
    try:
        wait_until(lambda: length(scribes, writer) == len(pieces(0, 50)), 60, message="written")
        position = scribes.http.get("/api/tasks", params={"limit": 1}).json()["last_event_id"]
        assert scribes.redis.client().xrange("ts:output-events", position, position), (
            "the newest event is the writer's output"
        )
        other = submit(scribes, "add", x=1, y=2)
        with scribes.events(f"/api/events?last_event_id={position}") as stream:
            got = stream.wait_for(
                lambda ms: finished(other)(ms) or any(m.event == "reset" for m in ms)
            )
    finally:
        gate.touch()
    scribes.wait_state(writer, "succeeded")
    assert [m.event for m in got if m.event == "reset"] == [], got[0].data
    assert [e["type"] for e in of_task(other)(got)] == ["queued", "started", "succeeded"]


def test_a_resume_past_what_the_output_log_retains_is_told_not_silent(scribes: Stack) -> None:
    """A client of `/api/events?types=log` away while more log lines were written than the output
    log keeps must hear that some were lost (a `reset`), not get the rest as if none had been."""
    position = position_after_a_task(scribes)
    task_id = submit(scribes, "scribe", lines=3 * RETAINED)
    scribes.wait_state(task_id, "succeeded")
    assert oldest_output(scribes).key > key(position), "the output log lost what followed"
    query = f"types=log&task={task_id}&last_event_id={position}"
    with scribes.events(f"/api/events?{query}") as stream:
        first = stream.wait_for(at_least(1))[0]
    if first.event != "reset":
        assert first.json()["log"]["message"] == "line 0", f"nothing said before {first.data}"


def test_live_clients_hear_of_output_log_events_trimmed_before_they_reached_them(
    scribes: Stack, tmp_path: Path
) -> None:
    """The API stalls (stopped, as a starved or swapped-out process is) while a task writes more
    log lines than the output log keeps: its one reader of the logs comes back to find them
    trimmed. A live client of `types=log` must then get every line or a `reset`, and one of the
    task's own stream every `seq` or a `snapshot`: never the last hundred as if they were all.
    (Each may be ended and come back by its last id, as EventSource does.)"""
    tag = f"t:{uuid.uuid4().hex[:12]}"
    gate = tmp_path / "gate"
    task_id = submit(scribes, "scribe", tags=[tag], gate=str(gate), tail_lines=3 * RETAINED)
    scribes.wait_state(task_id, "running")
    redis = scribes.redis.client()
    everyone = f"/api/events?types=log,succeeded&tag={tag}"
    own = f"/api/tasks/{task_id}/events"
    with scribes.events(everyone) as live, scribes.events(own) as mine:
        for client in (live, mine):  # a keep-alive reaches subscribers only
            wait_until(more_comments(client), 10, message="a keep-alive: subscribed")
        scribes.api.process.signal(signal.SIGSTOP)
        try:
            gate.touch()
            wait_until(lambda: redis.hget(f"ts:task:{task_id}", "state") == "succeeded", 60)
        finally:
            scribes.api.process.signal(signal.SIGCONT)
        ended = over(task_id)
        everyone_got = follow(scribes, live, everyone, lambda ms: ended(ms) or reset_in(ms))
        own_got = follow(scribes, mine, own, ended)
    assert oldest_output(scribes).task_id == task_id
    assert '"tail line 0"' not in oldest_output(scribes).json, "the output log lost the first"

    problems = []
    lines = [m.json()["log"]["message"] for m in everyone_got if m.event == "log"]
    if not reset_in(everyone_got) and lines != [f"tail line {n}" for n in range(3 * RETAINED)]:
        problems.append(f"everyone: {len(lines)} lines, {lines[:2]}..., and nothing said")
    held = 0
    for message in own_got:
        if message.event == "snapshot":
            held = message.json()["task"]["seq"]
        elif message.json()["seq"] != held + 1:
            problems.append(f"own stream: seq {message.json()['seq']} after {held}")
            break
        else:
            held += 1
    assert not problems
    assert held == scribes.task(task_id)["seq"]


def test_a_new_attempt_starts_its_output_afresh(scribes: Stack) -> None:
    task_id = submit(scribes, "scribe", writes=5, tail=2, fail_first=True)
    task = scribes.wait_state(task_id, "succeeded")
    assert task["attempts"] == 2
    assert task["metadata"] is None  # the first attempt's, cleared by the second's start
    assert texts(output(scribes, task_id)["streams"]) == {"output": pieces(0, 7)}
    assert task["output"] == {
        "output": {"type": "text", "length": len(pieces(0, 7)), "truncated": False}
    }
    history = task_stream(scribes, task_id)
    restart = max(i for i, m in enumerate(history) if m.event == "started")
    first, second = history[:restart], history[restart:]
    assert apply({}, first) == {"output": pieces(0, 5), "first": "of the first attempt only"}
    assert "retrying" in [m.event for m in first]
    assert apply({}, second) == {"output": pieces(0, 7)}  # from offset 0 again


def test_a_cancelled_task_keeps_what_it_wrote_before_its_end(scribes: Stack) -> None:
    task_id = submit(scribes, "generate", words=600, rate=50)
    wait_until(lambda: length(scribes, task_id) > 0, 60, message="writing to begin")
    assert scribes.http.post(f"/api/tasks/{task_id}/cancel").status_code == 202
    task = scribes.wait_state(task_id, "cancelled", timeout=30)
    history = task_stream(scribes, task_id)
    assert history[-1].event == "cancelled"
    assert seqs(history) == list(range(1, len(history) + 1))
    written = apply({}, history)
    assert written == texts(output(scribes, task_id)["streams"])
    assert 0 < len(written["output"].split()) < 600
    assert task["output"]["output"]["length"] == len(written["output"])


def test_the_everyone_stream_carries_what_its_filters_ask_for(scribes: Stack) -> None:
    tag = f"t:{uuid.uuid4().hex[:12]}"
    position = position_after_a_task(scribes)
    tagged: set[str] = set()
    echoes: set[str] = set()
    wanted: dict[str, Callable[[LogEntry], bool]] = {
        "": lambda e: e.type not in OUTPUT_TYPES,
        "types=output,log": lambda e: e.type in OUTPUT_TYPES,
        "types=queued,succeeded": lambda e: e.type in {"queued", "succeeded"},
        f"tag={tag}": lambda e: e.type not in OUTPUT_TYPES and e.task_id in tagged,
        "kind=echo": lambda e: e.type not in OUTPUT_TYPES and e.task_id in echoes,
        f"types=output&kind=echo&tag={tag}": lambda e: (
            e.type == "output" and e.task_id in tagged & echoes
        ),
    }
    live = {
        query: scribes.events(f"/api/events?{query}&last_event_id={position}").open()
        for query in wanted
    }
    try:
        echo = submit(scribes, "echo", tags=[tag, "x"], text="tagged echo")
        add = submit(scribes, "add", tags=[tag], x=1, y=1)
        plain = submit(scribes, "echo", text="an echo of no tag")
        other = submit(scribes, "scribe", tags=["other"], writes=3, lines=2)
        tagged |= {echo, add}
        echoes |= {echo, plain}
        for task_id in (echo, add, plain, other):
            scribes.wait_state(task_id, "succeeded")
        wanted[f"task={plain},{other}"] = lambda e: (
            e.type not in OUTPUT_TYPES and e.task_id in {plain, other}
        )
        entries = entries_after(scribes, position)
        assert {e.task_id for e in entries} == {echo, add, plain, other}
        for query, admits in wanted.items():
            expected = [e.id for e in entries if admits(e)]
            assert expected, query
            # Live (for those opened before), and caught up from the log.
            streams = [live[query]] if query in live else []
            streams.append(scribes.events(f"/api/events?{query}&last_event_id={position}").open())
            for stream in streams:
                got = stream.wait_for(at_least(len(expected)))
                assert [m.id for m in got] == expected, query
            streams[-1].close()
    finally:
        for stream in live.values():
            stream.close()

    assert scribes.task(echo)["tags"] == [tag, "x"]
    assert scribes.task(plain)["tags"] == []
    queued = next(m.json() for m in live[""].messages if m.event == "queued")
    assert queued["task_id"] == echo
    assert queued["tags"] == [tag, "x"]

    def listed(**query: str) -> list[str]:
        response = scribes.http.get("/api/tasks", params=query)
        assert response.status_code == 200, response.text
        return [task["id"] for task in response.json()["items"]]

    assert listed(tag=tag) == [add, echo]  # newest first
    assert listed(tag=tag, kind="echo") == [echo]
    assert listed(tag=tag, state="succeeded") == [add, echo]
    assert listed(tag=tag, state="running") == []
    assert listed(tag="other") == [other]


def refused(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("types=bogus", "query.types"),
        ("types=output,nope", "query.types"),
        ("types=", "query.types"),
        ("types=,", "query.types"),
        ("task=xyz", "query.task"),
        ("task=" + "a" * 31, "query.task"),
        ("task=" + ",".join(f"{n:032x}" for n in range(51)), "query.task"),
        ("tag=two%20words", "query.tag"),
        ("tag=" + "t" * 65, "query.tag"),
    ],
)
def test_a_bad_filter_is_refused_naming_its_query_field(
    scribes: Stack, query: str, field: str
) -> None:
    assert refused(scribes.http.get(f"/api/events?{query}")) == [field]
    if field == "query.tag":
        assert refused(scribes.http.get(f"/api/tasks?{query}")) == [field]


def test_tags_at_submission_at_most_eight_of_a_few_characters(scribes: Stack) -> None:
    def post(tags: Any) -> httpx.Response:
        return scribes.http.post(
            "/api/tasks", json={"kind": "add", "params": {"x": 1, "y": 1}, "tags": tags}
        )

    eight = [f"tag.{n}" for n in range(8)]
    accepted = post(eight)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["tags"] == eight
    assert refused(post([*eight, "tag.8"])) == ["tags"]
    assert refused(post(["no spaces"]))[0].startswith("tags")
    assert refused(post(["x" * 65]))[0].startswith("tags")
    twice = post(["same", "same", "other"])
    assert twice.status_code == 202
    assert twice.json()["tags"] == ["same", "other"]


def test_a_result_past_its_limit_fails_the_task_naming_the_size(scribes: Stack) -> None:
    task_id = submit(scribes, "scribe", writes=3, result_bytes=2_000)
    task = scribes.wait_state(task_id, "failed")
    assert task["error"]["type"] == "ResultTooLarge"
    assert "2002 bytes" in task["error"]["message"]
    assert "1024" in task["error"]["message"]
    assert task["result"] is None
    # What the attempt wrote before its outcome is kept, and came before it.
    assert texts(output(scribes, task_id)["streams"]) == {"output": pieces(0, 3)}
    assert [m.event for m in task_stream(scribes, task_id)][-2:] == ["output", "failed"]


def test_another_owners_output_is_not_found(scribes: Stack) -> None:
    keys = {"key-alice-0123456789": "alice", "key-bob-0123456789": "bob"}
    env = {**ENV, "API_KEYS": json.dumps(keys), "SESSION_SECRET": "s" * 40}
    api = ApiServer(scribes.redis.url, scribes.directory, env=env, name="api-keys").start()
    alice = {"Authorization": "Bearer key-alice-0123456789"}
    bob = {"Authorization": "Bearer key-bob-0123456789"}
    try:
        with httpx.Client(base_url=api.url, timeout=15) as http:
            body = {"kind": "echo", "params": {"text": "alice's"}}
            task_id = http.post("/api/tasks", json=body, headers=alice).json()["id"]
            wait_until(
                lambda: http.get(f"/api/tasks/{task_id}", headers=alice).json()["state"] in FINAL,
                60,
                message="alice's task to end",
            )
            mine = http.get(f"/api/tasks/{task_id}/output", headers=alice)
            assert mine.status_code == 200
            assert texts(mine.json()["streams"]) == {"output": "alice's"}
            theirs = http.get(f"/api/tasks/{task_id}/output", headers=bob)
            assert theirs.status_code == 404
            assert theirs.json()["type"] == "/problems/not_found"
            assert http.get(f"/api/tasks/{task_id}/output").status_code == 401
            assert http.get(f"/api/tasks/{'f' * 32}/output", headers=alice).status_code == 404
    finally:
        api.stop()
