"""The measurements, each on a running stack and the load generator; each returns plain JSON."""

import asyncio
import json
import statistics
import time
from datetime import datetime
from typing import Any

from bench.driver import LoadGen
from bench.procs import busy_since, cpu_seconds, cpu_ticks, rss_bytes
from bench.stacks import ADD_BODY, Stack

Json = dict[str, Any]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


async def warm_up(stack: Stack, gen: LoadGen, patience: float = 30) -> None:
    """One client, one task, end to end: the pipeline works and every code path is loaded."""
    connect = await gen.connect(stack.port, 1)
    if not connect["connected"]:
        raise RuntimeError(f"warm-up client could not connect: {connect['failures']}")
    # A pub/sub design answers 200 before its subscription is made: give it time.
    await asyncio.sleep(0.3)
    await gen.arm()
    results = await gen.submit(stack.port, 1, 1.0, ADD_BODY)
    if results[0]["status"] != 202:
        raise RuntimeError(f"warm-up submission failed: {results[0]}")
    wait = await gen.wait(1, patience, patience)
    await gen.close_clients()
    if wait["finals"] < wait["expected"]:
        raise RuntimeError("warm-up task's final event never arrived")


async def fanout(
    stack: Stack, gen: LoadGen, clients: int, tasks: int, rate: float, *, ramp: int, wait_s: float
) -> Json:
    """N clients connected; `tasks` tasks at `rate`/s; each client's latency to each final."""
    server = stack.server.pid
    await warm_up(stack, gen)
    await asyncio.sleep(0.5)
    rss_idle = rss_bytes(server)
    connect = await gen.connect(stack.port, clients, ramp=ramp)
    await asyncio.sleep(1.0)
    rss_loaded = rss_bytes(server)
    armed = await gen.arm()
    redis, worker = stack.redis.process.pid, stack.worker.pid if stack.worker else None
    cpu0 = (cpu_seconds(server), cpu_seconds(redis), cpu_seconds(worker) if worker else 0.0)
    ticks = cpu_ticks()
    started = time.monotonic()
    results = await gen.submit(stack.port, tasks, rate, ADD_BODY)
    submits = {r["id"]: r["sent"] for r in results if r["status"] == 202 and r.get("id")}
    rejected: dict[str, int] = {}
    for r in results:
        if r["status"] != 202:
            key = f"POST {r.get('error') or r['status']}"
            rejected[key] = rejected.get(key, 0) + 1
    wait = await gen.wait(len(submits), wait_s, min(20.0, wait_s))
    elapsed = time.monotonic() - started
    cores_busy = busy_since(ticks)
    cpu1 = (cpu_seconds(server), cpu_seconds(redis), cpu_seconds(worker) if worker else 0.0)
    got = await gen.collect(submits)
    await gen.close_clients()
    latencies = got["latencies_ms"]
    spreads = [high - low for _n, low, high in got["per_task"].values()]
    events = got["events"]
    server_cpu = cpu1[0] - cpu0[0]
    answered = [r["answered"] - r["sent"] for r in results if "answered" in r]
    return {
        "clients": clients,
        "connected": connect["connected"],
        "armed": armed,
        "connect_failures": connect["failures"],
        "connect_seconds": round(connect["seconds"], 2),
        "tasks": tasks,
        "submitted": len(submits),
        "submit_errors": rejected,
        "submit_p99_ms": percentile([a * 1000 for a in answered], 99),
        "expected": armed * len(submits),
        "delivered": len(latencies),
        "lost": got["lost"] + armed * (tasks - len(submits)),
        "duplicates": got["duplicates"],
        "dropped": got["dropped"],
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p99_ms": percentile(latencies, 99),
        "latency_max_ms": percentile(latencies, 100),
        "spread_p50_ms": median(spreads),
        "spread_max_ms": round(max(spreads), 2) if spreads else None,
        "rss_idle_mb": round(rss_idle / 2**20, 1),
        "rss_loaded_mb": round(rss_loaded / 2**20, 1),
        "rss_per_client_kb": round(
            (rss_loaded - rss_idle) / 1024 / max(1, connect["connected"]), 1
        ),
        "events_delivered": events,
        "server_cpu_s": round(server_cpu, 2),
        "cpu_us_per_event": round(server_cpu / events * 1e6, 2) if events else None,
        "redis_cpu_s": round(cpu1[1] - cpu0[1], 2),
        "worker_cpu_s": round(cpu1[2] - cpu0[2], 2),
        "loadgen_cpu_s": round(got["cpu_seconds"], 2),
        "loadgen_busy": round(got["cpu_seconds"] / max(got["wall_seconds"], 1e-9), 2),
        "seconds": round(elapsed, 2),
        "cores_busy": {str(cpu): busy for cpu, busy in cores_busy.items()},
        "complete": wait["finals"] >= wait["expected"],
        "server_alive": stack.server.running,
        "server_errors": stack.log_errors(),
    }


async def submission(
    stack: Stack,
    gen: LoadGen,
    concurrency: int,
    seconds: float,
    streaming: int = 0,
    ramp: int = 500,
) -> Json:
    """`concurrency` POST /api/tasks in flight for `seconds`, with `streaming` SSE clients."""
    connected: Json = {"connected": 0, "failures": {}}
    if streaming:
        await warm_up(stack, gen)
        connected = await gen.connect(stack.port, streaming, ramp=ramp)
        await gen.arm()
    server = stack.server.pid
    cpu0 = cpu_seconds(server)
    load = await gen.post_load(stack.port, concurrency, ADD_BODY, duration=seconds)
    server_cpu = cpu_seconds(server) - cpu0
    streamed: Json = {"events": 0, "dropped": {}}
    if streaming:
        streamed = await gen.collect({})
        await gen.close_clients()
    accepted = load["statuses"].get("202", 0)
    others = {k: v for k, v in load["statuses"].items() if k != "202"}
    return {
        "concurrency": concurrency,
        "streaming_clients": connected["connected"],
        "streaming_failures": connected["failures"],
        "streaming_dropped": streamed["dropped"],
        "streaming_events": streamed["events"],
        "seconds": round(load["seconds"], 2),
        "accepted": accepted,
        "per_second": round(accepted / load["seconds"], 1),
        "p50_ms": percentile(load["latencies_ms"], 50),
        "p99_ms": percentile(load["latencies_ms"], 99),
        "other_statuses": others,
        "errors": load["errors"],
        "server_cpu_s": round(server_cpu, 2),
        "loadgen_busy": round(load["cpu_seconds"] / load["seconds"], 2),
        "server_alive": stack.server.running,
    }


def celery_send_loop(redis_url: str, seconds: float) -> Json:
    """The floor: `send_task` of the bare `add` task in a loop from one thread, for `seconds`."""
    from bench.baselines.celery_app import QUEUE, make_app

    app = make_app(redis_url)
    latencies: list[float] = []
    try:
        app.send_task("bench.add", args=(1, 2), queue=QUEUE)  # connect first
        started = time.monotonic()
        deadline = started + seconds
        while (now := time.monotonic()) < deadline:
            app.send_task("bench.add", args=(1, 2), queue=QUEUE)
            latencies.append((time.monotonic() - now) * 1000)
        elapsed = time.monotonic() - started
    finally:
        app.close()
    return {
        "concurrency": 1,
        "seconds": round(elapsed, 2),
        "accepted": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def celery_send_count(redis_url: str, count: int) -> None:
    from bench.baselines.celery_app import QUEUE, make_app

    app = make_app(redis_url)
    try:
        for _ in range(count):
            app.send_task("bench.add", args=(1, 2), queue=QUEUE)
    finally:
        app.close()


async def worker_throughput(stack: Stack, gen: LoadGen | None, count: int) -> Json:
    """`count` tasks queued first, then the worker started: tasks per second from its first
    dequeue until the queue is empty and nothing is left unacknowledged."""
    assert stack.worker is not None
    client = stack.redis.client()
    if gen is not None:  # through taskstream's API: task state, queued event, message
        load = await gen.post_load(stack.port, 32, ADD_BODY, count=count)
        if load["statuses"].get("202", 0) != count:
            raise RuntimeError(f"submissions failed: {load['statuses']} {load['errors']}")
    else:
        await asyncio.to_thread(celery_send_count, stack.redis.url, count)
    queued = client.llen(stack.queue)
    if queued != count:
        raise RuntimeError(f"{queued} messages queued, {count} expected")
    await asyncio.to_thread(stack.start_worker)

    def first_dequeue() -> float:
        while client.llen(stack.queue) >= count:
            time.sleep(0.002)
        return time.monotonic()

    first = await asyncio.to_thread(first_dequeue)
    worker_cpu0 = cpu_seconds(stack.worker.pid)
    done = await asyncio.to_thread(stack.wait_drained, 600)
    worker_cpu = cpu_seconds(stack.worker.pid) - worker_cpu0
    succeeded = None
    if stack.design.event_log:
        succeeded = int(client.zcard("ts:tasks:state:succeeded"))
    seconds = done - first
    return {
        "tasks": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1),
        "worker_cpu_ms_per_task": round(worker_cpu / count * 1000, 3),
        "succeeded": succeeded,
    }


async def reconnect_storm(
    stack: Stack, gen: LoadGen, clients: int, tasks: int, ramp: int, wait_s: float
) -> Json:
    """`clients` clients see some events, disconnect; `tasks` tasks run; all reconnect at once
    with their Last-Event-ID. Time until every one has every final event, and each client's
    event ids checked against the log."""
    await warm_up(stack, gen)
    connect = await gen.connect(stack.port, clients, ramp=ramp)
    await asyncio.sleep(1.0)
    await gen.arm()
    results = await gen.submit(stack.port, 2, 10.0, ADD_BODY)
    await gen.wait(2, 30, 15)
    last_ids = await gen.last_ids()
    await gen.close_clients()
    burst = await gen.submit(stack.port, tasks, 1000.0, ADD_BODY)
    burst_ids = [r["id"] for r in burst if r["status"] == 202]
    client = stack.redis.client()
    if stack.design.event_log:

        def finished() -> bool:
            states = [client.hget(f"ts:task:{task_id}", "state") for task_id in burst_ids]
            return all(s in ("succeeded", "failed") for s in states)

        deadline = time.monotonic() + 120
        while not finished() and time.monotonic() < deadline:  # noqa: ASYNC110 (polls Redis)
            await asyncio.sleep(0.05)
    else:
        await asyncio.to_thread(stack.wait_drained, 120)
    server_cpu0 = cpu_seconds(stack.server.pid)
    reconnect = await gen.connect(
        stack.port,
        len(last_ids),
        ramp=max(1, len(last_ids)),
        last_ids=last_ids,
        record_ids=stack.design.event_log,
        track=True,
        headers_timeout=60,
    )
    patience = wait_s if stack.design.event_log else 2.0
    wait = await gen.wait(len(burst_ids), patience, min(10.0, patience))
    caught_up = wait["done_at"] - reconnect["started"] if wait["done_at"] else None
    catch_up_cpu = cpu_seconds(stack.server.pid) - server_cpu0  # the server's, to catch up
    lost = duplicates = wrong = 0
    checked = 0
    if stack.design.event_log:
        expected_for: dict[str | None, list[str]] = {}
        for last, ids in await gen.ids():
            if last not in expected_for:
                start = f"({last}" if last else "-"
                entries: Any = client.xrange("ts:events", start, "+")
                expected_for[last] = [str(entry_id) for entry_id, _fields in entries]
            expected = expected_for[last]
            checked += 1
            lost += len(set(expected) - set(ids))
            duplicates += len(ids) - len(set(ids))
            wrong += ids != expected
    got = await gen.collect({task_id: 0.0 for task_id in burst_ids})
    await gen.close_clients()
    return {
        "clients": connect["connected"],
        "reconnected": reconnect["connected"],
        "reconnect_failures": reconnect["failures"],
        "tasks": len(burst_ids),
        "warm_tasks": len(results),
        "headers_seconds": round(reconnect["seconds"], 3),
        "caught_up_seconds": round(caught_up, 3) if caught_up is not None else None,
        "catch_up_cpu_s": round(catch_up_cpu, 2),
        "finals_expected": wait["expected"],
        "finals_received": wait["finals"],
        "finals_lost": got["lost"],
        "duplicates": got["duplicates"] + duplicates,
        "events_lost": lost if stack.design.event_log else None,
        "dropped": got["dropped"],
        "clients_checked": checked,
        "clients_not_exact": wrong,
        "server_alive": stack.server.running,
        "server_errors": stack.log_errors(),
    }


# --- the token stream ------------------------------------------------------------------------


def tokens_body(chunks: int, rate: float, start_at: float) -> str:
    params = {"chunks": chunks, "rate": rate, "start_at": round(start_at, 3)}
    return json.dumps({"kind": "tokens", "params": params})


def has_output() -> bool:
    """Whether the taskstream under test gives a kind's function `ctx.write`."""
    from taskstream.worker.context import WorkerContext

    return hasattr(WorkerContext, "write")


def last_event(stack: Stack, task_id: str) -> Json | None:
    """The task's last event (taskstream's own parse of its own stream), as JSON."""
    from taskstream.events.entries import LogEntry

    client = stack.redis.client()
    entries: Any = client.xrevrange(f"ts:task:{task_id}:events", "+", "-", count=1)
    if not entries:
        return None
    entry_id, fields = entries[0]
    event: Json = LogEntry.from_redis(str(entry_id), fields).event().model_dump(mode="json")
    return event


async def _watch_task(
    stack: Stack, gen: LoadGen, clients: int, chunks: int, rate: float, ramp: int, lead: float
) -> Json:
    """Submits a `tokens` task that starts writing `lead` s from now, and opens `clients`
    watchers of its stream meanwhile. The CPU counters are read once they are all in."""
    start_at = time.time() + lead
    results = await gen.submit(stack.port, 1, 1.0, tokens_body(chunks, rate, start_at))
    if results[0]["status"] != 202 or not results[0].get("id"):
        raise RuntimeError(f"token task submission failed: {results[0]}")
    task_id = results[0]["id"]
    connect = await gen.watch(stack.port, f"/api/tasks/{task_id}/events", clients, ramp=ramp)
    # A pub/sub design answers 200 before its SUBSCRIBE lands: leave it a moment before the start.
    in_time = time.time() < start_at - 0.3
    return {"task_id": task_id, "start_at": start_at, "connect": connect, "in_time": in_time}


async def token_stream(
    stack: Stack, gen: LoadGen, clients: int, chunks: int, rate: float, *, ramp: int
) -> Json:
    """One task writes `chunks` chunks at `rate`/s, each carrying its write time, watched on its
    own stream by `clients` clients: each chunk's write-to-receipt latency at every client, and
    every chunk lost, duplicated or out of order; CPU of the server, the worker and Redis."""
    assert stack.worker is not None
    if stack.design.event_log and not has_output():
        from bench.kinds import NO_WRITE

        raise RuntimeError(f"token stream not run: {NO_WRITE}")
    # Warm-up: a short task to one watcher, end to end (and a clear failure if writes fail).
    warm = await _watch_task(stack, gen, 1, 50, 1000.0, ramp, 0.6)
    await gen.watch_wait(30, 15)
    got = await gen.watch_collect(50)
    await gen.watch_close()
    if got["finals"].get("succeeded") != 1 or got["lost"]:
        event = last_event(stack, warm["task_id"]) if stack.design.event_log else None
        error = (event or {}).get("error") or got["errors"] or got["dropped"]
        raise RuntimeError(
            f"warm-up token task: finals {got['finals']}, {got['received']} of 50 chunks; {error}"
        )
    server, redis = stack.server.pid, stack.redis.process.pid
    worker = stack.worker.pid
    # Time for every watcher to be in before the first write: a per-client design takes about
    # 3 s to answer and subscribe 1,000 of them on its one core.
    lead = 1.5 + clients * 0.006
    watch = await _watch_task(stack, gen, clients, chunks, rate, ramp, lead)
    connect = watch["connect"]
    cpu0 = (cpu_seconds(server), cpu_seconds(redis), cpu_seconds(worker))
    ticks = cpu_ticks()
    await asyncio.sleep(max(0.0, watch["start_at"] - time.time()))
    wait = await gen.watch_wait(chunks / rate + 60, 15)
    cores_busy = busy_since(ticks)
    cpu1 = (cpu_seconds(server), cpu_seconds(redis), cpu_seconds(worker))
    got = await gen.watch_collect(chunks)
    await gen.watch_close()
    result = None
    if stack.design.event_log:
        event = last_event(stack, watch["task_id"])
        result = (event or {}).get("result")
    server_cpu, redis_cpu, worker_cpu = (b - a for a, b in zip(cpu0, cpu1, strict=True))
    received = got["received"] + got["duplicates"]
    clients_p99 = got["client_p99_ms"]
    watchers = max(1, got["watchers"])
    return {
        "clients": clients,
        "connected": connect["connected"],
        "connect_failures": connect["failures"],
        "connect_seconds": round(connect["seconds"], 2),
        "connected_in_time": watch["in_time"],
        "chunks": chunks,
        "rate": rate,
        "expected": got["expected"],
        "received": got["received"],
        "lost": got["lost"] + chunks * (clients - got["watchers"]),
        "duplicates": got["duplicates"],
        "reordered": got["reordered"],
        "unexpected": got["unexpected"],
        "offset_gaps": got["offset_gaps"],
        "offset_repeats": got["offset_repeats"],
        "truncated": got["truncated"],
        "events_per_client": round(got["output_events"] / watchers, 1),
        "chunks_per_event": round(got["received"] / got["output_events"], 2)
        if got["output_events"]
        else None,
        "latency_p50_ms": got["latency_p50_ms"],
        "latency_p99_ms": got["latency_p99_ms"],
        "latency_max_ms": got["latency_max_ms"],
        "latency_exact": got["exact"],
        "client_p99_median_ms": median(clients_p99),
        "client_p99_max_ms": round(max(clients_p99), 2) if clients_p99 else None,
        "client_p50_median_ms": median(got["client_p50_ms"]),
        "server_cpu_s": round(server_cpu, 2),
        "cpu_us_per_chunk": round(server_cpu / received * 1e6, 2) if received else None,
        "worker_cpu_s": round(worker_cpu, 2),
        "worker_cpu_us_per_chunk": round(worker_cpu / chunks * 1e6, 2),
        "redis_cpu_s": round(redis_cpu, 2),
        "loadgen_busy": round(wait["cpu_seconds"] / max(wait["wall_seconds"], 1e-9), 2),
        "cores_busy": {str(cpu): busy for cpu, busy in cores_busy.items()},
        "done": wait["done"],
        "complete": wait["done_at"] is not None,
        "finals": got["finals"],
        "errors": got["errors"],
        "dropped": got["dropped"],
        "bytes_per_client": round(got["bytes"] / watchers),
        "task_result": result,
        "server_alive": stack.server.running,
        "server_errors": stack.log_errors(),
    }


def loop_body(calls: int, op: str) -> str:
    return json.dumps({"kind": "bench_loop", "params": {"calls": calls, "op": op}})


async def context_calls(stack: Stack, gen: LoadGen, calls: int, rounds: int) -> Json:
    """The added cost of `ctx.write` and `ctx.progress` in the worker: `bench_loop` tasks of
    `calls` iterations, each op against the same loop without the call, in turns (text, write,
    empty, progress) for `rounds` rounds. Per task: the kind's own CPU and wall time of its loop,
    the worker's CPU over the whole task (/proc: its final flush included) and the task's time
    from `started_at` to `finished_at`."""
    assert stack.worker is not None
    if not has_output():
        from bench.kinds import NO_WRITE

        raise RuntimeError(f"context calls not measured: {NO_WRITE}")
    client = stack.redis.client()
    worker = stack.worker.pid
    ops = ("text", "write", "empty", "progress")
    runs: dict[str, list[Json]] = {op: [] for op in ops}

    async def one(op: str, n: int) -> Json:
        cpu0 = cpu_seconds(worker)
        results = await gen.submit(stack.port, 1, 1.0, loop_body(n, op))
        if results[0]["status"] != 202:
            raise RuntimeError(f"bench_loop submission failed: {results[0]}")
        task_id = results[0]["id"]
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            state = client.hget(f"ts:task:{task_id}", "state")
            if state in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(0.02)
        worker_cpu = cpu_seconds(worker) - cpu0
        task = await asyncio.to_thread(stack.get_json, f"/api/tasks/{task_id}")
        if task["state"] != "succeeded":
            raise RuntimeError(f"bench_loop {op} ended {task['state']}: {task.get('error')}")
        started = datetime.fromisoformat(task["started_at"])
        finished = datetime.fromisoformat(task["finished_at"])
        result = task["result"]
        output = task.get("output") or {}
        return {
            "worker_cpu_s": worker_cpu,
            "task_s": (finished - started).total_seconds(),
            "loop_cpu_s": result["cpu_s"],
            "loop_wall_s": result["wall_s"],
            "truncated": any(s.get("truncated") for s in output.values()),
        }

    for op in ops:  # warm-up: every path once
        await one(op, 1000)
    for _ in range(rounds):
        for op in ops:
            runs[op].append(await one(op, calls))

    def added(op: str, base: str, name: str) -> float:
        """Median over rounds of (op - base) for `name`, per call, in µs."""
        pairs = zip(runs[op], runs[base], strict=True)
        diffs: list[float] = [(a[name] - b[name]) / calls * 1e6 for a, b in pairs]
        return round(statistics.median(diffs), 3)

    pairs = zip(runs["progress"], runs["empty"], strict=True)
    progress_added = statistics.median(a["task_s"] - b["task_s"] for a, b in pairs)
    return {
        "calls": calls,
        "rounds": rounds,
        "runs": runs,
        "write_cpu_us": added("write", "text", "worker_cpu_s"),
        "write_loop_cpu_us": added("write", "text", "loop_cpu_s"),
        "write_loop_wall_us": added("write", "text", "loop_wall_s"),
        "write_task_us": added("write", "text", "task_s"),
        "progress_cpu_us": added("progress", "empty", "worker_cpu_s"),
        "progress_loop_wall_us": added("progress", "empty", "loop_wall_s"),
        "progress_task_us": added("progress", "empty", "task_s"),
        # What 200,000 calls add to a task's time (scaled when `calls` is fewer).
        "progress_200k_s": round(progress_added * 200_000 / calls, 3),
        "truncated": any(r["truncated"] for r in runs["write"]),
    }
