"""taskstream inside an application of one's own: under a prefix, beside its routes, with its
sign-in deciding who is asking, on one server (`embed.mount`)."""

import signal
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.processes import Process, free_port
from tests.support.sse import SSEClient, of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until

ALICE = {"X-Shop-User": "shop-token-alice"}
BOB = {"X-Shop-User": "shop-token-bob"}


class Host:
    def __init__(self, stack: Stack) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "uvicorn", "tests.support.host_app:app"]
        args += ["--host", "127.0.0.1", "--port", str(self.port)]
        env = {"REDIS_URL": stack.redis.url, "KEEPALIVE_SECONDS": "1"}
        self.process = Process(f"host-{self.port}", args, stack.directory, env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=15)

    def start(self) -> "Host":
        self.process.start()

        def up() -> bool:
            assert self.process.running, self.process.log_tail()
            return httpx.get(f"{self.url}/hello", timeout=2).status_code == 200

        wait_until(up, 60, message=lambda: f"the host app\n{self.process.log_tail()}")
        return self


@pytest.fixture(scope="module")
def host(stack: Stack) -> Iterator[Host]:
    running = Host(stack).start()
    yield running
    running.http.close()
    running.process.stop()


def test_the_hosts_routes_and_lifespan_stay_its_own(host: Host) -> None:
    assert host.http.get("/hello").json() == {"opened": True}
    assert host.http.get("/jobs/healthz").status_code == 200
    described = host.http.get("/jobs/openapi.json").json()
    assert "/api/tasks" in described["paths"]
    assert "/hello" not in described["paths"]
    assert host.http.get("/nope").json() == {"detail": "Not Found"}  # the host's own 404


def test_the_whole_flow_under_the_prefix_with_the_hosts_sign_in(host: Host) -> None:
    refused = host.http.post("/jobs/api/tasks", json={"kind": "add", "params": {"x": 1, "y": 2}})
    assert refused.status_code == 401
    assert refused.json()["detail"] == "sign in to the shop first"
    assert refused.json()["type"] == "/jobs/problems/unauthorized"  # below the mount
    assert refused.json()["instance"] == "/jobs/api/tasks"
    assert host.http.get(refused.json()["type"]).status_code == 200
    body = {"kind": "long", "params": {"seconds": 2}, "watch_token": True}
    submitted = host.http.post("/jobs/api/tasks", json=body, headers=ALICE)
    assert submitted.status_code == 202, submitted.text
    task = submitted.json()
    assert task["owner"] == "alice"
    assert submitted.headers["location"] == f"/jobs/api/tasks/{task['id']}"
    assert host.http.get(f"/jobs/api/tasks/{task['id']}", headers=BOB).status_code == 404
    listed = host.http.get("/jobs/api/tasks", headers=BOB).json()["items"]
    assert task["id"] not in {t["id"] for t in listed}

    stream_url = f"{host.url}/jobs/api/tasks/{task['id']}/events"
    token = task["watch_token"]["token"]
    with (
        SSEClient(stream_url, ALICE) as signed_in,
        SSEClient(f"{stream_url}?access_token={token}") as watching,  # no sign-in: the token
    ):
        signed_in.wait_ended(60)
        watching.wait_ended(60)
    for stream in (signed_in, watching):
        seqs = [event["seq"] for event in of_task(task["id"])(stream.messages)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert stream.messages[-1].event == "succeeded"
    output = host.http.get(f"/jobs/api/tasks/{task['id']}/output", headers=ALICE)
    assert output.status_code == 200


def test_streams_end_when_the_host_is_told_to_stop(stack: Stack) -> None:
    host = Host(stack).start()
    try:
        with SSEClient(f"{host.url}/jobs/api/events", ALICE) as stream:
            assert stream.status == 200
            host.process.signal(signal.SIGTERM)
            # uvicorn alone would wait for the open stream for ever; taskstream's lifespan, run
            # inside the host's, ends it when the server is told to stop.
            stream.wait_ended(30)
        wait_until(lambda: not host.process.running, 30, message="the host to exit")
    finally:
        host.http.close()
        host.process.stop()
