"""The REST API on a live server: submit, read, list, cancel, and every bad input's answer."""

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from taskstream.events.ids import parse_event_id
from tests.support.processes import ApiServer, Worker
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body["errors"]}


def test_submit_answers_202_with_location_and_a_queued_task(stack: Stack) -> None:
    response = stack.http.post("/api/tasks", json={"kind": "add", "params": {"x": 1, "y": 2}})
    assert response.status_code == 202
    task = response.json()
    assert response.headers["location"] == f"/api/tasks/{task['id']}"
    assert task["state"] == "queued"
    assert task["kind"] == "add"
    assert task["seq"] == 1
    assert task["params"] == {"x": 1, "y": 2}
    assert stack.http.get(response.headers["location"]).json()["id"] == task["id"]


def test_params_with_defaults_may_be_omitted(stack: Stack) -> None:
    response = stack.http.post("/api/tasks", json={"kind": "unreliable"})
    assert response.status_code == 202, response.text
    assert response.json()["params"] == {"failure_rate": 0.5, "max_retries": 3}


def test_unknown_kind_and_bad_params_answer_422_naming_the_field(stack: Stack) -> None:
    post: Callable[[Any], Any] = lambda body: stack.http.post("/api/tasks", json=body)  # noqa: E731
    assert fields(problem(post({"kind": "rm -rf", "params": {}}), 422)) == {"kind"}
    assert fields(problem(post({"params": {}}), 422)) == {"kind"}
    body = problem(post({"kind": "add", "params": {"x": "two", "z": 1}}), 422)
    assert fields(body) == {"params.x", "params.y", "params.z"}
    assert fields(problem(post({"kind": "long", "params": {"seconds": 3600}}), 422)) == {
        "params.seconds"
    }
    assert fields(problem(post({"kind": "unreliable", "params": {"failure_rate": 2}}), 422)) == {
        "params.failure_rate"
    }
    assert fields(problem(post({"kind": "add", "params": {"x": 1, "y": 2}, "extra": 1}), 422)) == {
        "extra"
    }
    malformed = stack.http.post(
        "/api/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert problem(malformed, 422)["errors"]


def test_unknown_and_malformed_task_ids(stack: Stack) -> None:
    body = problem(stack.http.get("/api/tasks/" + "0" * 32), 404)
    assert body["type"] == "/problems/not_found"
    assert "0" * 32 in body["detail"]
    assert fields(problem(stack.http.get("/api/tasks/not-an-id"), 422)) == {"path.task_id"}
    problem(stack.http.post("/api/tasks/" + "0" * 32 + "/cancel"), 404)
    problem(stack.http.get("/api/no-such-route"), 404)


def test_idempotency_key_returns_the_same_task(stack: Stack) -> None:
    headers = {"Idempotency-Key": f"order-{time.time_ns()}"}
    body = {"kind": "add", "params": {"x": 4, "y": 4}}
    first = stack.http.post("/api/tasks", json=body, headers=headers)
    again = stack.http.post("/api/tasks", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = stack.http.post(
        "/api/tasks", json={"kind": "add", "params": {"x": 5, "y": 4}}, headers=headers
    )
    assert problem(other, 422)["type"] == "/problems/idempotency_key_reused"


def test_list_is_newest_first_filtered_and_paginated(stack: Stack) -> None:
    ids = [stack.submit("add", x=i, y=0.5)["id"] for i in range(5)]
    for task_id in ids:
        stack.wait_state(task_id, "succeeded")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"kind": "add", "state": "succeeded", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = stack.http.get("/api/tasks", params=params).json()
        # where the log stood before the page was read: no event of these tasks comes after it
        position = parse_event_id(page["last_event_id"])
        assert position is not None
        assert all(parse_event_id(t["last_event_id"]) <= position for t in page["items"])  # type: ignore[operator]
        assert len(page["items"]) <= 2
        assert all(t["kind"] == "add" and t["state"] == "succeeded" for t in page["items"])
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True)
    assert [i for i in seen if i in ids] == list(reversed(ids))
    assert len(seen) == len(set(seen))
    assert fields(problem(stack.http.get("/api/tasks", params={"limit": 0}), 422)) == {
        "query.limit"
    }
    assert fields(problem(stack.http.get("/api/tasks", params={"state": "x"}), 422)) == {
        "query.state"
    }
    assert fields(problem(stack.http.get("/api/tasks", params={"kind": "x"}), 422)) == {
        "query.kind"
    }


def test_cancel_running_task_stops_within_a_second(stack: Stack) -> None:
    task = stack.submit("long", seconds=30)
    with stack.events(f"/api/tasks/{task['id']}/events") as stream:
        stream.wait_for(lambda ms: any(m.event == "progress" for m in ms))
        asked = time.time()
        response = stack.http.post(f"/api/tasks/{task['id']}/cancel")
        assert response.status_code == 202
        assert response.json()["cancel_requested"] is True
        stream.wait_ended(10)
    events = [m.json() for m in stream.messages]
    assert events[-1]["type"] == "cancelled"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    stopped = datetime.fromisoformat(events[-1]["at"]).timestamp()
    assert stopped - asked < 1.0, stopped - asked
    assert stack.task(task["id"])["state"] == "cancelled"
    problem(stack.http.post(f"/api/tasks/{task['id']}/cancel"), 409)


def test_cancel_queued_task_ends_it_before_any_worker_starts_it(stack: Stack) -> None:
    # A second API sends `long` to a queue no worker reads yet: the task stays queued.
    api = ApiServer(
        stack.redis.url, stack.directory, env={"TASK_QUEUES": '{"long": "parked"}'}, name="api2"
    ).start()
    try:
        response = httpx.post(f"{api.url}/api/tasks", json={"kind": "long", "params": {}})
        task_id = response.json()["id"]
        cancelled = httpx.post(f"{api.url}/api/tasks/{task_id}/cancel")
        assert cancelled.status_code == 202
        assert cancelled.json()["state"] == "cancelled"
        # A worker that now takes the message must skip it.
        worker = Worker(stack.redis.url, stack.directory, name="parked", queues="parked")
        worker.start(stack.redis.client())
        try:
            redis = stack.redis.client()
            wait_until(lambda: redis.llen("parked") == 0, 30, message="parked queue drained")
            wait_until(
                lambda: f"skipping task {task_id}" in worker.process.log_path.read_text(),
                30,
                message="worker to skip the cancelled task",
            )
        finally:
            worker.stop()
        final = stack.task(task_id)
        assert final["state"] == "cancelled"
        assert final["seq"] == 2
        assert final["attempts"] == 0
    finally:
        api.stop()


def test_task_kinds_describe_each_kind_with_its_schema(stack: Stack) -> None:
    kinds = {kind["name"]: kind for kind in stack.http.get("/api/task-kinds").json()}
    assert set(kinds) == {"add", "generate", "long", "unreliable"}
    long = kinds["long"]
    assert long["title"]
    assert long["description"]
    seconds = long["params_schema"]["properties"]["seconds"]
    assert (seconds["default"], seconds["minimum"], seconds["maximum"]) == (5, 1, 60)
    assert kinds["add"]["params_schema"]["required"] == ["x", "y"]
    schema = stack.http.get("/openapi.json").json()
    body = schema["paths"]["/api/tasks"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {"add", "generate", "long", "unreliable"}
