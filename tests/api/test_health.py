"""Liveness and readiness, and what the API answers while Redis is away."""

from pathlib import Path

import httpx

from tests.conftest import StackFactory
from tests.support.processes import ApiServer, RedisServer
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def test_healthz_readyz_and_workers_when_all_is_up(stack: Stack) -> None:
    assert stack.http.get("/healthz").json() == {"status": "ok"}
    ready = stack.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["redis"] is True
    workers = stack.http.get("/workers")
    assert workers.status_code == 200
    assert workers.json()["alive"] == 1
    assert len(workers.json()["names"]) == 1


def test_readiness_is_the_apis_own_and_workers_have_their_endpoint(tmp_path: Path) -> None:
    """With no worker alive the API is still ready: it accepts tasks (they wait queued) and
    streams; `/workers` says there is none."""
    redis = RedisServer(tmp_path / "redis", appendonly=True).start()
    api = ApiServer(redis.url, tmp_path, name="no-workers").start()
    try:
        with httpx.Client(base_url=api.url, timeout=15) as http:
            ready = http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "redis": True, "warnings": []}
            none = http.get("/workers")
            assert none.status_code == 503
            assert none.json() == {"alive": 0, "names": []}
            body = {"kind": "add", "params": {"x": 1, "y": 1}}
            assert http.post("/api/tasks", json=body).json()["state"] == "queued"
            # A Redis set to evict (or to keep no append-only file) is named, still ready.
            redis.client().config_set("maxmemory-policy", "allkeys-lru")
            redis.client().config_set("appendonly", "no")
            warned = http.get("/readyz")
            assert warned.status_code == 200
            assert [w.split(" ")[0] for w in warned.json()["warnings"]] == [
                "maxmemory-policy",
                "appendonly",
            ]
    finally:
        api.stop()
        redis.stop()
    assert "Redis: " not in api.process.log_path.read_text()  # a Redis as needed: no warning


def test_the_start_up_log_warns_of_a_redis_that_evicts(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis", appendonly=True).start()
    redis.client().config_set("maxmemory-policy", "volatile-lru")
    api = ApiServer(redis.url, tmp_path, name="evicting").start()
    api.stop()
    redis.stop()
    assert "Redis: maxmemory-policy is volatile-lru" in api.process.log_path.read_text()


def test_readiness_follows_redis_down_and_back(make_stack: StackFactory) -> None:
    private = make_stack()
    private.redis.stop()

    def unready() -> httpx.Response | None:
        response = private.http.get("/readyz")
        return response if response.status_code == 503 else None

    response = wait_until(unready, 30, message="/readyz to turn 503")
    assert response is not None
    assert response.json() == {"status": "unavailable", "redis": False, "warnings": []}
    refused = private.http.post("/api/tasks", json={"kind": "add", "params": {"x": 1, "y": 1}})
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["type"] == "/problems/unavailable"
    assert private.http.get("/healthz").status_code == 200  # the process itself is fine

    private.redis.start()
    wait_until(lambda: private.http.get("/readyz").status_code == 200, 60, message="ready again")
    # API, reader and worker all reconnected by themselves: a task runs end to end.
    with private.events() as stream:
        task = private.submit("add", x=20, y=22)
        stream.wait_for(lambda ms: any(m.event == "succeeded" for m in ms), 60)
    assert private.task(task["id"])["result"] == 42


def test_redis_with_a_password(make_stack: StackFactory) -> None:
    private = make_stack(redis_password="p4ss-w0rd-of-some-length")
    task = private.submit("add", x=1, y=2)
    assert private.wait_state(task["id"], "succeeded")["result"] == 3
    # without the password Redis refuses, and the API says it is not ready rather than crash
    intruder = ApiServer(
        f"redis://127.0.0.1:{private.redis.port}/0", private.directory, name="nopw"
    )
    intruder.start()
    try:
        response = httpx.get(f"{intruder.url}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["redis"] is False
    finally:
        intruder.stop()
