"""The compose file's monitoring profile: Prometheus, Grafana and Flower.

Static checks hold the configuration files to the compose file (the names and ports they reach,
the paths they are mounted at). One test runs a worker exactly as compose starts it and reads
the task events it sends, as Flower does, for a task submitted through the API.
"""

import json
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from taskstream.broker import make_celery
from taskstream.kinds import load
from taskstream.settings import Settings
from tests.deploy.test_compose import COMPOSE_FILE, ROOT, command_words
from tests.support.processes import ApiServer, Process, RedisServer

MONITORING = ROOT / "docker/monitoring"
DASHBOARD = MONITORING / "grafana/dashboards/taskstream.json"
TASK_EVENTS = {"-E", "--task-events", "--events"}
SECRETS = "/run/secrets/"

Service = dict[str, Any]


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    services: dict[str, Service] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def interpolated(text: str) -> str:
    """`${NAME:-default}` as compose reads it with NAME unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def container_environment(
    service: Service, secret_values: dict[str, str], directory: Path
) -> dict[str, str]:
    """The service's environment as compose sets it, each secret it names under /run/secrets/
    written to a file in `directory` instead."""
    environment = {}
    for key, value in service["environment"].items():
        value = interpolated(str(value))
        if value.startswith(SECRETS):
            name = value.removeprefix(SECRETS)
            assert name in secret_values, f"{key} names a secret this test does not make: {name}"
            path = directory / name
            path.write_text(secret_values[name])
            value = str(path)
        environment[key] = value
    return environment


def mounts(service: Service) -> dict[str, tuple[Path, bool]]:
    """Each bind mount of a file of the repository: target -> (source, read-only)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        if source.startswith("./"):
            found[target] = (ROOT / source, "ro" in options)
    return found


def flag(words: list[str], name: str) -> str:
    return next(word.split("=", 1)[1] for word in words if word.startswith(f"{name}="))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pending = list(dashboard["panels"])
    while pending:
        panel = pending.pop()
        pending += panel.get("panels", [])
        yield panel


def is_celery_worker(words: list[str]) -> bool:
    return "celery" in words and "worker" in words


# -- static -----------------------------------------------------------------------------------


def test_monitoring_services_are_pinned_in_the_profile_and_grafana_is_loopback_only(
    services: dict[str, Service],
) -> None:
    for name in ("flower", "prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        assert services[name]["restart"] == "unless-stopped", name
    assert "ports" not in services["prometheus"]
    assert services["grafana"]["ports"]
    assert all(port.startswith("127.0.0.1:") for port in services["grafana"]["ports"])
    for name in ("prometheus", "grafana"):
        files = mounts(services[name])
        assert files, name
        for target, (source, read_only) in files.items():
            assert source.exists(), f"{name} mounts {source}, which is missing"
            assert read_only, f"{name} mounts {target} writable"


def test_grafana_allows_anonymous_viewers_and_takes_its_admin_password_from_the_environment(
    services: dict[str, Service],
) -> None:
    grafana = services["grafana"]
    environment = grafana["environment"]

    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert environment["GRAFANA_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    script = " ".join(command_words(grafana["entrypoint"]))
    assert "GF_SECURITY_ADMIN_PASSWORD" in script
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment  # never one written in the file


def test_prometheus_discovers_every_api_process_on_the_compose_network(
    services: dict[str, Service],
) -> None:
    prometheus = services["prometheus"]
    config_path = flag(command_words(prometheus["command"]), "--config.file")
    source, _ = mounts(prometheus)[config_path]
    config = yaml.safe_load(source.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "taskstream-api"]
    (discovery,) = job["dns_sd_configs"]
    api = services["api"]

    # One target per address the service name resolves to: every replica, scraped apart.
    assert discovery["names"] == ["api"]
    assert discovery["type"] == "A"
    assert discovery["port"] == int(api["environment"]["API_PORT"])
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert "api" in services


def test_grafana_reads_the_provisioned_prometheus_and_the_mounted_dashboard(
    services: dict[str, Service],
) -> None:
    grafana = services["grafana"]
    files = mounts(grafana)
    provisioning, _ = files["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    (provider,) = yaml.safe_load((provisioning / "dashboards/taskstream.yml").read_text())[
        "providers"
    ]
    dashboards, _ = files[provider["options"]["path"]]
    dashboard = json.loads(DASHBOARD.read_text())
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]

    assert datasource["url"] == "http://prometheus:9090"  # Prometheus's own default port
    assert "prometheus" in services
    assert DASHBOARD.parent == dashboards
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
            assert panel["targets"], panel["title"]
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_every_compose_worker_sends_task_events(services: dict[str, Service]) -> None:
    workers = {
        name: command_words(service["command"])
        for name, service in services.items()
        if is_celery_worker(command_words(service.get("command", [])))
    }

    assert workers
    assert [name for name, words in workers.items() if not TASK_EVENTS & set(words)] == []


# -- a worker as compose starts it ------------------------------------------------------------


def test_a_worker_started_as_compose_starts_it_sends_task_events_flower_can_show(
    services: dict[str, Service], tmp_path: Path
) -> None:
    worker = services["worker"]
    words = [interpolated(word) for word in command_words(worker["command"])]
    assert words[0] == "celery"
    redis_server = RedisServer(tmp_path / "redis", password=secrets.token_hex(16)).start()
    assert redis_server.password is not None
    environment = container_environment(worker, {"redis_password": redis_server.password}, tmp_path)
    environment["REDIS_URL"] = f"redis://127.0.0.1:{redis_server.port}/0"  # for redis:6379
    api = ApiServer(redis_server.url, tmp_path, env={"TASK_QUEUES": environment["TASK_QUEUES"]})
    process = Process("compose-worker", [sys.executable, "-m", *words], tmp_path, environment)
    monitor = make_celery(Settings(redis_url=redis_server.url), load())
    try:
        api.start()
        process.start()
        events = watch_task_events(monitor, api, process)
    finally:
        monitor.close()
        process.stop(timeout=30)
        api.stop()
        redis_server.stop()

    (task_id,) = {event["uuid"] for event in events}
    types = [event["type"] for event in events]
    assert types[0] == "task-received"
    assert {"task-started", "task-succeeded"} <= set(types)
    assert "task-sent" not in types  # the API publishes without kombu (see broker.py)
    received = events[0]
    assert received["name"] == "taskstream.add"
    assert received["hostname"].startswith("short@")
    assert task_id in received["args"]


def watch_task_events(monitor: Any, api: ApiServer, process: Process) -> list[dict[str, Any]]:
    """The task events of one `add` submitted once the worker is seen: read as Flower reads
    them, from the broker's event exchange, until the task's success."""
    task_events: list[dict[str, Any]] = []
    heartbeats: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["type"].startswith("task-"):
            task_events.append(event)
        elif event["type"] == "worker-heartbeat":
            heartbeats.append(event)

    deadline = time.monotonic() + 90
    submitted: str | None = None
    with monitor.connection_for_read() as connection:
        receiver = monitor.events.Receiver(connection, handlers={"*": on_event})
        # Events flow from here on; a heartbeat says the worker is up and seen.
        for _ in receiver.itercapture(limit=None, timeout=60, wakeup=True):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no task-succeeded in time:\n{process.log_tail()}")
            if submitted is None and heartbeats:
                response = httpx.post(
                    f"{api.url}/api/tasks", json={"kind": "add", "params": {"x": 2, "y": 3}}
                )
                assert response.status_code == 202, response.text
                submitted = response.json()["id"]
            ours = [event for event in task_events if event["uuid"] == submitted]
            if any(event["type"] == "task-succeeded" for event in ours):
                return ours
    raise AssertionError("the event receiver stopped")
