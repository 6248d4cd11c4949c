"""One design under test on real processes: a fresh private Redis, its Celery worker (one pool
process) and its API server, the servers pinned to the server core."""

import json
import re
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import Process, free_port
from tests.support.waiting import wait_until

from bench.baselines.celery_app import QUEUE as BENCH_QUEUE
from bench.baselines.celery_app import READY_KEY
from bench.procs import RedisServer, pinned
from taskstream.processes import WORKER_APP, WorkerSpec

PY = sys.executable
EXCEPTION_LINE = re.compile(r"^(?:[a-z_]+\.)*[A-Z]\w*(?:Error|Exception|Exceeded)\b.*")
ADD_BODY = json.dumps({"kind": "add", "params": {"x": 1, "y": 2}})


@dataclass(frozen=True)
class Design:
    key: str
    label: str
    short: str
    # Tasks run on taskstream's worker and write the event log `ts:events` (so clients can resume).
    event_log: bool
    how: str


TASKSTREAM = Design(
    "taskstream",
    "taskstream (FastAPI, one XREAD reader)",
    "taskstream",
    True,
    "`python -m taskstream.api` (uvicorn with uvloop and httptools, as shipped), LOG_LEVEL=WARNING",
)
FLASK = Design(
    "flask",
    "Flask + gunicorn/gevent, pub/sub per client",
    "Flask/gevent",
    False,
    "gunicorn -k gevent -w 1 --worker-connections 20000 --backlog 4096 --timeout 300; "
    "redis-py pool max_connections=20000",
)
FASTAPI = Design(
    "fastapi",
    "FastAPI + sse-starlette, pub/sub per client",
    "FastAPI pub/sub",
    False,
    "uvicorn --loop uvloop --http httptools --no-access-log --backlog 4096; "
    "redis.asyncio pool max_connections=20000",
)
BARE = Design(
    "bare",
    "bare asyncio + uvloop, one XREAD reader",
    "bare asyncio",
    True,
    "`python -m bench.baselines.bare_sse`: uvloop, asyncio transports, backlog 4096",
)
DESIGNS = {d.key: d for d in (TASKSTREAM, FLASK, FASTAPI, BARE)}
# The token stream's pub/sub design: `fastapi`'s, with a per-task channel and a task that
# publishes each token (its own app, so the other scenarios' `fastapi` stays as it is).
PUBSUB_TOKENS = Design(
    "pubsub_tokens",
    "FastAPI + sse-starlette, pub/sub per client",
    "FastAPI pub/sub",
    False,
    "uvicorn as `fastapi`; `bench.baselines.pubsub_tokens`: the Celery task PUBLISHes each token, "
    "each client's generator subscribes on its own connection",
)
# The designs of the token stream, by the `--designs` key that selects each.
TOKEN_DESIGNS = {"taskstream": TASKSTREAM, "bare": BARE, "fastapi": PUBSUB_TOKENS}
# The benchmark's task kinds (`bench/kinds.py`), for taskstream's API and worker and the bare
# server alike.
KIND_MODULES = "bench.kinds"


class Stack:
    def __init__(
        self,
        design: Design,
        directory: Path,
        cpus: frozenset[int],
        *,
        worker: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.design = design
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(directory / "redis", cpus)
        self.port = free_port()
        self.cpus = cpus
        self.env = {"REDIS_URL": self.redis.url, "LOG_LEVEL": "WARNING"}
        if design.key == "taskstream":
            # Like the baselines, no metrics unless a measurement asks for them.
            self.env["METRICS_ENABLED"] = "false"
        if design.event_log:
            self.env["TASK_KIND_MODULES"] = KIND_MODULES
        self.env |= env or {}
        self.worker = self._worker() if worker else None
        self.server = self._server()

    @property
    def queue(self) -> str:
        return "taskstream" if self.design.event_log else BENCH_QUEUE

    def _worker(self) -> Process:
        spec = WorkerSpec(
            self.redis.url,
            f"bench-{self.port}",
            app=WORKER_APP if self.design.event_log else "bench.baselines.celery_app",
            loglevel="WARNING",
            concurrency=1,
            queues=(self.queue,),
            standalone=True,
            env=self.env,
        )
        env = spec.environment()
        return pinned(f"worker-{self.port}", spec.command(), self.directory, self.cpus, env)

    def _server(self) -> Process:
        port = str(self.port)
        env = dict(self.env)
        match self.design.key:
            case "taskstream":
                args = [PY, "-m", "taskstream.api"]
                env |= {"API_HOST": "127.0.0.1", "API_PORT": port}
            case "flask":
                args = [PY, "-m", "gunicorn", "-k", "gevent", "-w", "1"]
                args += ["--worker-connections", "20000", "--backlog", "4096"]
                args += ["--timeout", "300", "--graceful-timeout", "5", "--keep-alive", "30"]
                args += ["--log-level", "warning", "-b", f"127.0.0.1:{port}"]
                args += ["bench.baselines.flask_app:app"]
            case "fastapi" | "pubsub_tokens":
                module = "fastapi_app" if self.design.key == "fastapi" else "pubsub_tokens"
                args = [PY, "-m", "uvicorn", f"bench.baselines.{module}:app"]
                args += ["--host", "127.0.0.1", "--port", port, "--loop", "uvloop"]
                args += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
                args += ["--backlog", "4096", "--timeout-keep-alive", "30"]
            case "bare":
                args = [PY, "-m", "bench.baselines.bare_sse", "--port", port]
            case _:
                raise ValueError(self.design.key)
        return pinned(f"{self.design.key}-{self.port}", args, self.directory, self.cpus, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Stack":
        self.redis.start()
        self.server.start()
        if self.worker is not None:
            self.start_worker()
        self.wait_server()
        return self

    def start_worker(self) -> None:
        assert self.worker is not None
        self.worker.start()
        client = self.redis.client()
        worker = self.worker

        def ready() -> bool:
            if not worker.running:
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
            if self.design.event_log:
                return bool(client.zcard("ts:workers"))
            return bool(client.get(READY_KEY))

        wait_until(ready, 60, message=f"{self.design.key} worker")

    def wait_server(self) -> None:
        def up() -> bool:
            if not self.server.running:
                raise RuntimeError(f"server exited:\n{self.server.log_tail()}")
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                return bool(reply.status == 200)

        wait_until(up, 60, message=f"{self.design.key} server")

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as reply:
            return json.loads(reply.read())

    def get_status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def stop(self) -> None:
        """Kills everything: the measurements are over, and a fresh stack follows."""
        for process in [self.server, *([self.worker] if self.worker else [])]:
            process.kill()
        self.redis.stop()

    def log_errors(self) -> dict[str, int]:
        """The exceptions in the server's log (their last traceback lines), counted."""
        counts: dict[str, int] = {}
        if not self.server.log_path.exists():
            return counts
        for line in self.server.log_path.read_text(errors="replace").splitlines():
            match = EXCEPTION_LINE.match(line)
            if match:
                key = match.group(0).split(" '")[0][:90]
                counts[key] = counts.get(key, 0) + 1
        return counts

    def queue_drained(self) -> bool:
        """No message waits in the queue and none is delivered but unacknowledged."""
        client = self.redis.client()
        return not client.llen(self.queue) and not client.hlen("unacked")

    def wait_drained(self, timeout: float) -> float:
        """Waits until the queue stays drained for 50 ms; returns when it was first seen so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue_drained():
                seen = time.monotonic()
                time.sleep(0.05)
                if self.queue_drained():
                    return seen
            time.sleep(0.005)
        raise TimeoutError("the queue was not drained in time")
