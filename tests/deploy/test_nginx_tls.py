"""HTTPS and HTTP/2 on the project's nginx site, in front of the real API.

What HTTP/2 is for here: a browser opens at most six HTTP/1.1 connections to a host, so a page
holding event streams soon stalls; over HTTP/2 every stream shares one connection. The client
below may open only ONE connection (max_connections=1), so had nginx not spoken HTTP/2 the
second stream could not even start. The certificate is the one the frontend image's own script
makes when none is mounted, which the first tests prove on their own.
"""

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.nginx import NginxProxy, make_certificate
from tests.support.stack import Stack

GLOBAL_STREAMS = 15
TASK_STREAMS = 5
# An event written while a stream was open reaches it within this (the worker, the API, nginx).
LAG = 1.5


def written(event: dict[str, Any]) -> float:
    """When the event was written, as time.time() counts."""
    return datetime.fromisoformat(event["at"]).timestamp()


def alternative_names(certificate: Path) -> str:
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(certificate)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def make_certificate_days(certificate: Path, key: Path, days: int) -> None:
    """A certificate as an operator would mount it, valid for `days`."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", str(days), "-subj", "/CN=taskstream.example",
            "-keyout", str(key), "-out", str(certificate),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )  # fmt: skip


# -- the certificate script -------------------------------------------------------------------


def test_script_makes_a_self_signed_certificate_when_none_is_mounted(tmp_path: Path) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"

    output = make_certificate(certificate, key, names="taskstream.lan, 10.1.2.3")

    assert "made a self-signed certificate" in output
    names = alternative_names(certificate)
    for name in (
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "DNS:taskstream.lan",
        "IP Address:10.1.2.3",
    ):
        assert name in names
    assert key.stat().st_mode & 0o077 == 0  # the key is for nginx's user alone


def test_script_leaves_a_mounted_certificate_alone(tmp_path: Path) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    # Even one that ends tomorrow: renewing a real certificate is its owner's business.
    make_certificate_days(certificate, key, days=1)
    before = certificate.read_bytes(), key.read_bytes()

    assert make_certificate(certificate, key) == ""
    assert (certificate.read_bytes(), key.read_bytes()) == before


def test_script_renews_its_own_certificate_near_its_end(tmp_path: Path) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_certificate(certificate, key)
    make_certificate_days(certificate, key, days=1)  # as if the one it made were a year old
    old = certificate.read_bytes()

    assert "ends within 30 days" in make_certificate(certificate, key)
    assert certificate.read_bytes() != old
    assert "DNS:localhost" in alternative_names(certificate)


@pytest.mark.parametrize("present", ["cert.pem", "key.pem"])
def test_script_refuses_half_a_pair(tmp_path: Path, present: str) -> None:
    (tmp_path / present).write_text("mounted\n")

    with pytest.raises(RuntimeError, match=r"only one of .* exists: mount the certificate and"):
        make_certificate(tmp_path / "cert.pem", tmp_path / "key.pem")


# -- nginx ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    (root / "index.html").write_text("<!doctype html><title>taskstream</title>\n")
    return root


@pytest.fixture(scope="module")
def proxy(stack: Stack, web_root: Path) -> Iterator[NginxProxy]:
    """As the frontend image runs: plain HTTP sends everything to HTTPS."""
    with NginxProxy(stack.api.port, web_root, plain_http="redirect") as running:
        yield running


def test_https_serves_the_site_over_http2(proxy: NginxProxy) -> None:
    # Verified against the certificate, host name included.
    url = proxy.https_url.replace("127.0.0.1", "localhost")
    with httpx.Client(base_url=url, http2=True, verify=proxy.tls_context(), timeout=15) as site:
        page = site.get("/tasks/0193f2a4c5d6e7f8a9b0c1d2e3f4a5b6")
        health = site.get("/healthz")

    assert page.http_version == "HTTP/2"
    assert page.status_code == 200
    assert "<title>taskstream</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert health.status_code == 200  # the API behind it answers HTTP/2 requests too


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_plain_http_redirects_to_https_keeping_the_method(proxy: NginxProxy, method: str) -> None:
    with httpx.Client(base_url=proxy.url, timeout=15) as plain:
        response = plain.request(method, "/api/tasks?limit=5", json={"kind": "add"})

    assert response.status_code == 308
    assert response.headers["location"] == f"{proxy.https_url}/api/tasks?limit=5"


def test_a_followed_redirect_lands_on_the_page_over_https(proxy: NginxProxy) -> None:
    with httpx.Client(verify=proxy.tls_context(), follow_redirects=True, timeout=15) as browser:
        page = browser.get(f"{proxy.url}/")

    assert str(page.url) == f"{proxy.https_url}/"
    assert page.status_code == 200
    assert "<title>taskstream</title>" in page.text


@dataclass
class EventStream:
    """One event stream's events, each with the time.time() it arrived."""

    path: str
    status: int = 0
    http_version: str = ""
    opened_at: float = 0.0
    events: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, task_id: str) -> list[tuple[dict[str, Any], float]]:
        return [(event, arrived) for event, arrived in self.events if event["task_id"] == task_id]


async def read(client: httpx.AsyncClient, stream: EventStream, task: dict[str, str]) -> None:
    """Reads `stream` until it has the final event of task["id"] (set once it is submitted)."""
    async with client.stream("GET", stream.path, headers={"Accept": "text/event-stream"}) as r:
        stream.status, stream.http_version, stream.opened_at = (
            r.status_code,
            r.http_version,
            time.time(),
        )
        stream.opened.set()
        if r.status_code != 200:
            return
        kind, data = "message", []
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data.append(line.removeprefix("data:").removeprefix(" "))
            elif not line and data:
                if kind != "reset":
                    stream.events.append((json.loads("\n".join(data)), time.time()))
                kind, data = "message", []
                if any(e["type"] == "succeeded" for e, _ in stream.of(task.get("id", ""))):
                    return


async def stream_a_task_on_one_connection(proxy: NginxProxy) -> tuple[list[EventStream], str]:
    async with httpx.AsyncClient(
        base_url=proxy.https_url,
        http2=True,
        verify=proxy.tls_context(),
        limits=httpx.Limits(max_connections=1),
        timeout=60,
    ) as client:
        task: dict[str, str] = {}
        streams = [EventStream("/api/events") for _ in range(GLOBAL_STREAMS)]
        readers = [asyncio.create_task(read(client, stream, task)) for stream in streams]
        try:
            try:
                await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in streams)), 30)
            except TimeoutError:
                opened = sum(s.opened.is_set() for s in streams)
                pytest.fail(f"{opened} of {len(streams)} streams opened on one connection")
            # Submitted on the same connection, while those streams hold it.
            submitted = await client.post(
                "/api/tasks", json={"kind": "long", "params": {"seconds": 4}}
            )
            assert submitted.status_code == 202, submitted.text
            task["id"] = submitted.json()["id"]
            for _ in range(TASK_STREAMS):
                stream = EventStream(f"/api/tasks/{task['id']}/events")
                streams.append(stream)
                readers.append(asyncio.create_task(read(client, stream, task)))
            await asyncio.wait_for(asyncio.gather(*readers), 90)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    return streams, task["id"]


def test_many_event_streams_share_one_http2_connection_and_arrive_live(
    proxy: NginxProxy,
) -> None:
    streams, task_id = asyncio.run(stream_a_task_on_one_connection(proxy))

    assert len(streams) == GLOBAL_STREAMS + TASK_STREAMS
    assert {(s.status, s.http_version) for s in streams} == {(200, "HTTP/2")}
    for stream in streams:
        mine = stream.of(task_id)
        assert mine[-1][0]["type"] == "succeeded", stream.path
        finished_at = written(mine[-1][0])
        progress = [(event, arrived) for event, arrived in mine if event["type"] == "progress"]
        assert [event["progress"]["current"] for event, _ in progress] == [0, 1, 2, 3, 4]
        # Each stream saw the task running, not only its history after the fact ...
        assert progress[0][1] < finished_at, stream.path
        # ... and what was written while it was open reached it at once.
        for event, arrived in mine:
            if written(event) >= stream.opened_at:
                lag = arrived - written(event)
                assert lag < LAG, f"{stream.path}: {event['type']} arrived {lag:.2f} s late"
