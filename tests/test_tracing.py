"""Tracing, on real processes: one trace from `POST /api/tasks` through the queue to the
worker's attempt; and with tracing off, no OpenTelemetry loaded by taskstream."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.support.waiting import wait_until

Span = dict[str, Any]
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def spans(path: Path) -> list[Span]:
    """The spans a process wrote to its TRACING_EXPORT_FILE, one JSON object a line."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def one(found: list[Span], name: str) -> Span:
    named = [span for span in found if span["name"] == name]
    assert len(named) == 1, [span["name"] for span in found]
    return named[0]


def of_task(found: list[Span], task_id: str) -> list[Span]:
    return [s for s in found if s["attributes"].get("taskstream.task.id") == task_id]


def ids(span: Span) -> tuple[str, str]:
    """The span's trace id and span id, as W3C `traceparent` writes them."""
    context = span["context"]
    return context["trace_id"].removeprefix("0x"), context["span_id"].removeprefix("0x")


def parent(span: Span) -> str | None:
    value = span["parent_id"]
    return None if value is None else str(value).removeprefix("0x")


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path, Path]]:
    directory = tmp_path_factory.mktemp("tracing")
    api_spans, worker_spans = directory / "api-spans.jsonl", directory / "worker-spans.jsonl"
    stack = Stack(
        directory,
        api_env={"TRACING_ENABLED": "true", "TRACING_EXPORT_FILE": str(api_spans)},
        worker_env={"TRACING_ENABLED": "true", "TRACING_EXPORT_FILE": str(worker_spans)},
    )
    stack.start()
    yield stack, api_spans, worker_spans
    stack.stop()


def test_a_task_is_one_trace_from_its_request_through_the_queue_to_its_attempt(
    traced: tuple[Stack, Path, Path],
) -> None:
    stack, api_spans, worker_spans = traced
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    response = stack.http.post(
        "/api/tasks",
        json={"kind": "long", "params": {"seconds": 1}},
        headers={"traceparent": traceparent, "X-Request-ID": "submit-1"},
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]
    stack.wait_state(task_id, "succeeded")

    (consumer,) = wait_until(
        lambda: of_task(spans(worker_spans), task_id), 30, message="the attempt's span"
    )
    submitted = [s for s in spans(api_spans) if ids(s)[0] == CALLER_TRACE]
    request = one(submitted, "POST /api/tasks")
    producer = one(submitted, "send long")

    # The request continues the caller's trace; the producer is its child.
    assert request["kind"] == "SpanKind.SERVER"
    assert parent(request) == CALLER_SPAN
    assert request["attributes"]["http.route"] == "/api/tasks"
    assert request["attributes"]["http.response.status_code"] == 202
    assert request["attributes"]["taskstream.request_id"] == "submit-1"
    assert producer["kind"] == "SpanKind.PRODUCER"
    assert parent(producer) == ids(request)[1]
    assert producer["attributes"]["messaging.destination.name"] == "taskstream"
    assert [e["name"] for e in producer["events"]] == ["queued"]

    # The worker's span, in another process, is the producer's child in the same trace.
    assert consumer["kind"] == "SpanKind.CONSUMER"
    assert consumer["name"] == "process long"
    assert ids(consumer)[0] == CALLER_TRACE
    assert parent(consumer) == ids(producer)[1]
    assert consumer["attributes"]["taskstream.attempt"] == 1
    assert consumer["resource"]["attributes"]["service.name"] == "taskstream-worker"
    assert request["resource"]["attributes"]["service.name"] == "taskstream-api"

    # The task's events are the attempt's span events, in order, as its own stream has them.
    events = consumer["events"]
    assert [e["name"] for e in events] == ["started", "progress", "progress", "succeeded"]
    assert [e["attributes"]["taskstream.progress.percent"] for e in events[1:3]] == [0.0, 100.0]
    seqs = [e["attributes"]["taskstream.event.seq"] for e in events]
    assert seqs == sorted(seqs)
    assert producer["events"][0]["attributes"]["taskstream.event.seq"] == 1
    assert consumer["attributes"]["taskstream.events.log"] == 1  # counted, not recorded
    assert consumer["status"]["status_code"] == "UNSET"


def test_a_retried_task_stays_in_its_trace_and_a_failure_is_an_error(
    traced: tuple[Stack, Path, Path],
) -> None:
    stack, api_spans, worker_spans = traced
    task = stack.submit("unreliable", failure_rate=1, max_retries=1)
    stack.wait_state(task["id"], "failed")

    def attempts() -> list[Span]:
        found = of_task(spans(worker_spans), task["id"])
        return found if len(found) == 2 else []

    first, second = sorted(
        wait_until(attempts, 30, message="both attempts' spans"),
        key=lambda s: s["attributes"]["taskstream.attempt"],
    )
    producer = one(of_task(spans(api_spans), task["id"]), "send unreliable")
    assert parent(first) == parent(second) == ids(producer)[1]
    assert ids(first)[0] == ids(second)[0] == ids(producer)[0]
    assert [e["name"] for e in first["events"]] == ["started", "retrying"]
    assert first["status"]["status_code"] == "UNSET"  # it asked for another attempt
    assert [e["name"] for e in second["events"]] == ["started", "failed"]
    assert second["status"]["status_code"] == "ERROR"


def test_a_stream_span_ends_when_its_headers_are_out(traced: tuple[Stack, Path, Path]) -> None:
    stack, api_spans, _ = traced
    with stack.events("/api/events?kind=add") as stream:
        (span,) = wait_until(
            lambda: [s for s in spans(api_spans) if s["name"] == "GET /api/events"],
            30,
            message="the stream's span",
        )
        assert not stream.ended.is_set()  # the stream goes on; its span is done
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["status"]["status_code"] == "UNSET"


IMPORTS = """
import json, sys
import celery, fastapi, redis  # what the dependencies load of OpenTelemetry on their own
before = {m for m in sys.modules if m.startswith("opentelemetry")}
from taskstream.api.main import create_app
create_app()
import taskstream.worker.app
added = sorted({m for m in sys.modules if m.startswith("opentelemetry")} - before)
print(json.dumps({"added": added, "tracing": "taskstream.tracing" in sys.modules}))
"""


@pytest.mark.parametrize("enabled", [False, True])
def test_with_tracing_off_building_the_api_and_worker_loads_no_opentelemetry(
    tmp_path: Path, enabled: bool
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # never connected to: nothing here runs a task
        "TRACING_ENABLED": str(enabled).lower(),
        "TRACING_EXPORT_FILE": str(tmp_path / "spans.jsonl"),
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    loaded = json.loads(done.stdout.decode().splitlines()[-1])
    if enabled:  # the check sees what tracing loads
        assert loaded["tracing"]
        assert "opentelemetry.sdk.trace" in loaded["added"]
    else:
        assert loaded == {"added": [], "tracing": False}
