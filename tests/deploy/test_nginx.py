"""The project's nginx site config in front of the real API and the built web app.

tests/deploy/test_nginx_config.py proves the config against a stand-in API; here the events come
from a real worker through the real API, so what is proven is the deployment as a whole: events
reach the browser as they happen, a reconnect resumes through the proxy with nothing lost or
repeated, and the page and the API share one origin.
"""

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.nginx import NginxProxy
from tests.support.processes import ROOT
from tests.support.sse import SSEClient, finished, of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until

DIST = ROOT / "frontend" / "dist"


def written(event: dict[str, Any]) -> float:
    """When the event was written, as time.time() counts."""
    return datetime.fromisoformat(event["at"]).timestamp()


@pytest.fixture(scope="module")
def web_root() -> Path:
    if not (DIST / "index.html").is_file():
        pytest.fail("frontend/dist is missing: run `make web` (npm ci && npm run build) first")
    return DIST


@pytest.fixture(scope="module")
def proxy(stack: Stack, web_root: Path) -> Iterator[NginxProxy]:
    with NginxProxy(stack.api.port, web_root) as running:
        yield running


@pytest.fixture
def site(proxy: NginxProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=15) as http:
        yield http


def submit(site: httpx.Client, kind: str, **params: Any) -> dict[str, Any]:
    response = site.post("/api/tasks", json={"kind": kind, "params": params})
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def test_events_arrive_through_nginx_as_they_happen(proxy: NginxProxy, site: httpx.Client) -> None:
    with SSEClient(f"{proxy.url}/api/events") as stream:
        assert stream.status == 200
        assert "content-encoding" not in stream.headers  # asked for gzip, never compressed
        long = submit(site, "long", seconds=4)
        stream.wait_for(finished(long["id"]), 60)
        pairs = list(zip(stream.messages, stream.arrivals, strict=True))

    mine = [(m.json(), arrived) for m, arrived in pairs if m.event != "reset"]
    mine = [(event, arrived) for event, arrived in mine if event["task_id"] == long["id"]]
    assert mine[-1][0]["type"] == "succeeded"
    progress = [(event, arrived) for event, arrived in mine if event["type"] == "progress"]
    assert [event["progress"]["current"] for event, _ in progress] == [0, 1, 2, 3, 4]
    # Written a second apart, the progress events arrived spread over those seconds ...
    assert progress[-1][1] - progress[0][1] >= 2.0
    # ... the first before the last was even written ...
    assert progress[0][1] < written(progress[-1][0])
    # ... and each soon after the worker wrote it.
    for event, arrived in progress:
        lag = arrived - written(event)
        assert lag < 1.5, f"progress {event['progress']['current']} arrived {lag:.2f} s late"


def test_resume_through_nginx_replays_exactly_the_missed_events(
    stack: Stack, proxy: NginxProxy, site: httpx.Client
) -> None:
    first = SSEClient(f"{proxy.url}/api/events")
    with first:
        long = submit(site, "long", seconds=4)
        first.wait_for(lambda ms: any(e["type"] == "progress" for e in of_task(long["id"])(ms)))
    seen = list(first.messages)
    last_id = first.last_event_id
    assert last_id is not None
    # While the client is away and while it catches up, other tasks keep writing events.
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(base_url=proxy.url, timeout=15) as other:
            while not stop.is_set():
                submit(other, "add", x=1, y=2)

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        wait_until(lambda: stack.task(long["id"])["seq"] >= 5, 30, message="missed progress")
        second = SSEClient(f"{proxy.url}/api/events", {"Last-Event-ID": last_id})
        with second:
            second.wait_for(finished(long["id"]), 60)
    finally:
        stop.set()
        flooder.join()

    stack.assert_resumed_exactly(seen, second.messages, long["id"])
    assert of_task(long["id"])(seen + second.messages)[-1]["seq"] == stack.task(long["id"])["seq"]


def test_unusable_last_event_id_through_nginx_gets_reset(
    proxy: NginxProxy, site: httpx.Client
) -> None:
    with SSEClient(f"{proxy.url}/api/events", {"Last-Event-ID": "garbage"}) as stream:
        reset = stream.wait_for(lambda ms: len(ms) >= 1)[0]
        assert reset.event == "reset"
        assert reset.json()["last_event_id"] == reset.id
        assert "malformed" in reset.json()["reason"]
        task = submit(site, "add", x=2, y=2)
        stream.wait_for(finished(task["id"]), 60)


def test_page_and_api_share_one_origin(site: httpx.Client, web_root: Path) -> None:
    page = site.get("/")
    assert page.status_code == 200
    assert page.text == (web_root / "index.html").read_text()
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    # The page calls the API on its own origin ...
    config = site.get("/config.js")
    assert config.status_code == 200
    assert 'apiBaseUrl: ""' in config.text
    for asset in ("app.js", "styles.css"):
        assert site.get(f"/{asset}").content == (web_root / asset).read_bytes()
    # ... where the API answers, with no CORS needed: a browser's same-origin POST.
    origin = str(site.base_url).rstrip("/")
    response = site.post(
        "/api/tasks",
        json={"kind": "add", "params": {"x": 20, "y": 22}},
        headers={"Origin": origin},
    )
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert location == f"/api/tasks/{response.json()['id']}"

    def succeeded() -> dict[str, Any] | None:
        task: dict[str, Any] = site.get(location).json()
        return task if task["state"] == "succeeded" else None

    task = wait_until(succeeded, 60, message="the task submitted through nginx to succeed")
    assert task is not None
    assert task["result"] == 42


def test_the_access_log_masks_a_watch_token(proxy: NginxProxy, site: httpx.Client) -> None:
    task = submit(site, "add", x=1, y=1)
    minted = site.post(f"/api/tasks/{task['id']}/tokens")
    assert minted.status_code == 201, minted.text
    token = minted.json()["token"]
    with SSEClient(f"{proxy.url}/api/tasks/{task['id']}/events?access_token={token}") as stream:
        stream.wait_ended(60)
    assert stream.status == 200
    masked = f"GET /api/tasks/{task['id']}/events?access_token=*** HTTP/1.1"

    def logged() -> bool:
        return masked in proxy.access_log.read_text()

    wait_until(logged, 30, message=lambda: f"the masked line\n{proxy.access_log.read_text()}")
    assert token not in proxy.access_log.read_text()
