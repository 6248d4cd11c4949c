"""The runner's handle on the load generator processes (`bench/loadgen.py`)."""

import asyncio
import contextlib
import json
import sys
from typing import Any

from bench.procs import ROOT

Json = dict[str, Any]


class LoadGenError(RuntimeError):
    pass


class LoadGen:
    """One or more load generator processes; clients are spread evenly over them and their
    answers merged. Submissions always go through the first."""

    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, count: int = 1) -> "LoadGen":
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.loadgen",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
                limit=1 << 30,
            )
            for _ in range(count)
        ]
        return cls(procs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def _call(self, proc: asyncio.subprocess.Process, op: str, **args: Any) -> Json:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise LoadGenError(f"the load generator exited during {op!r}")
        reply: Json = json.loads(line)
        if "error" in reply:
            raise LoadGenError(f"{op}: {reply['error']}")
        return reply

    async def each(self, op: str, per_proc: list[Json] | None = None, **args: Any) -> list[Json]:
        extra = per_proc or [{} for _ in self.procs]
        return list(
            await asyncio.gather(
                *(self._call(p, op, **args, **e) for p, e in zip(self.procs, extra, strict=True))
            )
        )

    async def first(self, op: str, **args: Any) -> Json:
        return await self._call(self.procs[0], op, **args)

    def split(self, count: int) -> list[int]:
        n = len(self.procs)
        return [count // n + (1 if i < count % n else 0) for i in range(n)]

    async def connect(
        self, port: int, count: int, *, last_ids: list[str | None] | None = None, **args: Any
    ) -> Json:
        shares = self.split(count)
        per: list[Json] = [{"count": share} for share in shares]
        if last_ids is not None:
            offset = 0
            for item, share in zip(per, shares, strict=True):
                item["last_ids"] = last_ids[offset : offset + share]
                offset += share
        replies = await self.each(
            "connect", per, host="127.0.0.1", port=port, path="/api/events", **args
        )
        return {**_connections(replies), "started": min(r["started"] for r in replies)}

    async def arm(self) -> int:
        return sum(r["armed"] for r in await self.each("arm"))

    async def wait(self, tasks: int, patience: float, idle: float) -> Json:
        replies = await self.each("wait", tasks=tasks, patience=patience, idle=idle)
        done = [r["done_at"] for r in replies]
        return {
            "expected": sum(r["expected"] for r in replies),
            "finals": sum(r["finals"] for r in replies),
            "done_at": None if None in done else max(d for d in done if d is not None),
        }

    async def collect(self, submits: dict[str, float]) -> Json:
        replies = await self.each("collect", submits=submits)
        merged: Json = {
            "clients": 0,
            "latencies_ms": [],
            "per_task": {},
            "lost": 0,
            "duplicates": 0,
            "events": 0,
            "dropped": {},
            "cpu_seconds": 0.0,
            "wall_seconds": 0.0,
        }
        for reply in replies:
            for name in ("clients", "lost", "duplicates", "events", "cpu_seconds"):
                merged[name] += reply[name]
            merged["wall_seconds"] = max(merged["wall_seconds"], reply["wall_seconds"])
            merged["latencies_ms"].extend(reply["latencies_ms"])
            for reason, n in reply["dropped"].items():
                merged["dropped"][reason] = merged["dropped"].get(reason, 0) + n
            for task_id, (n, low, high) in reply["per_task"].items():
                old = merged["per_task"].get(task_id)
                if old is None:
                    merged["per_task"][task_id] = [n, low, high]
                else:
                    merged["per_task"][task_id] = [old[0] + n, min(old[1], low), max(old[2], high)]
        return merged

    async def last_ids(self) -> list[str | None]:
        ids: list[str | None] = []
        for reply in await self.each("last_ids"):
            ids.extend(reply["last_ids"])
        return ids

    async def ids(self) -> list[tuple[str | None, list[str]]]:
        """Each tracked client's Last-Event-ID and the ids it read since."""
        ids: list[tuple[str | None, list[str]]] = []
        for reply in await self.each("ids"):
            ids.extend((resume, got) for resume, got in reply["clients"])
        return ids

    async def close_clients(self) -> None:
        await self.each("close")

    async def watch(self, port: int, path: str, count: int, ramp: int = 500) -> Json:
        """`count` watchers of one task's stream at `path`, spread over the processes."""
        per: list[Json] = [{"count": share} for share in self.split(count)]
        replies = await self.each("watch", per, host="127.0.0.1", port=port, path=path, ramp=ramp)
        return _connections(replies)

    async def watch_wait(self, patience: float, idle: float) -> Json:
        replies = await self.each("watch_wait", patience=patience, idle=idle)
        done = [r["done_at"] for r in replies]
        return {
            "watchers": sum(r["watchers"] for r in replies),
            "done": sum(r["done"] for r in replies),
            "done_at": None if None in done else max(d for d in done if d is not None),
            "cpu_seconds": sum(r["cpu_seconds"] for r in replies),
            "wall_seconds": max(r["wall_seconds"] for r in replies),
        }

    async def watch_collect(self, chunks: int) -> Json:
        """Every watcher's chunks checked; the processes' counts summed and their latencies
        merged (with one process the percentiles are its own; with more, from the union of
        each one's 1,001 quantiles, weighted by its count)."""
        replies = await self.each("watch_collect", chunks=chunks)
        merged: Json = {"finals": {}, "errors": {}, "dropped": {}}
        for name in ("watchers", "expected", "received", "lost", "duplicates", "reordered",
                     "unexpected", "offset_gaps", "offset_repeats", "truncated", "events",
                     "output_events", "bytes", "latencies"):  # fmt: skip
            merged[name] = sum(r[name] for r in replies)
        for reply in replies:
            for name in ("finals", "errors", "dropped"):
                for key, n in reply[name].items():
                    merged[name][key] = merged[name].get(key, 0) + n
        merged["client_p50_ms"] = sorted(v for r in replies for v in r["client_p50_ms"])
        merged["client_p99_ms"] = sorted(v for r in replies for v in r["client_p99_ms"])
        names = ("latency_p50_ms", "latency_p99_ms", "latency_max_ms", "latency_min_ms")
        if len(replies) == 1:
            merged |= {name: replies[0][name] for name in names}
            merged["exact"] = replies[0]["exact"]
            return merged
        points: list[tuple[float, float]] = sorted(
            (float(q), r["latencies"] / len(r["quantiles"]))
            for r in replies
            for q in r["quantiles"]
        )
        total = sum(w for _q, w in points)

        def at(share: float) -> float | None:
            running = 0.0
            for q, w in points:
                running += w
                if running >= share * total:
                    return q
            return points[-1][0] if points else None

        merged |= {
            "latency_p50_ms": at(0.5),
            "latency_p99_ms": at(0.99),
            "latency_max_ms": max((r["latency_max_ms"] or 0) for r in replies),
            "latency_min_ms": min((r["latency_min_ms"] or 0) for r in replies),
            "exact": False,
        }
        return merged

    async def watch_close(self) -> None:
        await self.each("watch_close")

    async def submit(
        self, port: int, count: int, rate: float, body: str, path: str = "/api/tasks"
    ) -> list[Json]:
        reply = await self.first(
            "submit", host="127.0.0.1", port=port, count=count, rate=rate, body=body, path=path
        )
        results: list[Json] = reply["results"]
        return results

    async def post_load(self, port: int, concurrency: int, body: str, **args: Any) -> Json:
        return await self.first(
            "post_load", host="127.0.0.1", port=port, concurrency=concurrency, body=body, **args
        )

    def kill(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(OSError):  # it may be gone already
                    proc.stdin.write(b'{"op": "exit"}\n')
                    await proc.stdin.drain()
                    proc.stdin.close()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _connections(replies: list[Json]) -> Json:
    """The load generator processes' connection replies, summed: clients connected, failures by
    reason, and the longest time taken."""
    failures: dict[str, int] = {}
    for reply in replies:
        for reason, n in reply["failures"].items():
            failures[reason] = failures.get(reason, 0) + n
    return {
        "connected": sum(r["connected"] for r in replies),
        "failures": failures,
        "seconds": max(r["seconds"] for r in replies),
    }
