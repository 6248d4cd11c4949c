"""LOG_FORMAT=json on real processes: every line a JSON object, the worker's lines naming their
task, the API's naming their request, and no line holding a credential."""

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskstream.api.main import create_app
from taskstream.processes import WorkerSpec
from taskstream.settings import Settings
from tests.support.loops import run_apart
from tests.support.processes import ROOT, ApiServer, RedisServer
from tests.support.sse import SSEClient
from tests.support.waiting import wait_until

API_KEY = "key-logs-0123456789abcdef"
SESSION_SECRET = "session-secret-" + "x" * 32
JSON = {"LOG_FORMAT": "json"}
# What Celery writes to standard output by itself, past any logging, when told to stop.
CELERY_NOTICE = re.compile(r"worker: (Warm|Cold) shutdown \(MainProcess\)")


class SplitWorker:
    """A worker whose standard output and standard error go to files of their own: its JSON
    lines are on standard error, and only Celery's own notices on standard output."""

    def __init__(self, redis_url: str, directory: Path) -> None:
        self.spec = WorkerSpec(
            redis_url, "logs", concurrency=1, standalone=True, env=JSON | _heartbeat()
        )
        self.stdout, self.stderr = directory / "worker.out", directory / "worker.err"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "SplitWorker":
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                self.spec.command(),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.spec.environment()},
                cwd=ROOT,
                start_new_session=True,
            )
        return self

    def stop(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _heartbeat() -> dict[str, str]:
    return {"WORKER_HEARTBEAT_SECONDS": "1"}


@dataclass
class Run:
    """What one task's submission and stream left in the two processes' logs."""

    task_id: str
    skipped_id: str  # cancelled while it waited: the worker says it skips it, in its own words
    token: str
    api_lines: list[str]
    worker_lines: list[str]
    worker_stdout: list[str]
    posted: httpx.Response
    streamed: SSEClient
    insane: httpx.Response


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    directory = tmp_path_factory.mktemp("logs")
    redis = RedisServer(directory / "redis").start()
    api = ApiServer(
        redis.url,
        directory,
        env=JSON | {"API_KEYS": json.dumps({API_KEY: "alice"}), "SESSION_SECRET": SESSION_SECRET},
    )
    worker = SplitWorker(redis.url, directory).start()
    try:
        api.start()
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=15) as http:
            wait_until(lambda: http.get("/workers").status_code == 200, 60, message="the worker")
            posted = http.post(
                "/api/tasks",
                json={"kind": "long", "params": {"seconds": 1}, "watch_token": True},
                headers={"X-Request-ID": "submit-logs-1"},
            )
            assert posted.status_code == 202, posted.text
            task_id, token = posted.json()["id"], posted.json()["watch_token"]["token"]
            add = http.post("/api/tasks", json={"kind": "add", "params": {"x": 1, "y": 2}})
            skipped_id = add.json()["id"]
            cancelled = http.post(f"/api/tasks/{skipped_id}/cancel")  # behind `long`, it waits
            assert cancelled.json()["state"] == "cancelled", cancelled.text
            stream = SSEClient(f"{api.url}/api/tasks/{task_id}/events?access_token={token}")
            with stream:
                stream.wait_ended(60)
            insane = http.get(f"/api/tasks/{task_id}", headers={"X-Request-ID": "two words"})
            wait_until(
                lambda: f"skipping task {skipped_id}" in worker.stderr.read_text(),
                60,
                message="the worker to skip the cancelled task",
            )
    finally:
        api.stop()
        worker.stop()
        redis.stop()
    return Run(
        task_id=task_id,
        skipped_id=skipped_id,
        token=token,
        api_lines=_lines(api.process.log_path),
        worker_lines=_lines(worker.stderr),
        worker_stdout=_lines(worker.stdout),
        posted=posted,
        streamed=stream,
        insane=insane,
    )


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _parsed(lines: list[str]) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    return entries


def test_every_line_of_the_api_and_the_worker_is_a_json_object(run: Run) -> None:
    assert len(_parsed(run.api_lines)) > 5
    assert len(_parsed(run.worker_lines)) > 3
    assert all(CELERY_NOTICE.fullmatch(line) for line in run.worker_stdout), run.worker_stdout


def test_the_workers_lines_about_the_task_name_it_and_its_kind(run: Run) -> None:
    entries = _parsed(run.worker_lines)
    about = [e for e in entries if run.task_id in e["message"]]
    assert {e["logger"] for e in about} >= {"celery.worker.strategy", "celery.app.trace"}
    for entry in about:
        assert entry["task_id"] == run.task_id, entry
        assert entry["kind"] == "long", entry
        assert entry["worker"].startswith("logs@"), entry
    skipping = [e for e in entries if e["message"].startswith(f"skipping task {run.skipped_id}")]
    assert [(e["logger"], e["task_id"], e["kind"]) for e in skipping] == [
        ("taskstream.worker.runner", run.skipped_id, "add")
    ]


def test_the_apis_access_lines_carry_the_request_id_it_echoes(run: Run) -> None:
    access = [e for e in _parsed(run.api_lines) if e["logger"] == "uvicorn.access"]
    assert access
    assert all(re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", e["request_id"]) for e in access)
    assert run.posted.headers["x-request-id"] == "submit-logs-1"
    posted = [e for e in access if e["method"] == "POST" and e["path"] == "/api/tasks"]
    assert posted[0]["request_id"] == "submit-logs-1"
    assert posted[1]["request_id"] != "submit-logs-1"  # the next submission's: one of its own
    # A header that is not a sane token is replaced by an id of the server's own.
    assert re.fullmatch(r"[0-9a-f]{32}", run.insane.headers["x-request-id"])
    assert run.insane.headers["x-request-id"] in {e["request_id"] for e in access}
    streamed = [e for e in access if e["path"].startswith(f"/api/tasks/{run.task_id}/events")]
    assert [e["path"].partition("?")[2] for e in streamed] == ["access_token=***"]
    assert streamed[0]["request_id"] == run.streamed.headers["x-request-id"]


def test_no_line_holds_the_watch_token_an_api_key_or_the_session_secret(run: Run) -> None:
    for line in run.api_lines + run.worker_lines + run.worker_stdout:
        for secret in (run.token, API_KEY, SESSION_SECRET):
            assert secret not in line


def test_a_crash_is_answered_with_its_request_id_too() -> None:
    """The id is given outside the framework's error handling, whose 500 a crash gets."""
    app = create_app(Settings())

    async def crash() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/crash", crash)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get("/crash", headers={"X-Request-ID": "crash-1"})

    answer = run_apart(get())
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "crash-1"
