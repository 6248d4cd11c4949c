"""Faults with real processes: a restarted API, frozen and churning clients, a stopping worker."""

import concurrent.futures
import signal
import socket
import time
from pathlib import Path

from tests.conftest import StackFactory
from tests.support.sse import FINAL, SSEClient, of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def metric(stack: Stack, name: str) -> float:
    for line in stack.http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def api_pid(stack: Stack) -> int:
    assert stack.api.process.proc is not None
    return stack.api.process.proc.pid


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_api_restart_every_client_resumes_with_every_event_once(make_stack: StackFactory) -> None:
    stack = make_stack()
    clients = [stack.events().open() for _ in range(20)]
    task = stack.submit("long", seconds=5)
    for client in clients:
        client.wait_for(lambda ms: any(e["type"] == "progress" for e in of_task(task["id"])(ms)))
    stack.api.stop()
    for client in clients:
        client.wait_ended(15)
        client.close()
    stack.api.start()
    resumed = []
    for client in clients:
        assert client.last_event_id is not None
        again = stack.events(headers={"Last-Event-ID": client.last_event_id}).open()
        resumed.append((client, again))
    for before, after in resumed:
        after.wait_for(lambda ms: any(e["type"] in FINAL for e in of_task(task["id"])(ms)), 60)
        after.close()
        stack.assert_resumed_exactly(before.messages, after.messages, task["id"])
        assert of_task(task["id"])(after.messages)[-1]["type"] == "succeeded"


def test_a_frozen_client_is_dropped_and_memory_stays_flat(make_stack: StackFactory) -> None:
    kinds = {"TASK_KIND_MODULES": "tests.support.extra_kinds"}
    stack = make_stack(
        api_env={**kinds, "CLIENT_BUFFER_EVENTS": "10", "CLIENT_SEND_TIMEOUT_SECONDS": "2"},
        worker_env=kinds,
    )
    pid = api_pid(stack)
    text = "x" * 1000  # about 3 kB of events per task: the kernel's buffers fill in a few MB

    def flood(tasks: int) -> None:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: stack.submit("echo", text=text), range(tasks)))

    flood(200)  # warm up: first-use allocations are not growth
    rss_before = rss_kib(pid)
    frozen = socket.socket()
    frozen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    frozen.connect(("127.0.0.1", stack.api.port))
    frozen.sendall(b"GET /api/events HTTP/1.1\r\nHost: test\r\n\r\n")  # and never read again
    wait_until(lambda: metric(stack, "taskstream_sse_clients") == 1, 20, message="connected")
    for _ in range(40):
        flood(100)
        if metric(stack, "taskstream_clients_dropped_total") >= 1:
            break
    assert metric(stack, "taskstream_clients_dropped_total") == 1
    wait_until(lambda: metric(stack, "taskstream_sse_clients") == 0, 20, message="released")
    # its response ends (the last chunk, or the server hangs up) after whatever was buffered
    frozen.settimeout(20)
    received = b""
    while not received.endswith(b"\r\n0\r\n\r\n") and (chunk := frozen.recv(65536)):
        received = received[-16:] + chunk
    frozen.close()
    flood(600)
    grown = rss_kib(pid) - rss_before
    assert grown < 20_000, f"RSS grew by {grown} KiB"


def test_a_thousand_connects_and_disconnects_leave_nothing_behind(stack: Stack) -> None:
    pid = api_pid(stack)
    baseline_clients = metric(stack, "taskstream_sse_clients")

    def visit(_: int) -> None:
        with SSEClient(f"{stack.api.url}/api/events") as client:
            client.wait_for(lambda ms: True, 10)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(visit, range(200)))  # warm up
    fds, rss = open_fds(pid), rss_kib(pid)
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        list(pool.map(visit, range(1000)))
    wait_until(
        lambda: metric(stack, "taskstream_sse_clients") == baseline_clients,
        30,
        message="every client released",
    )
    wait_until(lambda: open_fds(pid) <= fds + 2, 30, message="sockets closed")
    assert rss_kib(pid) - rss < 10_000


def test_a_stopping_worker_finishes_its_task_first(make_stack: StackFactory) -> None:
    stack = make_stack()
    task = stack.submit("long", seconds=3)
    stack.wait_state(task["id"], "running")
    stopping = time.monotonic()
    stack.worker.process.signal(signal.SIGTERM)  # Celery's warm shutdown
    assert stack.worker.process.proc is not None
    assert stack.worker.process.proc.wait(60) == 0
    final = stack.task(task["id"])
    assert final["state"] == "succeeded"
    assert time.monotonic() - stopping < 30


def test_a_reconnect_storm_catches_every_client_up(make_stack: StackFactory) -> None:
    # Far fewer Redis connections than clients: catch-ups must queue for the pool, not fail.
    stack = make_stack(api_env={"REDIS_POOL_SIZE": "4"})
    clients = [stack.events().open() for _ in range(400)]
    first = stack.submit("add", x=1, y=1)
    for client in clients:
        client.wait_for(lambda ms: len(of_task(first["id"])(ms)) == 3)
        client.close()
    burst = [stack.submit("add", x=i, y=1)["id"] for i in range(10)]
    for task_id in burst:
        stack.wait_state(task_id, "succeeded")
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        resumed = list(
            pool.map(
                lambda c: stack.events(headers={"Last-Event-ID": str(c.last_event_id)}).open(),
                clients,
            )
        )
    redis = stack.redis.client()
    for before, after in zip(clients, resumed, strict=True):
        after.wait_for(lambda ms: all(of_task(t)(ms) for t in burst), 60)
        after.close()
        assert all(m.event != "reset" for m in after.messages)
        got = [m.id for m in after.messages]
        log = redis.xrange("ts:events", f"({before.last_event_id}", "+") or []
        expected = [str(entry_id) for entry_id, _ in log]
        assert got == expected[: len(got)]
        assert len(got) == len(set(got))
