"""API-key mode: each principal sees only its own tasks and events, within its limits."""

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import StackFactory
from tests.support.processes import ApiServer
from tests.support.sse import SSEClient, of_task
from tests.support.stack import Stack
from tests.support.waiting import GiveUp

KEYS = {"key-alice-0123456789": "alice", "key-bob-0123456789": "bob"}
ALICE = {"Authorization": "Bearer key-alice-0123456789"}
BOB = {"Authorization": "Bearer key-bob-0123456789"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("secured"),
        api_env={
            "API_KEYS": json.dumps(KEYS),
            "SESSION_SECRET": "s" * 40,
            "MAX_STREAMS_PER_PRINCIPAL": "2",
            "SUBMIT_RATE_PER_MINUTE": "20",
        },
    )
    stack.start()
    yield stack
    stack.stop()


def submit(stack: Stack, headers: dict[str, str], **params: float) -> dict[str, object]:
    body = {"kind": "add", "params": {"x": 1, "y": 2, **params}}
    response = stack.http.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 202, response.text
    task: dict[str, object] = response.json()
    return task


def test_requests_without_a_valid_key_are_refused(secured: Stack) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = secured.http.get("/api/tasks", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == "/problems/unauthorized"
    with secured.events() as stream:
        assert stream.status == 401
    assert secured.http.get("/api/task-kinds").status_code == 200  # public: what kinds exist
    assert secured.http.get("/healthz").status_code == 200


def test_a_principal_sees_only_its_own_tasks_and_events(secured: Stack) -> None:
    with (
        SSEClient(secured.api.url + "/api/events", ALICE) as alice_stream,
        SSEClient(secured.api.url + "/api/events", BOB) as bob_stream,
    ):
        mine = submit(secured, ALICE)
        theirs = submit(secured, BOB)
        alice_stream.wait_for(lambda ms: len(of_task(str(mine["id"]))(ms)) == 3)
        bob_stream.wait_for(lambda ms: len(of_task(str(theirs["id"]))(ms)) == 3)
    assert not of_task(str(theirs["id"]))(alice_stream.messages)
    assert not of_task(str(mine["id"]))(bob_stream.messages)
    assert secured.http.get(f"/api/tasks/{theirs['id']}", headers=ALICE).status_code == 404
    assert secured.http.post(f"/api/tasks/{theirs['id']}/cancel", headers=ALICE).status_code == 404
    listed = secured.http.get("/api/tasks", headers=ALICE).json()["items"]
    assert {t["owner"] for t in listed} == {"alice"}
    with SSEClient(f"{secured.api.url}/api/tasks/{theirs['id']}/events", ALICE) as other:
        other.wait_ended(10)
    assert other.status == 404
    # Catching up from the log skips the other principal's events too.
    with SSEClient(secured.api.url + "/api/events?last_event_id=0-0", ALICE) as replay:
        replay.wait_for(lambda ms: len(of_task(str(mine["id"]))(ms)) == 3)
    assert all(m.json()["task_id"] != theirs["id"] for m in replay.messages if m.event != "reset")


def test_browsers_sign_in_for_an_httponly_session_cookie(secured: Stack) -> None:
    session = httpx.Client(base_url=secured.api.url)
    assert session.get("/api/session").json() == {"auth_required": True, "principal": None}
    assert session.post("/api/session", json={"api_key": "wrong"}).status_code == 401
    signed_in = session.post("/api/session", json={"api_key": "key-bob-0123456789"})
    assert signed_in.status_code == 204
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/api" in cookie
    assert session.get("/api/session").json()["principal"] == "bob"
    assert session.get("/api/tasks").status_code == 200
    value = session.cookies["taskstream_session"]
    task = submit(secured, BOB)
    with SSEClient(
        f"{secured.api.url}/api/tasks/{task['id']}/events",
        {"Cookie": f"taskstream_session={value}"},
    ) as stream:
        stream.wait_ended(30)
    assert [m.event for m in stream.messages][-1] == "succeeded"
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    assert (
        httpx.get(
            f"{secured.api.url}/api/tasks", cookies={"taskstream_session": forged}
        ).status_code
        == 401
    )
    assert session.delete("/api/session").status_code == 204
    assert session.get("/api/tasks").status_code == 401
    session.close()


def test_streams_and_submissions_are_limited_per_principal(secured: Stack) -> None:
    first = SSEClient(secured.api.url + "/api/events", ALICE).open()
    second = SSEClient(secured.api.url + "/api/events", ALICE).open()
    try:
        with SSEClient(secured.api.url + "/api/events", ALICE) as third:
            third.wait_ended(10)
        assert third.status == 429
        assert int(third.headers["retry-after"]) > 0
        with SSEClient(secured.api.url + "/api/events", BOB) as bobs:
            assert bobs.status == 200  # a limit per principal, not for everyone
    finally:
        first.close()
        second.close()
    statuses = []
    for _ in range(25):
        response = secured.http.post(
            "/api/tasks", json={"kind": "add", "params": {"x": 0, "y": 0}}, headers=BOB
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["type"] == "/problems/too_many_requests"
            break
    assert statuses[-1] == 429
    assert set(statuses[:-1]) == {202}


def test_keys_without_a_session_secret_refuse_to_start(make_stack: StackFactory) -> None:
    stack = make_stack()
    api = ApiServer(
        stack.redis.url, stack.directory, env={"API_KEYS": json.dumps(KEYS)}, name="bad"
    )
    with pytest.raises(GiveUp, match="SESSION_SECRET must be set"):
        api.start()
    assert "Traceback" not in api.process.log_path.read_text()
    api.stop()
