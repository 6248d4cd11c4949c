"""HTTP requests by method, route template and status, and their latency: an ASGI middleware.

1. Routes are labelled by their template (`/api/tasks/{task_id}`), never by the raw path, so the
   number of series stays bounded however many tasks there are. A request no route matched is
   labelled `unmatched`, and an unknown method `other`.
2. An event stream is counted once, when its headers go out. Its duration is the client's, not a
   latency, so it is left out of the histogram. Its headers are all this middleware ever sees of
   it: the rest runs below the framework with the server's own `send` (see `sse`), and nothing
   here is held while it is open.
3. The recorder is looked up on the application's services for each request: they are made by
   the lifespan, after the middleware was installed.
"""

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
EVENT_STREAM = b"text/event-stream"


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "taskstream_http_requests",
            "HTTP requests by method, route template and status (event streams when they start)",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "taskstream_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template (not event streams)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Children by labels, so a request costs two dictionary look-ups, not label checks.
        self._counted: dict[tuple[str, str, str], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def count(self, method: str, route: str, status: int) -> None:
        key = (method, route, str(status))
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = self.requests.labels(*key)
        child.inc()

    def time(self, method: str, route: str, seconds: float) -> None:
        key = (method, route)
        child = self._timed.get(key)
        if child is None:
            child = self._timed[key] = self.latency.labels(*key)
        child.observe(seconds)


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, as the router left it in the scope."""
    route = scope.get("route")
    endpoint = scope.get("endpoint")
    if route is None and endpoint is not None:
        # A plain Starlette route (the docs, the OpenAPI description) leaves only its endpoint.
        routes = getattr(scope.get("router"), "routes", ())
        route = next((r for r in routes if getattr(r, "endpoint", None) is endpoint), None)
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else UNMATCHED


def is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(
        name == b"content-type" and value.startswith(EVENT_STREAM) for name, value in headers
    )


def _recorder(scope: Scope) -> RequestMetrics | None:
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    recorder = getattr(getattr(services, "metrics", None), "http", None)
    return recorder if isinstance(recorder, RequestMetrics) else None


class CountRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        recorder = _recorder(scope) if scope["type"] == "http" else None
        if recorder is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "other"
        started = time.perf_counter()
        status = 500  # unless a response starts: the server answers an exception with a 500
        stream = False

        async def counting(message: Message) -> None:
            nonlocal status, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                if is_event_stream(message.get("headers", ())):
                    stream = True
                    recorder.count(method, route_template(scope), status)
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            if not stream:
                route = route_template(scope)
                recorder.count(method, route, status)
                recorder.time(method, route, time.perf_counter() - started)
