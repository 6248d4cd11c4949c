"""A private redis-server and a Celery worker, run from what `taskstream.processes` builds."""

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import redis

from taskstream.broker import make_celery
from taskstream.kinds import load
from taskstream.processes import NotServing, RedisServerSpec, WorkerSpec
from taskstream.settings import Settings
from tests.support.processes import Process, free_port
from tests.support.waiting import GiveUp, wait_until

Start = Callable[[str, list[str], Mapping[str, str]], Process]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Starts a child with its output in a log file; stops every one at the end."""
    started: list[Process] = []

    def run(name: str, args: list[str], env: Mapping[str, str]) -> Process:
        process = Process(name, args, tmp_path, env).start()
        started.append(process)
        return process

    yield run
    for process in reversed(started):
        process.stop()


def popen(process: Process) -> subprocess.Popen[bytes]:
    assert process.proc is not None
    return process.proc


def serve(start: Start, spec: RedisServerSpec, name: str = "redis") -> Process:
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    process = start(name, spec.command(), {})
    spec.wait_until_serving(popen(process))
    return process


def test_a_private_redis_server_runs_as_asked(tmp_path: Path, start: Start) -> None:
    options = {"stream-node-max-entries": "10", "maxclients": "100"}
    spec = RedisServerSpec(free_port(), tmp_path / "data", password="s3cret", options=options)
    serve(start, spec)

    with redis.Redis.from_url(spec.url, decode_responses=True) as client:
        config = client.config_get("*")
        assert config["port"] == str(spec.port)
        assert config["bind"] == "127.0.0.1"
        assert Path(config["dir"]) == spec.data_dir.resolve()
        assert config["save"] == ""
        assert config["appendonly"] == "no"
        assert config["stream-node-max-entries"] == "10"
        assert config["maxclients"] == "100"
    with redis.Redis(port=spec.port) as stranger, pytest.raises(redis.AuthenticationError):
        stranger.ping()


def test_append_only_data_outlives_a_restart(tmp_path: Path, start: Start) -> None:
    log = tmp_path / "redis.log"
    spec = RedisServerSpec(free_port(), tmp_path / "data", appendonly=True, logfile=log)
    first = serve(start, spec, "first")
    with redis.Redis.from_url(spec.url) as client:
        client.set("kept", "yes")
    first.stop()  # SIGTERM: Redis flushes its append-only file on the way out

    serve(start, spec, "second")
    with redis.Redis.from_url(spec.url, decode_responses=True) as client:
        assert client.get("kept") == "yes"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert "Ready to accept connections" in log.read_text()
    assert not list((tmp_path / "data").glob("*.rdb"))  # never a snapshot


def test_another_server_on_the_port_is_not_taken_for_ours(tmp_path: Path, start: Start) -> None:
    port = free_port()
    serve(start, RedisServerSpec(port, tmp_path / "theirs"))
    ours = RedisServerSpec(port, tmp_path / "ours")
    ours.data_dir.mkdir()
    process = start("ours", ours.command(), {})

    with pytest.raises(NotServing, match="exited"):
        ours.wait_until_serving(popen(process))
    assert "Address already in use" in process.log_tail()


def test_waiting_gives_up_on_a_server_that_never_answers(tmp_path: Path, start: Start) -> None:
    silent = start("silent", [sys.executable, "-c", "import time; time.sleep(60)"], {})
    spec = RedisServerSpec(free_port(), tmp_path)

    with pytest.raises(NotServing, match="did not answer"):
        spec.wait_until_serving(popen(silent), timeout=0.5)


def test_a_worker_serves_its_queues_on_the_redis_it_is_given(tmp_path: Path, start: Start) -> None:
    redis_spec = RedisServerSpec(free_port(), tmp_path / "data")
    serve(start, redis_spec)
    spec = WorkerSpec(
        redis_spec.url, "probe", concurrency=1, queues=("first", "second"), standalone=True
    )
    worker = start("worker", spec.command(), spec.environment())
    app = make_celery(Settings(redis_url=redis_spec.url), load())
    try:

        def queues() -> set[str] | None:
            if not worker.running:
                raise GiveUp(f"the worker exited:\n{worker.log_tail()}")
            replies = app.control.inspect(timeout=1).active_queues() or {}
            for node, consumed in replies.items():
                if node.startswith("probe@"):
                    return {queue["name"] for queue in consumed}
            return None

        found = wait_until(queues, 60, message=lambda: f"the worker\n{worker.log_tail()}")
        assert found == {"first", "second"}
    finally:
        app.close()
    worker.signal(signal.SIGTERM)  # Celery's warm shutdown
    assert popen(worker).wait(60) == 0
