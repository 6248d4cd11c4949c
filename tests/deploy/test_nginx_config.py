"""The nginx site config, run by a real nginx in front of a stand-in API.

The stand-in records what reaches it and holds its event stream open until the test has read the
first event through nginx: a proxy that holds data back never delivers that event, so the test
cannot pass by timing luck. The stream comes chunked, as uvicorn sends it (compression would hold
it back), and close-delimited (buffering would hold it back: nginx forwards chunked data at once
even with proxy_buffering on). Unlike sse-starlette the stand-in sends no X-Accel-Buffering, so
what is proven is the config itself.
"""

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.deploy.nginx import NginxProxy
from tests.support.processes import free_port

TIMEOUT = 10.0
SSE_PATHS = ["/api/events", "/api/tasks/0193f2a4c5d6e7f8a9b0c1d2e3f4a5b6/events"]


@dataclass(frozen=True)
class SeenRequest:
    path: str
    headers: Message


class StubApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.seen: queue.Queue[SeenRequest] = queue.Queue()
        self.release_stream = threading.Event()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def next_request(self) -> SeenRequest:
        return self.seen.get(timeout=TIMEOUT)


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # as nginx speaks upstream: each response says where it ends
    server: StubApi

    def do_GET(self) -> None:
        self.server.seen.put(SeenRequest(self.path, self.headers))
        if self.path.endswith("/events"):
            self._stream_events()
        else:
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    def _stream_events(self) -> None:
        chunked = self.headers["X-Test-Framing"] == "chunked"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self._write(b"id: 1-0\nevent: started\ndata: {}\n\n", chunked)
        self.server.release_stream.wait(timeout=TIMEOUT * 3)
        self._write(b"id: 2-0\nevent: succeeded\ndata: {}\n\n", chunked)
        if chunked:
            self._write(b"", chunked)
        self.close_connection = True

    def _write(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stub_api() -> Iterator[StubApi]:
    server = StubApi()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.release_stream.set()
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def web_root(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>taskstream</title>\n")
    (root / "config.js").write_text('window.TASKSTREAM_CONFIG = {apiBaseUrl: ""};\n')
    (root / "assets" / "app-3f9a1c2b.js").write_text("export {};\n")
    return root


@pytest.fixture
def client(stub_api: StubApi, web_root: Path) -> Iterator[httpx.Client]:
    with (
        NginxProxy(stub_api.port, web_root) as proxy,
        httpx.Client(base_url=proxy.url, timeout=TIMEOUT) as http,
    ):
        yield http


def test_app_shell_carries_the_security_headers(client: httpx.Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert "<title>taskstream</title>" in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in response.headers["permissions-policy"]
    assert response.headers["cache-control"] == "no-cache"


def test_client_side_routes_get_the_app_shell(client: httpx.Client) -> None:
    response = client.get("/tasks/0193f2a4c5d6e7f8a9b0c1d2e3f4a5b6")

    assert response.status_code == 200
    assert "<title>taskstream</title>" in response.text
    assert response.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_cached_for_good_and_config_is_revalidated(
    client: httpx.Client,
) -> None:
    asset = client.get("/assets/app-3f9a1c2b.js")
    config = client.get("/config.js")

    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert config.status_code == 200
    assert config.headers["cache-control"] == "no-cache"


def test_missing_asset_is_a_404_that_is_not_cached(client: httpx.Client) -> None:
    response = client.get("/assets/app-00000000.js")

    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-cache"


def test_api_requests_reach_the_api_unchanged(client: httpx.Client, stub_api: StubApi) -> None:
    response = client.get("/api/tasks", params={"state": "running", "limit": "5"})

    assert response.status_code == 200
    assert response.json() == {"path": "/api/tasks?state=running&limit=5"}
    # The API's own caching decision passes through alone.
    assert response.headers.get_list("cache-control") == ["no-store"]
    seen = stub_api.next_request()
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert seen.headers["Host"] == client.base_url.netloc.decode()
    # An upstream keep-alive connection, not one per request.
    assert seen.headers.get("Connection", "").lower() != "close"


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/workers", "/openapi.json", "/docs", "/problems/not_found"]
)
def test_api_documentation_and_probes_are_proxied(
    client: httpx.Client, stub_api: StubApi, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert stub_api.next_request().path == path


def test_docs_page_may_load_swagger_ui_from_its_cdn(client: httpx.Client) -> None:
    csp = client.get("/docs").headers["content-security-policy"]

    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize("framing", ["chunked", "close-delimited"])
@pytest.mark.parametrize("path", SSE_PATHS)
def test_events_stream_through_as_they_are_written(
    client: httpx.Client, stub_api: StubApi, path: str, framing: str
) -> None:
    headers = {
        "Last-Event-ID": "1764072000000-0",
        "Accept-Encoding": "gzip",
        "X-Test-Framing": framing,
    }
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert "content-encoding" not in response.headers
        chunks = response.iter_raw()
        first = b""
        try:
            while b"\n\n" not in first:
                first += next(chunks)
        except httpx.ReadTimeout:
            pytest.fail("nginx held the first event back while the stream was open")
        stub_api.release_stream.set()
        rest = b"".join(chunks)

    assert first.startswith(b"id: 1-0\nevent: started\n")
    assert rest.endswith(b"id: 2-0\nevent: succeeded\ndata: {}\n\n")
    assert stub_api.next_request().headers["Last-Event-ID"] == "1764072000000-0"


def test_oversized_request_body_is_refused_before_the_api(
    client: httpx.Client, stub_api: StubApi
) -> None:
    response = client.post("/api/tasks", content=b"x" * (65 * 1024))

    assert response.status_code == 413
    assert stub_api.seen.empty()


def test_unreachable_api_answers_problem_json(web_root: Path) -> None:
    with (
        NginxProxy(free_port(), web_root) as proxy,
        httpx.Client(base_url=proxy.url, timeout=TIMEOUT) as http,
    ):
        response = http.get("/api/tasks")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/unavailable"
