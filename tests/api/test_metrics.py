"""Prometheus metrics at /metrics: clients come and go, submissions and durations are counted;
the process, the queues, the workers, HTTP requests and finished tasks are measured; and the
dashboard queries nothing that is not exposed."""

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ApiServer, RedisServer
from tests.support.sse import of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker/monitoring/grafana/dashboards/taskstream.json"
# A queue no worker consumes: the `long` tasks of the stack below wait there.
PARKED = "parked"


def scrape(stack: Stack) -> dict[str, float]:
    response = stack.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def scrape_when(
    stack: Stack, condition: Callable[[dict[str, float]], bool], what: str
) -> dict[str, float]:
    """The first scrape that meets `condition`."""

    def met() -> dict[str, float] | None:
        metrics = scrape(stack)
        return metrics if condition(metrics) else None

    metrics = wait_until(met, 30, message=what)
    assert metrics is not None
    return metrics


def sample(name: str, **labels: str) -> str:
    """A sample's key in `scrape`, labels in the order they are declared."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


@pytest.fixture(scope="module")
def parked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose `long` tasks go to a queue that its one worker does not consume."""
    private = Stack(
        tmp_path_factory.mktemp("metrics"), api_env={"TASK_QUEUES": json.dumps({"long": PARKED})}
    )
    private.start()
    yield private
    private.stop()


def test_metrics_follow_clients_submissions_and_outcomes(stack: Stack) -> None:
    before = scrape(stack)
    streams = [stack.events().open() for _ in range(3)]
    try:
        wait_until(
            lambda: scrape(stack)["taskstream_sse_clients"] == before["taskstream_sse_clients"] + 3,
            20,
            message="three more clients counted",
        )
        task = stack.submit("add", x=1, y=1)
        for stream in streams:
            stream.wait_for(lambda ms: len(of_task(task["id"])(ms)) == 3)
    finally:
        for stream in streams:
            stream.close()

    # Clients that go away free what they held.
    after = scrape_when(
        stack,
        lambda m: m["taskstream_sse_clients"] == before["taskstream_sse_clients"],
        "the clients to be released",
    )
    key = 'taskstream_submissions_total{kind="add"}'
    assert after[key] == before.get(key, 0) + 1
    count = 'taskstream_task_seconds_count{kind="add",state="succeeded"}'
    assert after[count] >= before.get(count, 0) + 1
    delivered = (
        after["taskstream_events_delivered_total"] - before["taskstream_events_delivered_total"]
    )
    assert delivered >= 9  # three events to each of three clients
    assert after["taskstream_events_published_total"] > before["taskstream_events_published_total"]
    assert 0 <= after["taskstream_reader_lag_seconds"] < 60


def test_process_and_garbage_collector_metrics_describe_the_api_process(stack: Stack) -> None:
    metrics = scrape(stack)

    assert metrics["process_resident_memory_bytes"] > 10 * 2**20
    assert metrics["process_cpu_seconds_total"] > 0
    assert 0 < metrics["process_open_fds"] < metrics["process_max_fds"]
    assert time.time() - 3600 < metrics["process_start_time_seconds"] <= time.time()
    assert metrics[sample("python_gc_collections_total", generation="0")] >= 0
    assert any(name.startswith("python_info{") for name in metrics)


def test_queue_depth_counts_waiting_messages_and_live_workers_the_heartbeats(
    parked: Stack,
) -> None:
    before = scrape(parked)
    depth = sample("taskstream_queue_depth", queue=PARKED)
    for _ in range(2):
        parked.submit("long", seconds=1)

    after = scrape(parked)  # read from Redis by this scrape: no wait needed
    assert after[depth] == before[depth] + 2
    consumed = sample("taskstream_queue_depth", queue="taskstream")
    assert consumed in after
    scrape_when(parked, lambda m: m[consumed] == 0, "the worker's queue drained")
    assert after["taskstream_live_workers"] == 1
    assert after["taskstream_redis_up"] == 1


def test_http_requests_are_counted_by_route_template_and_status(parked: Stack) -> None:
    first, second = (parked.submit("add", x=1, y=n) for n in range(2))
    before = scrape(parked)
    for task in (first, second):
        assert parked.http.get(f"/api/tasks/{task['id']}").status_code == 200
    assert parked.http.get(f"/api/tasks/{uuid.uuid4().hex}").status_code == 404
    assert parked.http.get(f"/no/such/{uuid.uuid4().hex}").status_code == 404

    after = scrape(parked)

    def grew(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    one_task = {"method": "GET", "route": "/api/tasks/{task_id}"}
    requests = "taskstream_http_requests_total"
    assert grew(sample(requests, **one_task, status="200")) == 2
    assert grew(sample(requests, **one_task, status="404")) == 1
    assert grew(sample(requests, method="GET", route="unmatched", status="404")) == 1
    assert after[sample(requests, method="POST", route="/api/tasks", status="202")] >= 2
    assert grew(sample("taskstream_http_request_duration_seconds_count", **one_task)) == 3
    assert 0 < grew(sample("taskstream_http_request_duration_seconds_sum", **one_task)) < 30
    assert not [key for key in after if first["id"] in key or "/no/such" in key]


def test_event_streams_are_counted_once_when_they_start_and_never_timed(parked: Stack) -> None:
    waiting = parked.submit("long", seconds=1)  # parked: its stream stays open
    route = "/api/tasks/{task_id}/events"
    opened = sample("taskstream_http_requests_total", method="GET", route=route, status="200")
    timed = sample("taskstream_http_request_duration_seconds_count", method="GET", route=route)
    before = scrape(parked)

    with parked.events(f"/api/tasks/{waiting['id']}/events") as stream:
        stream.wait_for(lambda ms: len(ms) >= 1)
        during = scrape(parked)
        assert during[opened] == before.get(opened, 0) + 1
        assert during["taskstream_sse_clients"] == before["taskstream_sse_clients"] + 1

    after = scrape_when(
        parked,
        lambda m: m["taskstream_sse_clients"] == before["taskstream_sse_clients"],
        "the stream to be released",
    )
    assert after[opened] == before.get(opened, 0) + 1  # not again when it ends
    assert timed not in after


def test_finished_tasks_are_counted_by_kind_and_final_state(parked: Stack) -> None:
    finished = "taskstream_tasks_finished_total"
    expected = {("long", "cancelled"), ("add", "succeeded"), ("unreliable", "failed")}
    keys = [sample(finished, kind=kind, state=state) for kind, state in expected]
    before = scrape(parked)
    waiting = parked.submit("long", seconds=1)
    assert parked.http.post(f"/api/tasks/{waiting['id']}/cancel").status_code == 202
    done = parked.submit("add", x=2, y=3)
    failing = parked.submit("unreliable", failure_rate=1, max_retries=0)
    parked.wait_state(done["id"], "succeeded")
    parked.wait_state(failing["id"], "failed")

    # Counted as the API's reader sees the final events.
    metrics = scrape_when(
        parked,
        lambda m: all(m.get(key, 0) > before.get(key, 0) for key in keys),
        "every final state counted",
    )
    for kind, state in expected:
        key = sample(finished, kind=kind, state=state)
        timed = sample("taskstream_task_seconds_count", kind=kind, state=state)
        assert metrics[key] == before.get(key, 0) + 1
        assert metrics[key] == metrics[timed]  # counted and timed alike
    assert sample(finished, kind="add", state="failed") not in metrics


def test_metrics_need_no_key_when_the_api_requires_keys(tmp_path: Path) -> None:
    # As compose runs it: Prometheus scrapes with no credentials.
    redis_server = RedisServer(tmp_path / "redis").start()
    keys = {"key-alice-0123456789": "alice"}
    api = ApiServer(
        redis_server.url, tmp_path, env={"API_KEYS": json.dumps(keys), "SESSION_SECRET": "s" * 40}
    )
    try:
        api.start()
        assert httpx.get(f"{api.url}/api/tasks").status_code == 401
        response = httpx.get(f"{api.url}/metrics")
    finally:
        api.stop()
        redis_server.stop()

    assert response.status_code == 200
    assert "taskstream_live_workers 0.0" in response.text.splitlines()
    assert 'route="/api/tasks",status="401"' in response.text


def test_metrics_answer_without_redis_and_say_so(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis").start()
    api = ApiServer(redis_server.url, tmp_path)
    try:
        api.start()
        redis_server.stop()
        started = time.monotonic()
        response = httpx.get(f"{api.url}/metrics", timeout=30)
        took = time.monotonic() - started
    finally:
        api.stop()
        redis_server.stop()

    assert response.status_code == 200
    lines = response.text.splitlines()
    assert "taskstream_redis_up 0.0" in lines
    assert not [
        line
        for line in lines
        if line.startswith(("taskstream_queue_depth{", "taskstream_live_workers "))
    ]
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
    assert took < 10


# -- the dashboard ----------------------------------------------------------------------------

# Keywords and clauses of PromQL that look like names; functions are told by their "(".
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
PROMQL_WORDS |= {"and", "or", "unless", "inf", "nan"}
CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NAME = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expression: str) -> set[str]:
    """The series names a PromQL expression selects (its functions, clauses, label matchers,
    ranges, strings and Grafana's `$variables` left out)."""
    text = re.sub(r'"(\\.|[^"\\])*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = CLAUSE.sub("", text)
    return {
        match[1]
        for match in NAME.finditer(text)
        if not match[2] and match[1].lower() not in PROMQL_WORDS
    }


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    panels = list(dashboard["panels"])
    expressions = []
    while panels:
        panel = panels.pop()
        panels += panel.get("panels", [])  # a collapsed row holds its panels
        expressions += [target["expr"] for target in panel.get("targets", [])]
    return expressions


def test_metric_names_are_read_from_promql() -> None:
    names = metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route!~"x|y"}'
        "[$__rate_interval]))) / on (instance) group_left b_total offset 5m"
        " > bool 2 and max without (le) (c)"
    )

    assert names == {"a_bucket", "b_total", "c"}


def test_the_dashboard_queries_only_exposed_metrics_and_every_taskstream_one(
    parked: Stack,
) -> None:
    # Every labelled family has a sample once a task has run and a request was answered.
    done = parked.submit("add", x=1, y=1)
    parked.wait_state(done["id"], "succeeded")
    finished = sample("taskstream_tasks_finished_total", kind="add", state="succeeded")
    scrape_when(parked, lambda m: finished in m, "the task counted")
    families = list(text_string_to_metric_families(parked.http.get("/metrics").text))
    exposed = {s.name for family in families for s in family.samples}

    queried = set()
    for expression in dashboard_expressions(json.loads(DASHBOARD.read_text())):
        queried |= metric_names(expression)

    assert queried
    assert sorted(queried - exposed) == []
    # The text format gives each counter's and histogram's `_created` series a family of its own.
    unqueried = [
        family.name
        for family in families
        if family.name.startswith("taskstream_")
        and not family.name.endswith("_created")
        and not {s.name for s in family.samples} & queried
    ]
    assert unqueried == []
