"""The load generator: thousands of SSE clients and HTTP submitters on raw sockets, in one uvloop
process pinned to its own core.

The runner starts it as `python -m bench.loadgen` and drives it with one JSON command per line on
stdin; it answers each with one JSON line on stdout. Every SSE client is a real TCP connection
(an `asyncio.Protocol`, no coroutine per client). It does not parse messages: it scans each read
for `event: succeeded` and the task id after it, counts `event: ` lines, and keeps the last
`id:`, so it stays far cheaper per delivered event than any server it measures.

The token stream's watchers (`Watcher`) do even less while they are measured: each keeps every
read with the time it arrived and looks for the final event, nothing more. After the run,
`watch_collect` undoes the HTTP framing, parses every SSE message and every chunk in it
(`<seq>:<write time>;`, several to one `output` event when the server coalesces them), and counts
each client's chunks lost, duplicated and out of order, and their write-to-receipt latencies.
"""

import asyncio
import contextlib
import errno
import json
import math
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

import uvloop

FINAL = b"event: succeeded"
TASK_KEY = b'"task_id":"'
TASK_ID_LEN = 32
EVENT = b"event: "
ID_LINE = re.compile(rb"(?m)^id: ([^\r\n]+)")
HEAD_LIMIT = 65536
FINAL_EVENT = re.compile(rb"event: (?:succeeded|failed|cancelled)\b")
SAMPLE_BUDGET = 2_000_000  # latencies kept for the pooled percentiles (exact up to this many)

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


# --- the token stream's watchers --------------------------------------------------------------


class Watchers:
    """Every watcher of this process, and when they were all done."""

    def __init__(self) -> None:
        self.clients: list[Watcher] = []
        self.done = 0
        self.target = -1
        self.done_at = 0.0
        self.last_read = 0.0


class Watcher(asyncio.Protocol):
    """One client of a task's SSE stream: every read kept with its arrival time (`time.time()`,
    the clock the chunks carry), and done at the final event or when the server closes."""

    __slots__ = (
        "done",
        "dropped",
        "group",
        "head",
        "opened",
        "reads",
        "request",
        "status",
        "tail",
        "transport",
    )

    def __init__(self, group: Watchers, request: bytes) -> None:
        self.group = group
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.reads: list[tuple[float, bytes]] = []
        self.head = b""
        self.tail = b""
        self.status = 0
        self.done = False
        self.dropped: str | None = None
        self.opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(0)
        if not self.done and self.dropped is None:
            self.dropped = type(exc).__name__ if exc is not None else "closed before the final"
        self._finish(time.time())

    def close(self) -> None:
        if self.dropped is None and not self.done:
            self.dropped = "closed by us before the final"
        if self.transport is not None:
            self.transport.abort()

    def _finish(self, now: float) -> None:
        if self.status != 200:
            return  # a failed attempt: not one of the watchers counted
        if not self.done:
            self.done = True
            group = self.group
            group.done += 1
            if group.done == group.target:
                group.done_at = now

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.reads.append((now, data))
        self.group.last_read = now
        if self.status == 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > HEAD_LIMIT:
                    self.head = b""
                return
            parts = self.head[: self.head.find(b"\r\n")].split()
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
            self.head = b""
            if not self.opened.done():
                self.opened.set_result(self.status)
            if self.status != 200:
                self.close()
                return
        if not self.done and FINAL_EVENT.search(self.tail + data):
            self._finish(now)
        self.tail = data[-24:]


def http_body(reads: list[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """The response body in `reads`, the head skipped and chunked encoding undone, piece by piece
    with the arrival time of the read each piece came in."""
    head = b""
    first = 0
    for first, (_at, data) in enumerate(reads):  # noqa: B007 (the index is used after the loop)
        head += data
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            break
    else:
        return
    chunked = b"transfer-encoding: chunked" in head[:end].lower()
    pieces = [(reads[first][0], head[end + 4 :]), *reads[first + 1 :]]
    if not chunked:
        yield from pieces
        return
    remaining = 0  # bytes left of the chunk being read; 0: reading a size line
    line = b""
    for at, data in pieces:
        out = []
        pos, n = 0, len(data)
        while pos < n:
            if remaining:
                take = min(remaining, n - pos)
                out.append(data[pos : pos + take])
                pos += take
                remaining -= take
                continue
            j = data.find(b"\n", pos)
            if j < 0:
                line += data[pos:]
                break
            line += data[pos:j]
            pos = j + 1
            text, line = line.strip(), b""
            if not text:
                continue  # the CRLF after a chunk's data
            remaining = int(text.split(b";")[0], 16)
            if remaining == 0:  # the last chunk
                if out:
                    yield at, b"".join(out)
                return
        if out:
            yield at, b"".join(out)


def sse_messages(body: Iterator[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """Each complete SSE message (LF line ends) with the arrival time of its last byte."""
    tail = b""
    for at, piece in body:
        buf = (tail + piece).replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            tail = buf
            continue
        tail = buf[end + 2 :]
        for message in buf[:end].split(b"\n\n"):
            yield at, message


def _sorted_percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 3)


def check_watcher(watcher: Watcher, chunks: int) -> Json:
    """One watcher's stream, parsed: its chunks' latencies (ms) and what was wrong with it."""
    seen = bytearray(chunks)
    highest = -1
    latencies: list[float] = []
    dups = reordered = unexpected = 0
    offset_gaps = offset_repeats = truncated = 0
    events = output_events = 0
    length = 0
    final: str | None = None
    error: str | None = None
    for at, message in sse_messages(http_body(watcher.reads)):
        kind = b"message"
        data_lines: list[bytes] = []
        for raw in message.split(b"\n"):
            if raw.startswith(b"data:"):
                data_lines.append(raw[6:] if raw[5:6] == b" " else raw[5:])
            elif raw.startswith(b"event:"):
                kind = raw[6:].strip()
        if not data_lines:
            continue  # a comment (keep-alive) or `retry:`
        events += 1
        data = b"\n".join(data_lines)
        if kind in (b"succeeded", b"failed", b"cancelled"):
            final = kind.decode()
            if kind != b"succeeded":
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    error = str(json.loads(data).get("error"))
            continue
        if kind != b"output":
            continue
        output_events += 1
        if data.startswith(b"{"):  # taskstream's `output` event: the chunks of one flush
            out = json.loads(data)["output"]
            text = out.get("text") or ""
            offset = out.get("offset", length)
            if out.get("truncated"):
                truncated += 1
            if offset == length:
                length += len(text)
            elif offset < length:
                offset_repeats += 1
            else:
                offset_gaps += 1
                length = offset + len(text)
        else:  # one token per event (pub/sub)
            text = data.decode()
        for piece in text.split(";"):
            if not piece:
                continue
            number, _, written = piece.partition(":")
            seq = int(number)
            latencies.append((at - float(written)) * 1000)
            if seq >= chunks or seq < 0:
                unexpected += 1
            elif seen[seq]:
                dups += 1
            else:
                seen[seq] = 1
                if seq < highest:
                    reordered += 1
                else:
                    highest = seq
    received = sum(seen)
    latencies.sort()
    return {
        "latencies": latencies,
        "received": received,
        "lost": chunks - received,
        "duplicates": dups,
        "reordered": reordered,
        "unexpected": unexpected,
        "offset_gaps": offset_gaps,
        "offset_repeats": offset_repeats,
        "truncated": truncated,
        "events": events,
        "output_events": output_events,
        "final": final,
        "error": error,
        "bytes": sum(len(data) for _at, data in watcher.reads),
    }


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
        self.watchers = Watchers()
        self.watch_cpu = 0.0
        self.watch_started = 0.0

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

    async def watch(
        self,
        host: str,
        port: int,
        path: str,
        count: int,
        ramp: int = 500,
        headers_timeout: float = 15.0,
        retries: int = 1,
    ) -> Json:
        """Opens `count` watchers of `path` (one task's stream), `ramp` at a time, each retried
        `retries` times; every failed attempt is counted by its reason."""
        await self.watch_close()
        loop = asyncio.get_running_loop()
        group = self.watchers
        failures: dict[str, int] = {}
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Cache-Control: no-cache\r\n\r\n"
        ).encode()
        started = time.monotonic()
        self.watch_cpu, self.watch_started = cpu_now(), started

        async def one() -> "Watcher | None":
            for _attempt in range(retries + 1):
                watcher = Watcher(group, request)
                reason: str
                try:
                    await loop.create_connection(lambda w=watcher: w, host, port)  # type: ignore[misc]
                    status = await asyncio.wait_for(asyncio.shield(watcher.opened), headers_timeout)
                    if status == 200:
                        return watcher
                    reason = f"HTTP {status}" if status > 0 else "closed before headers"
                except TimeoutError:
                    reason = "no headers in time"
                except OSError as exc:
                    reason = _error_name(exc)
                watcher.close()
                failures[reason] = failures.get(reason, 0) + 1
            return None

        for first in range(0, count, ramp):
            batch = await asyncio.gather(*(one() for _ in range(first, min(count, first + ramp))))
            group.clients.extend(w for w in batch if w is not None)
        return {
            "connected": len(group.clients),
            "failures": failures,
            "seconds": time.monotonic() - started,
        }

    async def watch_wait(self, patience: float, idle: float) -> Json:
        """Until every watcher is done (final event read, or closed), or nothing was read for
        `idle` seconds, or `patience` seconds passed."""
        group = self.watchers
        group.target = len(group.clients)
        if group.done >= group.target:
            group.done_at = group.done_at or time.time()
        started = time.monotonic()
        group.last_read = max(group.last_read, time.time())
        while group.done < group.target:
            await asyncio.sleep(0.05)
            if time.monotonic() - started > patience or time.time() - group.last_read > idle:
                break
        return {
            "watchers": group.target,
            "done": group.done,
            "done_at": group.done_at if group.done >= group.target else None,
            "waited": time.monotonic() - started,
            "cpu_seconds": cpu_now() - self.watch_cpu,
            "wall_seconds": time.monotonic() - self.watch_started,
        }

    async def watch_collect(self, chunks: int) -> Json:
        """Every watcher's stream parsed and checked (this takes a while: it is not measured)."""
        group = self.watchers
        expected = chunks * len(group.clients)
        stride = max(1, math.ceil(expected / SAMPLE_BUDGET))
        totals = dict.fromkeys(
            (
                "received", "lost", "duplicates", "reordered", "unexpected", "offset_gaps",
                "offset_repeats", "truncated", "events", "output_events", "bytes",
            ),
            0,
        )  # fmt: skip
        finals: dict[str, int] = {}
        errors: dict[str, int] = {}
        dropped: dict[str, int] = {}
        client_p50: list[float] = []
        client_p99: list[float] = []
        sample: list[float] = []
        measured = 0
        for watcher in group.clients:
            result = check_watcher(watcher, chunks)
            for name in totals:
                totals[name] += result[name]
            final = result["final"] or "none"
            finals[final] = finals.get(final, 0) + 1
            if result["error"]:
                errors[result["error"]] = errors.get(result["error"], 0) + 1
            if watcher.dropped:
                dropped[watcher.dropped] = dropped.get(watcher.dropped, 0) + 1
            ordered = result["latencies"]
            if ordered:
                client_p50.append(_sorted_percentile(ordered, 50) or 0.0)
                client_p99.append(_sorted_percentile(ordered, 99) or 0.0)
                sample.extend(ordered[::stride])
                measured += len(ordered)
            await asyncio.sleep(0)
        sample.sort()
        quantiles = [sample[min(len(sample) - 1, round(i / 1000 * (len(sample) - 1)))]
                     for i in range(1001)] if sample else []  # fmt: skip
        client_p99.sort()
        client_p50.sort()
        return {
            "watchers": len(group.clients),
            "expected": expected,
            **totals,
            "finals": finals,
            "errors": errors,
            "dropped": dropped,
            "latency_p50_ms": _sorted_percentile(sample, 50),
            "latency_p99_ms": _sorted_percentile(sample, 99),
            "latency_max_ms": _sorted_percentile(sample, 100),
            "latency_min_ms": _sorted_percentile(sample, 0),
            "latencies": measured,
            "exact": stride == 1,
            "quantiles": [round(q, 3) for q in quantiles],
            "client_p50_ms": client_p50,
            "client_p99_ms": client_p99,
        }

    async def watch_close(self) -> Json:
        group = self.watchers
        for watcher in group.clients:
            watcher.close()
        closed = len(group.clients)
        self.watchers = Watchers()
        if closed:
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
        "watch": gen.watch,
        "watch_wait": gen.watch_wait,
        "watch_collect": gen.watch_collect,
        "watch_close": gen.watch_close,
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
    await gen.watch_close()


def main() -> None:
    uvloop.run(serve())


if __name__ == "__main__":
    main()
