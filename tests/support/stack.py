"""A whole taskstream on real processes: Redis, a Celery worker and the API."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from taskstream.api.filters import OUTPUT_TYPE_NAMES
from tests.support.processes import ApiServer, RedisServer, Worker
from tests.support.sse import Message, SSEClient, of_task
from tests.support.waiting import wait_until


class Stack:
    def __init__(
        self,
        directory: Path,
        *,
        api_env: Mapping[str, str] | None = None,
        worker_env: Mapping[str, str] | None = None,
        appendonly: bool = False,
        redis_password: str | None = None,
    ) -> None:
        self.directory = directory
        self.redis = RedisServer(
            directory / "redis", appendonly=appendonly, password=redis_password
        )
        self.worker = Worker(self.redis.url, directory, env=worker_env)
        self.api = ApiServer(self.redis.url, directory, env=api_env)
        self.http = httpx.Client(base_url=self.api.url, timeout=15)

    def start(self) -> "Stack":
        self.redis.start()
        self.worker.start(self.redis.client())
        self.api.start()
        return self

    def stop(self) -> None:
        self.http.close()
        self.api.stop()
        self.worker.stop()
        self.redis.stop()

    def submit(self, kind: str, **params: Any) -> dict[str, Any]:
        response = self.http.post("/api/tasks", json={"kind": kind, "params": params})
        assert response.status_code == 202, response.text
        task: dict[str, Any] = response.json()
        return task

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    def wait_state(self, task_id: str, *states: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["state"] in states else None

        found = wait_until(reached, timeout, message=f"task {task_id} to reach {states}")
        assert found is not None
        return found

    def log_between(self, first: str, last: str) -> list[str]:
        """Every id the event log holds from `first` to `last`, read straight from Redis."""
        entries = self.redis.client().xrange("ts:events", first, last) or []
        return [str(entry_id) for entry_id, _ in entries]

    def assert_resumed_exactly(
        self, before: list[Message], after: list[Message], task_id: str
    ) -> None:
        """What a client of the everyone stream read before and after a reconnect is the event
        log with no gap and no duplicate, and the task's events are its own history's from the
        first, less the output log's (which that stream leaves out unless asked), none missing."""
        assert all(m.event != "reset" for m in after)
        received = [m.id for m in before + after]
        assert len(received) == len(set(received)), "a duplicate"
        assert received == self.log_between(before[0].id or "-", received[-1] or "+"), "a gap"
        seqs = [e["seq"] for e in of_task(task_id)(before + after)]
        history: Any = self.redis.client().xrange(f"ts:task:{task_id}:events") or []
        expected = [int(f["seq"]) for _, f in history if f["type"] not in OUTPUT_TYPE_NAMES]
        assert seqs == expected[: len(seqs)]
        assert seqs[0] == 1

    def events(
        self, path: str = "/api/events", headers: Mapping[str, str] | None = None
    ) -> SSEClient:
        return SSEClient(self.api.url + path, dict(headers or {}))
