"""The shell scripts docker-compose.yml runs, run here as compose would run them.

Each script is taken from the compose file, interpolated as compose does with no variable set,
and run by sh with its secret files in a temporary folder. What the image would have provides a
stand-in on PATH: Redis's entrypoint starts the machine's redis-server on a free port, redis-cli
is pointed at that port, and `celery` only prints what it was given.
"""

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.deploy.test_compose import COMPOSE_FILE, SECRETS_MOUNT
from tests.support.processes import Process, free_port
from tests.support.waiting import GiveUp, wait_until

PASSWORD = "0123456789abcdef" * 4


def as_compose_runs(text: str, secrets: Path) -> str:
    """`$$` is a `$`, `${NAME:-default}` its default; /run/secrets/ is `secrets`."""
    text = re.sub(r"\$\$|\$\{\w+:-([^}]*)\}", lambda m: "$" if m[0] == "$$" else m[1], text)
    return text.replace(SECRETS_MOUNT, f"{secrets}/")


def script_of(command: list[str]) -> str:
    assert command[:2] == ["sh", "-c"], command
    return command[2]


def stand_in(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return loaded


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "redis_password").write_text(PASSWORD + "\n")  # as make secrets writes it
    return directory


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    port = free_port()
    directory = tmp_path / "bin"
    directory.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    redis_server, redis_cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert redis_server is not None, "redis-server is needed"
    assert redis_cli is not None, "redis-cli is needed"
    # As the image's entrypoint: it goes on only with redis-server, which here listens privately.
    stand_in(
        directory,
        "docker-entrypoint.sh",
        f'[ "$1" = redis-server ] || exit 64\nshift\n'
        f'exec {redis_server} "$@" --port {port} --bind 127.0.0.1 --dir {data}',
    )
    stand_in(directory, "redis-cli", f'exec {redis_cli} -p {port} "$@"')
    stand_in(directory, "celery", 'printf "%s\\n" "$CELERY_BROKER_URL" "$*"')
    (directory / "port").write_text(str(port))
    return directory


def path_with(bin_dir: Path) -> dict[str, str]:
    return {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}


@pytest.fixture
def compose_redis(
    services: dict[str, Any], secrets: Path, bin_dir: Path, tmp_path: Path
) -> Iterator[redis.Redis]:
    script = as_compose_runs(script_of(services["redis"]["command"]), secrets)
    process = Process("compose-redis", ["sh", "-c", script], tmp_path, path_with(bin_dir))
    process.start()
    client = redis.Redis(
        port=int((bin_dir / "port").read_text()), password=PASSWORD, decode_responses=True
    )

    def answers() -> bool:
        if not process.running:
            raise GiveUp(f"Redis exited:\n{process.log_tail()}")
        return bool(client.ping())

    try:
        wait_until(answers, 30, message=lambda: f"Redis to answer\n{process.log_tail()}")
        yield client
    finally:
        client.close()
        process.stop()


def test_redis_runs_as_the_design_needs_with_the_secret_password(
    compose_redis: redis.Redis,
) -> None:
    config: dict[str, str] = {}
    for name in ("maxmemory", "maxmemory-policy", "appendonly"):
        config.update(compose_redis.config_get(name))  # type: ignore[arg-type]

    assert config == {
        "maxmemory": str(256 * 1024 * 1024),
        "maxmemory-policy": "noeviction",
        "appendonly": "yes",
    }
    anonymous = redis.Redis(port=compose_redis.connection_pool.connection_kwargs["port"])
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_redis_healthcheck_passes_with_the_secret_and_fails_without(
    services: dict[str, Any], compose_redis: redis.Redis, secrets: Path, bin_dir: Path
) -> None:
    test = services["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    script = as_compose_runs(test[1], secrets)

    def check() -> int:
        return subprocess.run(
            ["sh", "-c", script], env=path_with(bin_dir), timeout=30, check=False
        ).returncode

    assert check() == 0
    (secrets / "redis_password").write_text("not-the-password\n")
    assert check() != 0


def test_redis_refuses_an_empty_password_rather_than_run_open(
    services: dict[str, Any], secrets: Path, bin_dir: Path
) -> None:
    (secrets / "redis_password").write_text("")
    script = as_compose_runs(script_of(services["redis"]["command"]), secrets)

    result = subprocess.run(
        ["sh", "-c", script],
        env=path_with(bin_dir),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert "the redis_password secret is empty" in result.stderr


def test_flower_is_given_the_broker_with_the_secret_password(
    services: dict[str, Any], secrets: Path, bin_dir: Path
) -> None:
    script = as_compose_runs(script_of(services["flower"]["command"]), secrets)

    result = subprocess.run(
        ["sh", "-c", script],
        env=path_with(bin_dir),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert result.stdout.splitlines() == [
        f"redis://:{PASSWORD}@redis:6379/0",
        "flower --port=5555",
    ]
