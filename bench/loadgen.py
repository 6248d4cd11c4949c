"""The load generator: thousands of SSE clients and HTTP submitters on raw sockets, in one uvloop
process pinned to its own core.

The runner starts it as `python -m bench.loadgen` and drives it with one JSON command per line on
stdin; it answers each with one JSON line on stdout. Every SSE client is a real TCP connection
(an `asyncio.Protocol`, no coroutine per client). It does not parse messages: it scans each read
for `event: succeeded` and the task id after it, counts `event: ` lines, and keeps the last
`id:`, so it stays far cheaper per delivered event than any server it measures.
"""

import asyncio
import errno
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import uvloop

FINAL = b"event: succeeded"
TASK_KEY = b'"task_id":"'
TASK_ID_LEN = 32
EVENT = b"event: "
ID_LINE = re.compile(rb"(?m)^id: ([^\r\n]+)")
HEAD_LIMIT = 65536

Json = dict[str, Any]


def cpu_now() -> float:
    times = os.times()
    return times.user + times.system


class Swarm:
    """Every SSE client of this process, and the counters they share."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.armed: list[Client] = []
        self.finals = 0
        self.target = -1
        self.done_at = 0.0
        self.armed_at = 0.0
        self.armed_cpu = 0.0


class Client(asyncio.Protocol):
    __slots__ = (
        "dropped",
        "dups",
        "events",
        "finals",
        "head",
        "ids",
        "last_id",
        "opened",
        "request",
        "resume",
        "status",
        "swarm",
        "tail",
        "transport",
    )

    def __init__(self, swarm: Swarm, request: bytes, record_ids: bool) -> None:
        self.swarm = swarm
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.tail = b""
        self.status = 0
        self.opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.finals: dict[bytes, float] = {}
        self.dups = 0
        self.events = 0
        self.last_id: bytes | None = None
        self.ids: list[bytes] | None = [] if record_ids else None
        self.dropped: str | None = None
        self.resume: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(0)
        if self.dropped is None:
            self.dropped = type(exc).__name__ if exc is not None else "closed by server"

    def close(self) -> None:
        if self.dropped is None:
            self.dropped = ""  # closed by us
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.status == 0:
            head = self.head + data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                self.head = head if len(head) < HEAD_LIMIT else b""
                return
            parts = head[: head.find(b"\r\n")].split()
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
            self.head = b""
            if not self.opened.done():
                self.opened.set_result(self.status)
            if self.status != 200:
                self.close()
                return
            data = head[end + 4 :]
            if not data:
                return
        now = time.monotonic()
        if self.tail:
            data = self.tail + data
        lf = data.rfind(b"\n\n")
        crlf = data.rfind(b"\r\n\r\n")
        end = max(lf + 2 if lf >= 0 else -1, crlf + 4 if crlf >= 0 else -1)
        if end < 0:
            self.tail = data
            return
        chunk = data[:end] if end < len(data) else data
        self.tail = data[end:] if end < len(data) else b""
        self.events += chunk.count(EVENT)
        i = chunk.find(FINAL)
        if i >= 0:
            swarm = self.swarm
            finals = self.finals
            while i >= 0:
                j = chunk.find(TASK_KEY, i)
                if j < 0:
                    break
                task_id = chunk[j + 11 : j + 11 + TASK_ID_LEN]
                if task_id in finals:
                    self.dups += 1
                else:
                    finals[task_id] = now
                    swarm.finals += 1
                    if swarm.finals == swarm.target:
                        swarm.done_at = now
                i = chunk.find(FINAL, j)
        k = chunk.rfind(b"\nid: ")
        start = k + 5 if k >= 0 else (4 if chunk.startswith(b"id: ") else -1)
        if start >= 0:
            self.last_id = chunk[start : chunk.find(b"\n", start)].rstrip(b"\r")
        if self.ids is not None:
            self.ids.extend(ID_LINE.findall(chunk))


# --- HTTP requests (submissions) ---------------------------------------------------------------


class Http:
    """A keep-alive HTTP/1.1 connection that sends one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            content = b"".join(part[:-2] for part in parts)
        else:
            content = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    return type(exc).__name__


# --- the commands ------------------------------------------------------------------------------


class LoadGen:
    def __init__(self) -> None:
        self.swarm = Swarm()

    async def connect(
        self,
        host: str,
        port: int,
        path: str,
        count: int,
        ramp: int = 500,
        headers_timeout: float = 15.0,
        last_ids: list[str | None] | None = None,
        record_ids: bool = False,
        retries: int = 1,
        track: bool = False,
    ) -> Json:
        """Opens `count` clients, `ramp` at a time; a client that fails is retried `retries`
        times, and every failed attempt is counted by its reason. With `track`, the new clients
        are armed as they connect, so what they receive at once (a catch-up) is counted."""
        loop = asyncio.get_running_loop()
        failures: dict[str, int] = {}
        started = time.monotonic()
        swarm = self.swarm
        if track:
            swarm.armed = []
            swarm.finals = 0
            swarm.target = -1
            swarm.done_at = 0.0
            swarm.armed_at = started
            swarm.armed_cpu = cpu_now()

        async def one(index: int) -> "Client | None":
            headers = ""
            if last_ids is not None and last_ids[index] is not None:
                headers = f"Last-Event-ID: {last_ids[index]}\r\n"
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
                f"Cache-Control: no-cache\r\n{headers}\r\n"
            ).encode()
            for _attempt in range(retries + 1):
                client = Client(self.swarm, request, record_ids)
                client.resume = last_ids[index] if last_ids is not None else None
                reason: str
                try:
                    await loop.create_connection(lambda c=client: c, host, port)  # type: ignore[misc]
                    status = await asyncio.wait_for(asyncio.shield(client.opened), headers_timeout)
                    if status == 200:
                        if track:
                            swarm.armed.append(client)
                        return client
                    reason = f"HTTP {status}" if status > 0 else "closed before headers"
                except TimeoutError:
                    reason = "no headers in time"
                except OSError as exc:
                    reason = _error_name(exc)
                client.close()
                failures[reason] = failures.get(reason, 0) + 1
            return None

        opened: list[Client] = []
        for first in range(0, count, ramp):
            batch = await asyncio.gather(*(one(i) for i in range(first, min(count, first + ramp))))
            opened.extend(c for c in batch if c is not None)
            if batch.count(None) > len(batch) // 2 and first + ramp < count:
                # Most of a ramp failed: the server is past its limit, stop knocking.
                failures["not tried: the ramp before failed"] = count - first - ramp
                break
        self.swarm.clients.extend(opened)
        return {
            "connected": len(opened),
            "failures": failures,
            "started": started,
            "seconds": time.monotonic() - started,
        }

    async def arm(self) -> Json:
        """Starts counting: from now on, every client's finals are recorded afresh."""
        swarm = self.swarm
        swarm.armed = [c for c in swarm.clients if c.dropped is None]
        for client in swarm.armed:
            client.finals.clear()
            client.dups = client.events = 0
        swarm.finals = 0
        swarm.target = -1
        swarm.done_at = 0.0
        swarm.armed_at = time.monotonic()
        swarm.armed_cpu = cpu_now()
        return {"armed": len(swarm.armed)}

    async def wait(self, tasks: int, patience: float, idle: float) -> Json:
        """Until every armed client has the final event of `tasks` tasks, or nothing new
        arrived for `idle` seconds, or `patience` seconds passed."""
        swarm = self.swarm
        expected = len(swarm.armed) * tasks
        swarm.target = expected
        if swarm.finals >= expected:
            swarm.done_at = swarm.done_at or time.monotonic()
        started = last_change = time.monotonic()
        seen = swarm.finals
        while swarm.finals < expected:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if swarm.finals != seen:
                seen, last_change = swarm.finals, now
            if now - started > patience or now - last_change > idle:
                break
        return {
            "expected": expected,
            "finals": swarm.finals,
            "done_at": swarm.done_at if swarm.finals >= expected else None,
            "waited": time.monotonic() - started,
        }

    async def collect(self, submits: dict[str, float]) -> Json:
        """Latency of each (client, task) in ms from the task's submission, and the counts."""
        swarm = self.swarm
        keys = {task_id.encode(): (task_id, at) for task_id, at in submits.items()}
        latencies: list[float] = []
        per_task: dict[str, list[float]] = {task_id: [] for task_id in submits}
        lost = dups = events = 0
        dropped: dict[str, int] = {}
        for client in swarm.armed:
            dups += client.dups
            events += client.events
            if client.dropped:
                dropped[client.dropped] = dropped.get(client.dropped, 0) + 1
            finals = client.finals
            for key, (task_id, at) in keys.items():
                arrived = finals.get(key)
                if arrived is None:
                    lost += 1
                    continue
                latency = round((arrived - at) * 1000, 2)
                latencies.append(latency)
                per_task[task_id].append(latency)
        spread = {
            task_id: [len(values), min(values), max(values)]
            for task_id, values in per_task.items()
            if values
        }
        return {
            "clients": len(swarm.armed),
            "latencies_ms": latencies,
            "per_task": spread,
            "lost": lost,
            "duplicates": dups,
            "events": events,
            "dropped": dropped,
            "cpu_seconds": cpu_now() - swarm.armed_cpu,
            "wall_seconds": time.monotonic() - swarm.armed_at,
        }

    async def last_ids(self) -> Json:
        return {
            "last_ids": [
                c.last_id.decode() if c.last_id is not None else None
                for c in self.swarm.clients
                if c.dropped is None
            ]
        }

    async def ids(self) -> Json:
        """Each armed client's Last-Event-ID and the ids it has read since."""
        return {
            "clients": [[c.resume, [i.decode() for i in c.ids or ()]] for c in self.swarm.armed]
        }

    async def close(self) -> Json:
        for client in self.swarm.clients:
            client.close()
        closed = len(self.swarm.clients)
        self.swarm.clients = []
        self.swarm.armed = []
        await asyncio.sleep(0.2)
        return {"closed": closed}

    async def submit(
        self, host: str, port: int, count: int, rate: float, body: str, path: str = "/api/tasks"
    ) -> Json:
        """`count` POSTs at a steady `rate` per second (open loop: a slow answer does not delay
        the next request). Returns each task's id and when its request was sent."""
        payload = body.encode()
        idle: list[Http] = []
        results: list[Json] = []
        started = time.monotonic()

        async def post(index: int) -> None:
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            conn = idle.pop() if idle else Http(host, port)
            sent = time.monotonic()
            try:
                status, content = await conn.request("POST", path, payload)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.close()
                results.append({"status": 0, "error": _error_name(exc), "sent": sent})
                return
            answered = time.monotonic()
            idle.append(conn)
            task_id = None
            if status == 202:
                task_id = json.loads(content).get("id")
            results.append({"status": status, "id": task_id, "sent": sent, "answered": answered})

        await asyncio.gather(*(post(i) for i in range(count)))
        for conn in idle:
            conn.close()
        return {"results": results}

    async def post_load(
        self,
        host: str,
        port: int,
        concurrency: int,
        body: str,
        duration: float = 0.0,
        count: int = 0,
        path: str = "/api/tasks",
    ) -> Json:
        """`concurrency` requests in flight (closed loop) for `duration` s or `count` requests."""
        payload = body.encode()
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        errors: dict[str, int] = {}
        started = time.monotonic()
        deadline = started + duration if duration else float("inf")
        remaining = [count if count else 1 << 62]

        async def runner() -> None:
            conn = Http(host, port)
            while remaining[0] > 0 and time.monotonic() < deadline:
                remaining[0] -= 1
                sent = time.monotonic()
                try:
                    status, _ = await conn.request("POST", path, payload)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    conn.close()
                    name = _error_name(exc)
                    errors[name] = errors.get(name, 0) + 1
                    await asyncio.sleep(0.01)
                    continue
                latencies.append((time.monotonic() - sent) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            conn.close()

        cpu = cpu_now()
        await asyncio.gather(*(runner() for _ in range(concurrency)))
        return {
            "seconds": time.monotonic() - started,
            "started": started,
            "latencies_ms": [round(v, 3) for v in latencies],
            "statuses": statuses,
            "errors": errors,
            "cpu_seconds": cpu_now() - cpu,
        }


async def serve() -> None:
    gen = LoadGen()
    commands: dict[str, Callable[..., Awaitable[Json]]] = {
        "connect": gen.connect,
        "arm": gen.arm,
        "wait": gen.wait,
        "collect": gen.collect,
        "last_ids": gen.last_ids,
        "ids": gen.ids,
        "close": gen.close,
        "submit": gen.submit,
        "post_load": gen.post_load,
    }
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout
    while line := await reader.readline():
        command = json.loads(line)
        op = command.pop("op")
        if op == "exit":
            break
        try:
            reply = await commands[op](**command)
        except Exception as exc:  # report it to the runner rather than die
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply, separators=(",", ":")) + "\n")
        out.flush()
    await gen.close()


def main() -> None:
    uvloop.run(serve())


if __name__ == "__main__":
    main()
