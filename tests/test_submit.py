"""`taskstream.submit` on real processes: a task submitted from Python code is one the API could
have made, whichever of `submit`, `asubmit` or a Celery task of another app submits it."""

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from taskstream.errors import IdempotencyKeyReused, InvalidRequest, StoreUnavailable
from taskstream.events.models import Task
from taskstream.processes import WorkerSpec
from taskstream.settings import Settings
from taskstream.submit import Submitter, asubmit, submit
from tests.support.loops import run_apart
from tests.support.processes import Process, free_port
from tests.support.sse import SSEClient, finished, of_task
from tests.support.stack import Stack

KEYS = {"key-alice-0123456789": "alice", "key-bob-0123456789": "bob"}
ALICE = {"Authorization": "Bearer key-alice-0123456789"}
BOB = {"Authorization": "Bearer key-bob-0123456789"}
SECRET = "s" * 40


def submitted(how: str, kind: str, params: dict[str, Any], **options: Any) -> Task:
    """One submission by `submit` or, from asyncio code, by `asubmit`."""
    if how == "asubmit":
        return run_apart(asubmit(kind, params, **options))
    return submit(kind, params, **options)


def tasks_indexed(stack: Stack) -> int:
    return int(stack.redis.client().zcard("ts:tasks"))


@pytest.mark.parametrize("how", ["submit", "asubmit"])
def test_a_submitted_task_runs_and_streams_like_a_posted_one(stack: Stack, how: str) -> None:
    settings = Settings(redis_url=stack.redis.url)
    with stack.events() as stream:
        task = submitted(how, "add", {"x": 2, "y": 3}, tags=["nightly"], settings=settings)
        stream.wait_for(finished(task.id), timeout=60)
    assert (task.state, task.seq, task.kind, task.params) == ("queued", 1, "add", {"x": 2, "y": 3})
    events = of_task(task.id)(stream.messages)
    assert [e["type"] for e in events] == ["queued", "started", "succeeded"]
    assert events[0]["tags"] == ["nightly"]
    queued = next(m for m in stream.messages if m.event == "queued" and task.id in m.data)
    assert queued.id == task.last_event_id  # the task answered is the one the log holds
    final = stack.wait_state(task.id, "succeeded")
    assert final["result"] == 5
    same = ("id", "kind", "params", "tags", "owner", "created_at")
    assert {k: final[k] for k in same} == task.model_dump(mode="json", include=set(same))
    listed = stack.http.get("/api/tasks", params={"tag": "nightly"}).json()["items"]
    assert task.id in [t["id"] for t in listed]


def test_a_submission_writes_what_the_api_writes(stack: Stack) -> None:
    """The same request by HTTP and by `submit`: the same queued event and, once run, the same
    state, but for ids and times."""
    body = {"kind": "long", "params": {"seconds": 1}, "tags": ["a", "b", "a"]}
    posted = stack.http.post("/api/tasks", json=body).json()["id"]
    ours = submit(
        "long", {"seconds": 1}, tags=["a", "b", "a"], settings=Settings(redis_url=stack.redis.url)
    )
    assert ours.tags == ["a", "b"]
    client = stack.redis.client()

    def queued_entry(task_id: str) -> dict[str, Any]:
        entries: Any = client.xrange(f"ts:task:{task_id}:events", count=1)
        fields = dict(entries[0][1])
        data = json.loads(fields.pop("data"))
        del fields["task"], data["task_id"], data["at"]
        return {**fields, "data": data}

    assert queued_entry(ours.id) == queued_entry(posted)
    stack.wait_state(posted, "succeeded")
    stack.wait_state(ours.id, "succeeded")
    theirs_hash: Any = client.hgetall(f"ts:task:{posted}")
    our_hash: Any = client.hgetall(f"ts:task:{ours.id}")
    assert set(our_hash) == set(theirs_hash)
    kept = ("kind", "params", "tags", "owner", "state", "dispatch", "attempts", "seq", "result")
    assert {k: our_hash[k] for k in kept} == {k: theirs_hash[k] for k in kept}


@pytest.mark.parametrize("how", ["submit", "asubmit"])
def test_bad_input_raises_invalid_request_naming_it_and_writes_nothing(
    stack: Stack, how: str
) -> None:
    settings = Settings(redis_url=stack.redis.url)
    key = f"bad-{uuid.uuid4().hex}"
    before = tasks_indexed(stack)
    cases: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
        ("long", {"seconds": "5"}, {}, "params.seconds"),  # no number, as the API reads JSON
        ("long", {"seconds": 0}, {}, "params.seconds"),
        ("add", {"x": 1}, {}, "params.y"),
        ("add", {"x": 1, "y": 2, "z": 3}, {}, "params.z"),
        ("nope", {}, {}, "kind"),
        ("long", {}, {"tags": ["not a tag"]}, "tags.0"),
        ("long", {}, {"idempotency_key": "has spaces"}, "idempotency_key"),
        ("long", {"seconds": 0}, {"idempotency_key": key}, "params.seconds"),
    ]
    for kind, params, options, field in cases:
        with pytest.raises(InvalidRequest) as raised:
            submitted(how, kind, params, settings=settings, **options)
        assert raised.value.field == field, raised.value.detail
        assert field in raised.value.detail
    assert tasks_indexed(stack) == before
    # The bad request with a key did not claim it: the key is free for a good one.
    task = submitted(how, "long", {"seconds": 1}, idempotency_key=key, settings=settings)
    assert task.params == {"seconds": 1}
    assert tasks_indexed(stack) == before + 1


def test_an_idempotency_key_returns_the_same_task_by_any_way_in(stack: Stack) -> None:
    settings = Settings(redis_url=stack.redis.url)
    key = f"order-{uuid.uuid4().hex}"
    first = submit("add", {"x": 4, "y": 4}, idempotency_key=key, settings=settings)
    again = submit("add", {"x": 4, "y": 4}, idempotency_key=key, settings=settings)
    from_async = run_apart(asubmit("add", {"x": 4, "y": 4}, idempotency_key=key, settings=settings))
    headers = {"Idempotency-Key": key}
    body = {"kind": "add", "params": {"x": 4, "y": 4}}
    posted = stack.http.post("/api/tasks", json=body, headers=headers)
    assert first.id == again.id == from_async.id == posted.json()["id"]
    assert posted.headers["idempotent-replayed"] == "true"
    with pytest.raises(IdempotencyKeyReused) as raised:
        submit("add", {"x": 5, "y": 4}, idempotency_key=key, settings=settings)
    assert raised.value.field == "idempotency_key"
    # And the other way round: a key the API saw first.
    other = f"order-{uuid.uuid4().hex}"
    response = stack.http.post("/api/tasks", json=body, headers={"Idempotency-Key": other})
    task = submit("add", {"x": 4, "y": 4}, idempotency_key=other, settings=settings)
    assert task.id == response.json()["id"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"API_KEYS": json.dumps(KEYS), "SESSION_SECRET": SECRET}
    stack = Stack(tmp_path_factory.mktemp("secured"), api_env=env)
    stack.start()
    yield stack
    stack.stop()


def test_an_owner_makes_the_task_visible_to_that_principals_key_only(secured: Stack) -> None:
    keyed = Settings(redis_url=secured.redis.url, api_keys=KEYS, session_secret=SECRET)
    with (
        SSEClient(secured.api.url + "/api/events", ALICE) as alice,
        SSEClient(secured.api.url + "/api/events", BOB) as bob,
        Submitter(keyed) as submitter,
    ):
        mine = submitter.submit("add", {"x": 1, "y": 1}, owner="alice")
        theirs = submitter.submit("add", {"x": 2, "y": 2}, owner="bob")
        alice.wait_for(finished(mine.id), timeout=60)
        bob.wait_for(finished(theirs.id), timeout=60)
    assert mine.owner == "alice"
    assert not of_task(theirs.id)(alice.messages)
    assert not of_task(mine.id)(bob.messages)
    read = secured.http.get(f"/api/tasks/{mine.id}", headers=ALICE)
    assert (read.status_code, read.json()["owner"], read.json()["state"]) == (
        200,
        "alice",
        "succeeded",
    )
    assert secured.http.get(f"/api/tasks/{mine.id}", headers=BOB).status_code == 404
    listed = [t["id"] for t in secured.http.get("/api/tasks", headers=BOB).json()["items"]]
    assert theirs.id in listed
    assert mine.id not in listed
    # Settings that know the keys refuse an owner no key stands for.
    with pytest.raises(InvalidRequest) as raised:
        submit("add", {"x": 1, "y": 1}, owner="mallory", settings=keyed)
    assert raised.value.field == "owner"
    # Settings without the keys (a process not given them) still name the owner.
    unkeyed = Settings(redis_url=secured.redis.url)
    task = run_apart(asubmit("add", {"x": 3, "y": 3}, owner="bob", settings=unkeyed))
    assert secured.http.get(f"/api/tasks/{task.id}", headers=BOB).status_code == 200
    assert secured.http.get(f"/api/tasks/{task.id}", headers=ALICE).status_code == 404
    # An idempotency key is the principal's own, here as in the API.
    key = f"k-{uuid.uuid4().hex}"
    as_alice = submit("add", {"x": 1, "y": 1}, idempotency_key=key, owner="alice", settings=keyed)
    as_bob = submit("add", {"x": 1, "y": 1}, idempotency_key=key, owner="bob", settings=keyed)
    assert as_alice.id != as_bob.id
    posted = secured.http.post(
        "/api/tasks",
        json={"kind": "add", "params": {"x": 1, "y": 1}},
        headers={**ALICE, "Idempotency-Key": key},
    )
    assert posted.json()["id"] == as_alice.id


NIGHTLY_APP = '''
"""A project's own Celery app, whose periodic task submits a taskstream task."""

import os

from celery import Celery

from taskstream.submit import submit

app = Celery("nightly", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
app.conf.task_default_queue = "nightly"
app.conf.beat_schedule = {
    "nightly-sum": {"task": "nightly.sum", "schedule": 24 * 3600, "args": (20, 22, "nightly")},
}


@app.task(name="nightly.sum")
def nightly_sum(x: int, y: int, tag: str) -> str:
    # Beat may send a schedule's message twice: the key makes that one task.
    return submit("add", {"x": x, "y": y}, tags=[tag], idempotency_key=tag).id
'''


def test_a_periodic_celery_task_of_another_app_submits_from_its_worker(
    stack: Stack, tmp_path: Path
) -> None:
    """The periodic task runs as beat would have it run: its message sent to the project's own
    queue, run by that app's worker, in a forked pool process (settings from its environment)."""
    (tmp_path / "nightly_app.py").write_text(NIGHTLY_APP)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    spec = WorkerSpec(
        stack.redis.url,
        f"nightly-{free_port()}",
        app="nightly_app",
        concurrency=1,
        queues=("nightly",),
        standalone=True,
        env={"PYTHONPATH": path},
    )
    worker = Process("nightly-worker", spec.command(), tmp_path, spec.environment()).start()
    url = stack.redis.url
    sender = Celery("beat", broker=url, backend=url, set_as_current=False)
    tag = f"nightly-{uuid.uuid4().hex[:8]}"
    try:
        # The schedule's message, and a repeat of it.
        sent = [sender.send_task("nightly.sum", args=(20, 22, tag), queue="nightly") for _ in "ab"]
        ids = [result.get(timeout=90) for result in sent]
    except Exception:
        print(worker.log_tail())
        raise
    finally:
        sender.close()
        worker.stop()
    assert ids[0] == ids[1]
    task = stack.wait_state(ids[0], "succeeded")
    assert (task["kind"], task["params"], task["tags"], task["result"]) == (
        "add",
        {"x": 20, "y": 22},
        [tag],
        42,
    )


def test_a_submitter_shared_across_a_fork_keeps_each_process_replies_its_own(
    stack: Stack,
) -> None:
    """As a Celery pool process forked from a parent that already submitted: both submit at
    once, and each task answered is the one the log holds."""

    def submit_and_check(submitter: Submitter, count: int) -> bool:
        client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
        tasks = [submitter.submit("add", {"x": n, "y": 0}) for n in range(count)]
        firsts: list[Any] = [client.xrange(f"ts:task:{t.id}:events", count=1) for t in tasks]
        client.close()
        return all(
            (t.last_event_id, t.params) == (entry_id, json.loads(fields["data"])["params"])
            for t, [(entry_id, fields)] in zip(tasks, firsts, strict=True)
        )

    with Submitter(Settings(redis_url=stack.redis.url)) as submitter:
        submitter.submit("add", {"x": 0, "y": 0})  # a connection of the parent's, now idle
        child = os.fork()
        if child == 0:  # pragma: no cover (the child's outcome is its exit status)
            code = 1
            try:
                code = 0 if submit_and_check(submitter, 200) else 2
            finally:
                os._exit(code)
        ours = submit_and_check(submitter, 200)
        _, status = os.waitpid(child, 0)
    assert ours
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("how", ["submit", "asubmit"])
def test_without_redis_a_submission_raises_store_unavailable(how: str) -> None:
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        redis_outage_patience_seconds=0,
        redis_timeout_seconds=1,
    )
    with pytest.raises(StoreUnavailable):
        submitted(how, "add", {"x": 1, "y": 2}, settings=settings)
