"""The processes a benchmark runs: a private redis-server, Celery workers and the servers under
test, each pinned to the server core, plus what /proc says about their memory and CPU.

Nothing here touches a Redis the machine already runs: every Redis is a fresh `redis-server` on a
free port of its own, with its data in a temporary folder.
"""

import contextlib
import os
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from tests.support.processes import Process, free_port

from taskstream.processes import NotServing, RedisServerSpec

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def raise_file_limit() -> int:
    """Soft limit of open files up to the hard limit (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True)
class Cores:
    """Servers (Redis, workers, API) on one set of CPUs, the load generator on another."""

    servers: frozenset[int]
    load: frozenset[int]

    @classmethod
    def split(cls) -> "Cores":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(frozenset(cpus), frozenset(cpus))
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:2]))

    @property
    def pinned(self) -> bool:
        return self.servers != self.load


def pinned(
    name: str,
    args: Sequence[str],
    log_dir: Path,
    cpus: frozenset[int],
    env: Mapping[str, str] | None = None,
) -> Process:
    """A child process pinned to `cpus` (with every process it starts), output in a log file."""
    return Process(name, list(args), log_dir, {"PYTHONUNBUFFERED": "1", **(env or {})}, cpus)


class RedisServer:
    """A private redis-server on a free port, with room for one connection per SSE client."""

    def __init__(self, data_dir: Path, cpus: frozenset[int]) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # maxclients is capped by Redis to the open-file limit less 32.
        options = {"maxclients": "50000", "tcp-backlog": "4096"}
        self.spec = RedisServerSpec(free_port(), data_dir, options=options)
        self.port = self.spec.port
        self.process = pinned(f"redis-{self.port}", self.spec.command(), data_dir, cpus)
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        return self.spec.url

    def client(self) -> "redis.Redis":
        if self._client is None:
            self._client = redis.Redis(port=self.port, decode_responses=True, socket_timeout=30)
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
        self.process.kill()


# --- what /proc says -------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and every process under it (gunicorn's workers, Celery's pool)."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return found


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """User plus system CPU time of `pid` (and its descendants) so far."""
    total = 0
    for each in process_tree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{each}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_bytes(pid: int, tree: bool = True) -> int:
    total = 0
    for each in process_tree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{each}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * PAGE_SIZE
        except OSError:
            continue
    return total


def cpu_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) clock ticks since boot, from /proc/stat."""
    ticks: dict[int, tuple[int, int]] = {}
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                numbers = [int(v) for v in values[:8]]
                idle = numbers[3] + numbers[4]
                ticks[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return ticks


def busy_since(before: dict[int, tuple[int, int]]) -> dict[int, float]:
    """Per CPU: the fraction of time it was busy since `before` (all processes, kernel too)."""
    now = cpu_ticks()
    busy: dict[int, float] = {}
    for cpu, (b0, t0) in before.items():
        b1, t1 = now.get(cpu, (b0, t0))
        busy[cpu] = round((b1 - b0) / (t1 - t0), 3) if t1 > t0 else 0.0
    return busy


def machine_busy(seconds: float = 1.0) -> float:
    """Cores' worth of CPU busy over `seconds`: others' load while the bench is idle."""
    before = cpu_ticks()
    time.sleep(seconds)
    return round(sum(busy_since(before).values()), 2)


def machine() -> dict[str, object]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    uname = os.uname()
    return {
        "cpu": model,
        "nproc": len(os.sched_getaffinity(0)),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": f"{uname.sysname} {uname.release}",
        "python": sys.version.split()[0],
        "open_files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
