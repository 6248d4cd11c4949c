"""The context a kind writes through, against a real Redis: its writes are buffered and sent as few
events that add up to exactly what was written, its limits cut what is too much, a kind's mistakes
are told at the call that makes them, and a cancellation is noticed by the next write.

Each test starts an attempt with the store first (a task queued, then begun), as the runner does,
and reads what the context wrote from the task's own log and hash.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from taskstream.events.connection import async_redis
from taskstream.events.entries import parse_entries
from taskstream.events.models import (
    Event,
    EventDraft,
    EventType,
    LogLine,
    OutputChunk,
    OutputStream,
    Progress,
    TaskOutput,
)
from taskstream.events.store import EventStore, SyncEventStore
from taskstream.kinds import AttemptEnded, OutputLimitExceeded, TaskCancelled
from taskstream.settings import Settings
from taskstream.worker.context import OutputLimits, WorkerContext
from tests.events.test_scripts import begin, finish, queue
from tests.support.loops import run_apart

FLUSH = 0.02  # OUTPUT_FLUSH_MS, as the worker runs it


def attempt(store: SyncEventStore, limits: OutputLimits | None = None) -> tuple[str, WorkerContext]:
    """A new task, and the context of its first attempt, begun in the store."""
    task_id = queue(store)
    begun = begin(store, task_id)
    ctx = WorkerContext(store, task_id, "add", begun.attempt, limits=limits or OutputLimits())
    return task_id, ctx


def history(client: "redis.Redis", store: SyncEventStore, task_id: str) -> list[Event]:
    """The task's own log, each event as a client reads it."""
    entries = parse_entries(client.xrange(store.keys.task_events(task_id)))
    events = [entry.event() for entry in entries]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    return events


def chunks(events: list[Event], stream: str = "output") -> list[OutputChunk]:
    return [e.output for e in events if e.output is not None and e.output.stream == stream]


def text_of(found: list[OutputChunk]) -> str:
    """The chunks' text, checking that each starts where the ones before it ended."""
    text = ""
    for chunk in found:
        assert chunk.offset == len(text), (chunk.offset, len(text))
        assert chunk.text is not None
        text += chunk.text
    return text


def items_of(found: list[OutputChunk]) -> list[Any]:
    items: list[Any] = []
    for chunk in found:
        assert chunk.offset == len(items), (chunk.offset, len(items))
        assert chunk.items is not None
        items += chunk.items
    return items


def at_most_one_a_flush(count: int, seconds: float, flush: float = FLUSH) -> bool:
    """Whether `count` events of one stream over `seconds` came at most one a flush interval
    (flushes start at least `flush` apart), and one more as the context closed."""
    return count <= seconds / flush + 2


def write_until_stopped(ctx: WorkerContext, text: str, seconds: float = 10) -> None:
    """Writes `text` again and again, as a busy kind does, until a write raises (or `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.write(text)


def read_output(settings: Settings, task_id: str) -> TaskOutput:
    """`/api/tasks/{id}/output`'s answer, as the API's store reads it."""

    async def read() -> TaskOutput:
        client = async_redis(settings)
        try:
            found = await EventStore(client, settings).read_output(task_id)
        finally:
            await client.aclose()
        assert found is not None
        return found[1]

    return run_apart(read())


def request_cancel(settings: Settings, task_id: str) -> str:
    """What `POST /api/tasks/{id}/cancel` asks of a running task, through the API's store."""

    async def cancel() -> str:
        client = async_redis(settings)
        try:
            return await EventStore(client, settings).request_cancel(task_id)
        finally:
            await client.aclose()

    return run_apart(cancel())


def test_ten_thousand_writes_become_a_few_events_that_add_up_exactly(
    store: SyncEventStore, client: "redis.Redis", settings: Settings
) -> None:
    task_id, ctx = attempt(store)
    pieces = [f"{n}\U0001f600é " for n in range(10_000)]  # 1, 2 and 4 bytes a code point
    began = time.monotonic()
    for piece in pieces:
        ctx.write(piece)
    ctx.close()
    seconds = time.monotonic() - began

    events = history(client, store, task_id)
    found = chunks(events)
    text = text_of(found)
    assert text == "".join(pieces)
    assert at_most_one_a_flush(len(found), seconds), (len(found), seconds)
    assert len(found) <= 1_000  # ten writes and more an event, however slow the machine
    assert all(e.type is EventType.output and e.state == "running" for e in events[2:])
    # What the task holds is what the events add up to, its length in code points.
    task = store.get_task(task_id)
    assert task is not None
    assert task.output == {"output": OutputStream(type="text", length=len(text))}
    assert task.last_event_id == events[-1].id
    answer = read_output(settings, task_id)
    assert answer.last_event_id == events[-1].id
    assert answer.streams["output"].text == text
    assert answer.streams["output"].length == len(text) < len(text.encode())


def test_streams_written_from_several_threads_each_add_up_in_order(
    store: SyncEventStore, client: "redis.Redis", settings: Settings
) -> None:
    task_id, ctx = attempt(store)
    items: list[dict[str, list[Any]]] = [{"seen": [n]} for n in range(2_000)]

    def write_text() -> None:
        for n in range(2_000):
            ctx.write(f"<{n}>")
            if n % 4 == 0:
                ctx.write(f"({n})", stream="notes")

    def write_items() -> None:
        for item in items:
            ctx.write_json(item, stream="rows")
            item["seen"].append("changed after it was written")  # what was written stays

    threads = [threading.Thread(target=write_text), threading.Thread(target=write_items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ctx.write_json(None, stream="rows")
    ctx.write_json([1.5, "two", {"three": True}], stream="rows")
    ctx.close()

    events = history(client, store, task_id)
    expected_rows: list[Any] = [{"seen": [n]} for n in range(2_000)]
    expected_rows += [None, [1.5, "two", {"three": True}]]
    assert text_of(chunks(events, "output")) == "".join(f"<{n}>" for n in range(2_000))
    assert text_of(chunks(events, "notes")) == "".join(f"({n})" for n in range(0, 2_000, 4))
    assert items_of(chunks(events, "rows")) == expected_rows
    answer = read_output(settings, task_id)
    assert answer.streams["rows"].items == expected_rows
    assert answer.streams["rows"].text is None
    task = store.get_task(task_id)
    assert task is not None
    assert task.output == {
        "output": OutputStream(type="text", length=len(answer.streams["output"].text or "")),
        "notes": OutputStream(type="text", length=len(answer.streams["notes"].text or "")),
        "rows": OutputStream(type="json", length=len(expected_rows)),
    }


def test_progress_and_metadata_coalesce_and_the_last_is_written_before_close_returns(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    for _ in range(10):  # a race with the flusher would show in some round
        task_id, ctx = attempt(store)
        ctx.set_metadata(stage="counting")
        began = time.monotonic()
        for n in range(1, 501):
            ctx.progress(n, 500, f"step {n}")
            ctx.set_metadata(step=n)
        ctx.close()
        seconds = time.monotonic() - began
        task = store.get_task(task_id)
        assert task is not None
        assert task.progress == Progress.of(500, 500, "step 500")
        assert task.metadata == {"stage": "counting", "step": 500}

        events = history(client, store, task_id)
        progress = [e.progress for e in events if e.progress is not None]
        currents = [p.current for p in progress]
        assert currents == sorted(set(currents))
        assert currents[-1] == 500
        assert at_most_one_a_flush(len(progress), seconds), (len(progress), seconds)
        metadata = [e.metadata for e in events if e.type is EventType.metadata]
        assert metadata[-1] == {"stage": "counting", "step": 500}  # the whole object, merged
        assert all(m is not None and m["stage"] == "counting" for m in metadata)
        assert at_most_one_a_flush(len(metadata), seconds), (len(metadata), seconds)


def test_output_past_the_limit_is_cut_once_marked_truncated_and_the_task_goes_on(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id, ctx = attempt(store, OutputLimits(max_bytes=1_001))
    ctx.write("ab" * 200)  # 400 bytes
    ctx.write_json([1, 2], stream="rows")  # 6: "[1,2]" and its line break
    ctx.write("é" * 600)  # 1,200 bytes, of which 595 fit: 297 characters and half of one
    ctx.write("dropped")
    ctx.write_json("dropped", stream="rows")
    ctx.write("dropped", stream="late")
    ctx.progress(1, 1, "still going")
    ctx.close()

    events = history(client, store, task_id)
    output, rows = chunks(events, "output"), chunks(events, "rows")
    assert text_of(output) == "ab" * 200 + "é" * 297
    assert items_of(rows) == [[1, 2]]
    marked = [c for c in output + rows if c.truncated]
    assert marked == [output[-1]]
    assert not chunks(events, "late")
    assert events[-1].progress == Progress.of(1, 1, "still going")
    task = store.get_task(task_id)
    assert task is not None
    assert task.output == {
        "output": OutputStream(type="text", length=697, truncated=True),
        "rows": OutputStream(type="json", length=1),
    }

    # An item that does not fit is dropped whole, and its stream's chunk says so.
    task_id, ctx = attempt(store, OutputLimits(max_bytes=1_024))
    ctx.write("x" * 1_000)
    ctx.write_json({"too": "x" * 100}, stream="rows")
    ctx.write("dropped")
    ctx.close()
    events = history(client, store, task_id)
    assert text_of(chunks(events, "output")) == "x" * 1_000
    assert not any(c.truncated for c in chunks(events, "output"))
    assert [(c.offset, c.items, c.truncated) for c in chunks(events, "rows")] == [(0, [], True)]


def test_log_lines_are_cut_and_the_line_past_the_count_says_the_rest_are_dropped(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id, ctx = attempt(store, OutputLimits(log_line_max_chars=80, log_max_lines=10))
    ctx.log("x" * 200, level="warning")
    for n in range(1, 15):
        ctx.log(f"line {n}", level="debug")
    with pytest.raises(ValueError, match="'loud'"):
        ctx.log("a level no one knows", level="loud")
    ctx.close()

    lines = [e.log for e in history(client, store, task_id) if e.log is not None]
    assert lines[0] == LogLine(level="warning", message="x" * 79 + "…")
    assert lines[1:10] == [LogLine(level="debug", message=f"line {n}") for n in range(1, 10)]
    assert len(lines) == 11
    assert lines[10].level == "warning"
    assert "10 lines" in lines[10].message
    assert "dropped" in lines[10].message


def test_metadata_past_its_limit_raises_and_leaves_what_was_set(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id, ctx = attempt(store, OutputLimits(metadata_max_bytes=256))
    ctx.set_metadata(stage="one")
    with pytest.raises(OutputLimitExceeded, match="256"):
        ctx.set_metadata(blob="x" * 300)
    ctx.set_metadata(stage="two", n=2)
    ctx.close()
    metadata = [e.metadata for e in history(client, store, task_id) if e.type is EventType.metadata]
    assert metadata[-1] == {"stage": "two", "n": 2}
    assert all(m is not None and "blob" not in m for m in metadata)
    task = store.get_task(task_id)
    assert task is not None
    assert task.metadata == {"stage": "two", "n": 2}


@pytest.mark.parametrize(
    ("call", "value", "named"),
    [
        ("write_json", float("nan"), "nan"),
        ("write_json", float("inf"), "inf"),
        ("write_json", object(), "object"),
        ("write_json", {"a": {1, 2}}, "set"),
        ("set_metadata", float("nan"), "nan"),
        ("set_metadata", object(), "object"),
    ],
    ids=["nan", "infinity", "an object", "a set inside", "nan metadata", "an object metadata"],
)
def test_a_value_that_is_not_json_raises_type_error_naming_it(
    store: SyncEventStore, client: "redis.Redis", call: str, value: Any, named: str
) -> None:
    task_id, ctx = attempt(store)

    def act() -> None:
        if call == "write_json":
            ctx.write_json(value, stream="rows")
        else:
            ctx.set_metadata(field=value)

    with pytest.raises(TypeError) as raised:
        act()
    assert named in str(raised.value).lower(), str(raised.value)
    ctx.close()
    assert [e.type for e in history(client, store, task_id)] == ["queued", "started"]


def test_a_kinds_mistakes_are_told_at_the_call_that_makes_them(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id, ctx = attempt(store, OutputLimits(max_streams=3))
    for name in ("Output", "1st", "with-dash", "x" * 33, "", "spaced out"):
        with pytest.raises(ValueError, match="stream name"):
            ctx.write("text", stream=name)
    ctx.write("text")
    ctx.write_json({"a": 1}, stream="rows")
    with pytest.raises(TypeError, match="'output'"):
        ctx.write_json({"a": 1})  # `output` holds text
    with pytest.raises(TypeError, match="'rows'"):
        ctx.write("text", stream="rows")  # `rows` holds items
    with pytest.raises(TypeError, match="bytes"):
        ctx.write(b"bytes")  # type: ignore[arg-type]
    ctx.write("more", stream="third")
    with pytest.raises(OutputLimitExceeded, match="3 output streams"):
        ctx.write("one too many", stream="fourth")
    ctx.close()
    events = history(client, store, task_id)
    assert text_of(chunks(events, "output")) == "text"
    assert items_of(chunks(events, "rows")) == [{"a": 1}]
    # After close (a thread the kind left behind): every write raises, and nothing is written.
    late_calls: list[Callable[[], None]] = [
        lambda: ctx.write("late"),
        lambda: ctx.write_json(1, stream="rows"),
        lambda: ctx.log("late"),
        lambda: ctx.progress(1, 1),
        lambda: ctx.set_metadata(late=True),
    ]
    for late in late_calls:
        with pytest.raises(AttemptEnded):
            late()
    assert history(client, store, task_id) == events


def test_a_cancel_request_is_noticed_by_a_write_within_a_second(
    store: SyncEventStore, client: "redis.Redis", settings: Settings
) -> None:
    task_id, ctx = attempt(store)
    ctx.write("before ")
    assert request_cancel(settings, task_id) == "running"
    asked = time.monotonic()
    with pytest.raises(TaskCancelled):
        write_until_stopped(ctx, "x")
    assert time.monotonic() - asked < 1.0
    with pytest.raises(TaskCancelled):
        ctx.progress(1, 2)
    ctx.close()  # what was written before goes out still, for the outcome to follow
    text = text_of(chunks(history(client, store, task_id)))
    assert text.startswith("before ")
    assert set(text[len("before ") :]) <= {"x"}


def test_a_task_ended_elsewhere_stops_the_kind_and_close_still_returns(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id, ctx = attempt(store)
    ctx.write("first ")
    ctx.flush()
    finish(store, task_id, EventType.failed)  # as recovery records a lost attempt
    with pytest.raises(TaskCancelled):
        write_until_stopped(ctx, "refused ")
    ctx.close()
    events = history(client, store, task_id)
    assert [e.type for e in events] == ["queued", "started", "output", "failed"]
    assert text_of(chunks(events)) == "first "


def test_a_final_event_follows_everything_close_sent(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id, ctx = attempt(store)
    for n in range(2_000):
        ctx.write(f"{n} ")
        if n % 500 == 0:
            ctx.log(f"line {n}")
    ctx.close()
    store.append(EventDraft(task_id=task_id, kind="add", type=EventType.succeeded, result=1))
    events = history(client, store, task_id)
    assert events[-1].type is EventType.succeeded
    assert text_of(chunks(events)) == "".join(f"{n} " for n in range(2_000))
    assert len([e for e in events if e.log is not None]) == 4
