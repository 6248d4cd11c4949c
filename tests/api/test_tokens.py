"""Watch tokens: a page without an API key reads one task (or a tag's tasks) and nothing else."""

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from taskstream.api.caller import Caller, Scope
from taskstream.api.tokens import Signer
from taskstream.settings import Settings
from tests.support.processes import ApiServer
from tests.support.sse import SSEClient, finished, of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until

KEYS = {"key-alice-0123456789": "alice", "key-bob-0123456789": "bob"}
ALICE = {"Authorization": "Bearer key-alice-0123456789"}
BOB = {"Authorization": "Bearer key-bob-0123456789"}
NEW, OLD = "n" * 40, "o" * 40
SECRETS = {"2026-12": NEW, "2026-11": OLD}


def env(secrets: dict[str, str]) -> dict[str, str]:
    return {
        "API_KEYS": json.dumps(KEYS),
        "SESSION_SECRET": "s" * 40,
        "WATCH_TOKEN_SECRETS": json.dumps(secrets),
        "MAX_STREAMS_PER_PRINCIPAL": "3",
    }


def signer(secrets: dict[str, str]) -> Signer:
    """What an API process with these secrets signs with: tokens a test makes at will."""
    return Signer(
        Settings(
            api_keys=KEYS,
            session_secret=SecretStr("s" * 40),
            watch_token_secrets={kid: SecretStr(s) for kid, s in secrets.items()},
        )
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("tokens"), api_env=env(SECRETS))
    stack.start()
    yield stack
    stack.stop()


def submit(stack: Stack, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"kind": "add", "params": {"x": 1, "y": 2}, **body}
    response = stack.http.post("/api/tasks", json=payload, headers=headers)
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint(stack: Stack, task_id: str, **body: Any) -> dict[str, Any]:
    response = stack.http.post(f"/api/tasks/{task_id}/tokens", json=body or None, headers=ALICE)
    assert response.status_code == 201, response.text
    minted: dict[str, Any] = response.json()
    return minted


def test_a_task_token_reads_its_task_output_and_stream(secured: Stack) -> None:
    task = submit(secured, ALICE)
    minted = mint(secured, task["id"])
    assert minted["scope"] == {"task_id": task["id"]}
    assert datetime.fromisoformat(minted["expires_at"]).tzinfo is not None
    token = minted["token"]
    assert secured.http.get(f"/api/tasks/{task['id']}", headers=bearer(token)).status_code == 200
    output = secured.http.get(f"/api/tasks/{task['id']}/output", headers=bearer(token))
    assert output.status_code == 200
    url = f"{secured.api.url}/api/tasks/{task['id']}/events"
    # EventSource cannot send headers: the token comes in the query instead.
    with SSEClient(f"{url}?access_token={token}") as by_query:
        by_query.wait_ended(60)
    with SSEClient(url, bearer(token)) as by_header:
        by_header.wait_ended(60)
    for stream in (by_query, by_header):
        assert stream.status == 200
        seqs = [event["seq"] for event in of_task(task["id"])(stream.messages)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert stream.messages[-1].event == "succeeded"


def test_submit_can_answer_a_watch_token_at_once(secured: Stack) -> None:
    task = submit(secured, ALICE, watch_token=True)
    token = task["watch_token"]
    assert token["scope"] == {"task_id": task["id"]}
    read = secured.http.get(f"/api/tasks/{task['id']}", headers=bearer(token["token"]))
    assert read.status_code == 200
    assert "watch_token" not in read.json()
    assert "watch_token" not in submit(secured, ALICE)  # only when asked for


def test_a_token_reads_nothing_outside_its_task(secured: Stack) -> None:
    task, other, bobs = submit(secured, ALICE), submit(secured, ALICE), submit(secured, BOB)
    headers = bearer(mint(secured, task["id"])["token"])
    for outside in (other["id"], bobs["id"]):
        for path in (f"/api/tasks/{outside}", f"/api/tasks/{outside}/output"):
            response = secured.http.get(path, headers=headers)
            assert response.status_code == 404, path
            assert response.json()["type"] == "/problems/not_found"
        with SSEClient(f"{secured.api.url}/api/tasks/{outside}/events", headers) as stream:
            stream.wait_ended(10)
        assert stream.status == 404
    # The everyone stream, read with a task's token, carries that task only.
    url = f"{secured.api.url}/api/events?last_event_id=0-0"
    with SSEClient(url, headers) as stream:
        stream.wait_for(finished(task["id"]), 60)
    assert {m.json()["task_id"] for m in stream.messages} == {task["id"]}
    with SSEClient(f"{url}&task={other['id']}", headers) as asked:
        asked.wait_ended(10)
    assert asked.status == 403


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/tasks", {"kind": "add", "params": {"x": 1, "y": 2}}),
        ("POST", "/api/tasks/{id}/cancel", None),
        ("POST", "/api/tasks/{id}/tokens", None),
        ("POST", "/api/tags/report/tokens", None),
        ("GET", "/api/tasks", None),
    ],
)
def test_a_token_never_acts(
    secured: Stack, method: str, path: str, body: dict[str, Any] | None
) -> None:
    task = submit(secured, ALICE)
    headers = bearer(mint(secured, task["id"])["token"])
    response = secured.http.request(method, path.format(id=task["id"]), json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "/problems/forbidden"
    assert f"task {task['id']}" in response.json()["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_a_tag_token_reads_the_tags_tasks_those_submitted_later_too(secured: Stack) -> None:
    minted = secured.http.post("/api/tags/batch-7/tokens", headers=ALICE)
    assert minted.status_code == 201, minted.text
    assert minted.json()["scope"] == {"tag": "batch-7"}
    headers = bearer(minted.json()["token"])
    url = f"{secured.api.url}/api/events"
    with SSEClient(url, headers) as stream:
        tagged = [submit(secured, ALICE, tags=["batch-7"]) for _ in range(2)]
        untagged = submit(secured, ALICE, tags=["batch-8"])
        bobs = submit(secured, BOB, tags=["batch-7"])  # another principal's tag of that name
        for task in tagged:
            stream.wait_for(finished(task["id"]), 60)
    assert {m.json()["task_id"] for m in stream.messages} == {t["id"] for t in tagged}
    listed = secured.http.get("/api/tasks", headers=headers).json()["items"]
    assert {t["id"] for t in listed} == {t["id"] for t in tagged}
    assert secured.http.get("/api/tasks?tag=batch-8", headers=headers).status_code == 403
    for task in tagged:
        assert secured.http.get(f"/api/tasks/{task['id']}", headers=headers).status_code == 200
    for task in (untagged, bobs):
        assert secured.http.get(f"/api/tasks/{task['id']}", headers=headers).status_code == 404
    with SSEClient(f"{url}?tag=batch-8", headers) as other:
        other.wait_ended(10)
    assert other.status == 403


def test_expired_tampered_and_unknown_tokens_answer_401(secured: Stack) -> None:
    task = submit(secured, ALICE)
    path = f"/api/tasks/{task['id']}"
    scope = Scope(task_id=task["id"])
    expired = signer(SECRETS).mint(Caller("alice"), scope, 60, now=time.time() - 120).token
    response = secured.http.get(path, headers=bearer(expired))
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/token_expired"
    assert "expired" in response.json()["detail"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]

    good = mint(secured, task["id"])["token"]
    header, claims, signature = good.split(".")
    widened = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    widened["scope"] = {"tag": "anything"}
    forged_claims = base64.urlsafe_b64encode(json.dumps(widened).encode()).decode().rstrip("=")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    unknown_key = signer({"elsewhere": "e" * 40}).mint(Caller("alice"), scope).token
    gone_principal = signer(SECRETS).mint(Caller("mallory"), scope).token
    for token in (
        f"{header}.{forged_claims}.{signature}",
        f"{header}.{claims}.{flipped}",
        unknown_key,
        gone_principal,
        "eyJ.not.atoken",
    ):
        response = secured.http.get(path, headers=bearer(token))
        assert response.status_code == 401, token
        assert response.json()["type"] == "/problems/unauthorized"
        with SSEClient(f"{secured.api.url}{path}/events?access_token={token}") as stream:
            stream.wait_ended(10)
        assert stream.status == 401


def test_lifetime_is_the_minters_within_the_limit(secured: Stack) -> None:
    task = submit(secured, ALICE)
    before = time.time()
    short = mint(secured, task["id"], ttl_seconds=60)
    expires = datetime.fromisoformat(short["expires_at"]).timestamp()
    assert before + 59 <= expires <= time.time() + 61
    default = datetime.fromisoformat(mint(secured, task["id"])["expires_at"]).timestamp()
    assert before + 899 <= default <= time.time() + 901
    for ttl in (24 * 3600 + 1, 5):
        too = secured.http.post(
            f"/api/tasks/{task['id']}/tokens", json={"ttl_seconds": ttl}, headers=ALICE
        )
        assert too.status_code == 422
        assert too.json()["errors"][0]["field"] == "ttl_seconds"


def test_every_replica_verifies_and_keys_rotate(secured: Stack) -> None:
    task = submit(secured, ALICE)
    path = f"/api/tasks/{task['id']}"
    scope = Scope(task_id=task["id"])
    old = signer({"2026-11": OLD}).mint(Caller("alice"), scope).token
    new = mint(secured, task["id"])["token"]
    # Another replica with the same secrets, and one after the old key was dropped.
    replica = ApiServer(secured.redis.url, secured.directory, env=env(SECRETS), name="replica")
    rotated = ApiServer(
        secured.redis.url, secured.directory, env=env({"2026-12": NEW}), name="rotated"
    )
    replica.start()
    rotated.start()
    try:
        for api in (replica, rotated):
            answer = httpx.get(f"{api.url}{path}", headers=bearer(new), timeout=15)
            assert answer.status_code == 200
        assert httpx.get(f"{replica.url}{path}", headers=bearer(old), timeout=15).status_code == 200
        assert httpx.get(f"{rotated.url}{path}", headers=bearer(old), timeout=15).status_code == 401
    finally:
        replica.stop()
        rotated.stop()


def test_the_access_log_masks_the_token(secured: Stack) -> None:
    task = submit(secured, ALICE)
    token = mint(secured, task["id"])["token"]
    url = f"{secured.api.url}/api/tasks/{task['id']}/events?snapshot=1&access_token={token}"
    with SSEClient(url) as stream:
        stream.wait_ended(60)
    log = secured.api.process.log_path

    def logged() -> bool:
        return f"/api/tasks/{task['id']}/events?snapshot=1&access_token=*** " in log.read_text()

    wait_until(logged, 30, message=lambda: f"the stream's access log line\n{log.read_text()}")
    assert token not in log.read_text()
    assert token.split(".")[2] not in log.read_text()


def test_stream_limits_count_per_token_scope(secured: Stack) -> None:
    """Viewers of different tasks do not share their minter's quota (3 here); one scope has it."""
    first, second = (
        submit(secured, ALICE, kind="long", params={"seconds": 30}),
        submit(secured, ALICE, kind="long", params={"seconds": 30}),
    )
    streams = []
    try:
        for task in (first, second):
            token = mint(secured, task["id"])["token"]
            url = f"{secured.api.url}/api/tasks/{task['id']}/events?access_token={token}"
            for _ in range(3):
                streams.append(SSEClient(url).open())
                assert streams[-1].status == 200
            with SSEClient(url) as over:
                over.wait_ended(10)
            assert over.status == 429
    finally:
        for stream in streams:
            stream.close()
        for task in (first, second):
            secured.http.post(f"/api/tasks/{task['id']}/cancel", headers=ALICE)


def test_access_token_is_taken_by_the_streams_only(secured: Stack) -> None:
    task = submit(secured, ALICE)
    token = mint(secured, task["id"])["token"]
    response = secured.http.get(f"/api/tasks/{task['id']}?access_token={token}")
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
