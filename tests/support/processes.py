"""Real processes for the tests: a private redis-server, Celery workers and API servers.

Each runs on a free port of its own; nothing touches a Redis the machine may already run.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import redis

from taskstream.processes import NotServing, RedisServerSpec, WorkerSpec
from tests.support.waiting import GiveUp, wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process with its output in a log file, stopped by SIGTERM, then SIGKILL."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_dir: Path,
        env: Mapping[str, str],
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.env = {**os.environ, **env}
        self.cpus = cpus  # pinned to these, with all it starts (the benchmarks use this)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=self._pin if self.cpus else None,
            )
        return self

    def _pin(self) -> None:
        assert self.cpus is not None
        os.sched_setaffinity(0, self.cpus)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # children left in its group, if any
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class RedisServer:
    def __init__(
        self, data_dir: Path, *, appendonly: bool = False, password: str | None = None
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # Streams of many small nodes, so that reads across node boundaries get exercised.
        options = {"stream-node-max-entries": "10"}
        self.spec = RedisServerSpec(
            free_port(), data_dir, appendonly=appendonly, password=password, options=options
        )
        self.process = Process(f"redis-{self.port}", self.spec.command(), data_dir, {})
        self._client: redis.Redis | None = None

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def password(self) -> str | None:
        return self.spec.password

    @property
    def url(self) -> str:
        return self.spec.url

    def client(self) -> "redis.Redis":
        """One client for the tests' own look at Redis, closed when the server stops."""
        if self._client is None:
            self._client = redis.Redis(
                port=self.port, password=self.password, decode_responses=True, socket_timeout=5
            )
        return self._client

    def start(self) -> "RedisServer":
        self.process.start()
        assert self.process.proc is not None
        try:
            self.spec.wait_until_serving(self.process.proc)
        except NotServing as exc:
            raise RuntimeError(f"{exc}:\n{self.process.log_tail()}") from None
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.process.stop()


class Worker:
    def __init__(
        self,
        redis_url: str,
        log_dir: Path,
        *,
        name: str = "w1",
        queues: str = "taskstream",
        concurrency: int = 2,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.spec = WorkerSpec(
            redis_url,
            name,
            concurrency=concurrency,
            queues=(queues,),
            standalone=True,
            # A heartbeat a second: tests that wait for a worker, or for one to be lost, wait less.
            env={"WORKER_HEARTBEAT_SECONDS": "1", **(env or {})},
        )
        self.process = Process(
            f"worker-{name}", self.spec.command(), log_dir, self.spec.environment()
        )

    def start(self, redis_client: "redis.Redis | None" = None) -> "Worker":
        self.process.start()
        if redis_client is not None:
            wait_until(
                lambda: any(
                    str(n).startswith(f"{self.name}@")
                    for n in redis_client.zrange("ts:workers", 0, -1)
                ),
                60,
                message=lambda: f"worker {self.name} heartbeat\n{self.process.log_tail()}",
            )
        return self

    def stop(self) -> None:
        self.process.stop(timeout=30)


class ApiServer:
    def __init__(
        self,
        redis_url: str,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "api",
    ) -> None:
        self.port = free_port()
        environment = {
            "REDIS_URL": redis_url,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self.port),
            **(env or {}),
        }
        args = [sys.executable, "-m", "taskstream.api"]
        self.process = Process(f"{name}-{self.port}", args, log_dir, environment)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ApiServer":
        if self.process.running:
            raise RuntimeError("already running")
        self.process.start()

        def up() -> bool:
            if not self.process.running:
                raise GiveUp(f"API exited:\n{self.process.log_tail()}")
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

        wait_until(up, 60, message=lambda: f"API to answer\n{self.process.log_tail()}")
        return self

    def stop(self) -> int | None:
        return self.process.stop()

    def restart(self) -> "ApiServer":
        """Stops and starts again on the same port, as a deploy would."""
        self.stop()
        return self.start()


class WebServer:
    """The built web app, served by `python -m taskstream.web`."""

    def __init__(
        self, api_url: str, web_root: Path, log_dir: Path, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        environment = {
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.port),
            "WEB_ROOT": str(web_root),
            "API_PUBLIC_URL": api_url,
        }
        args = [sys.executable, "-m", "taskstream.web"]
        self.process = Process(f"web-{self.port}", args, log_dir, environment)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "WebServer":
        self.process.start()

        def up() -> bool:
            if not self.process.running:
                raise GiveUp(f"web server exited:\n{self.process.log_tail()}")
            return httpx.get(f"{self.url}/config.js", timeout=2).status_code == 200

        wait_until(up, 60, message=lambda: f"web server to answer\n{self.process.log_tail()}")
        return self

    def stop(self) -> None:
        self.process.stop()
