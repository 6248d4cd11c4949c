"""OpenTelemetry traces of a task: its `POST /api/tasks`, its message, each attempt on a worker.

Loaded only when TRACING_ENABLED is true, by `api/main.py` and `worker/app.py`; with tracing off
nothing imports this module and each traced path pays one `if`. One trace per submission:

- `ServerSpans` (the API's middleware): a SERVER span for each request, the child of the
  caller's `traceparent` when it sends one.
- `Tracing.send`: a PRODUCER span around the one Redis call that records the task and queues its
  message; the span's context rides in the message's headers as W3C `traceparent`, put there by
  `broker.message`. Celery copies them into a retry's message, so retries join the same trace.
- `Tracing.attempt`: a CONSUMER span for each attempt on a worker, the producer span its parent;
  `TracedEventStore` adds the task's events to it as span events.

Deliberate choices (do not "fix" these without reading why):

1. FastAPI's own request spans (on whenever a global tracer provider is set) are left off: an
   event stream, whose handling ends once its headers are out (`api/sse.py`), would end its span
   as an error, and they write the query string with `access_token` in the clear (ours write
   none). So the API's provider is its own, not the global one. The worker's is global: a
   kind's own spans (through the OpenTelemetry API) then join its attempt's.
2. A stream's span ends when its headers are out, as its handling does: it traces the admission,
   not the hours a client may stay.
3. Span events stay few: every event that moves the task (`started`, `retrying`, the final one),
   and `progress` each time it reaches another tenth. `output`, `log` and `metadata` events are
   counted, not recorded: a task may write thousands, and the span's event limit (128 by default)
   would otherwise push out its `started`.
4. `TRACING_EXPORT_FILE` exports each span as it ends (no batching), so a process's spans are on
   disk however it exits; the OTLP exporter batches, and a worker's pool process flushes its
   batch when it shuts down (Celery's `worker_process_shutdown`).
"""

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import signals
from celery.exceptions import Retry
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

try:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )
except ImportError as missing:  # FastAPI brings the API; the SDK comes with the extra
    raise ImportError("TRACING_ENABLED=true needs taskstream's `tracing` extra") from missing
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskstream import __version__, logs
from taskstream.events.models import EventDraft, EventType, TaskState
from taskstream.events.scripts import Appended, Begun, Interrupted, NotRunnable
from taskstream.events.store import EventStore, SyncEventStore
from taskstream.settings import Settings

Carrier = dict[str, str]  # a message's headers, as far as trace context goes


def _processor(settings: Settings) -> SpanProcessor:
    if settings.tracing_export_file:
        out = open(settings.tracing_export_file, "a", encoding="utf-8")  # noqa: SIM115 (the process's)
        return SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=_json_line))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter())  # endpoint, headers...: the OTEL_* variables


def _json_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def _provider(settings: Settings, role: str) -> TracerProvider:
    name = f"{settings.tracing_service_name}-{role}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(_processor(settings))
    return provider


@dataclass
class _Attempt:
    """An attempt's span and what of its events it holds (3.)."""

    span: Span
    tenth: int = -1  # of the latest progress recorded
    counted: dict[str, int] = field(default_factory=dict)

    def record(self, draft: EventDraft, seq: int, event_id: str) -> None:
        attributes: dict[str, str | int | float] = {
            "taskstream.event.seq": seq,
            "taskstream.event.id": event_id,
        }
        if draft.progress is not None:
            tenth = int(draft.progress.percent // 10)
            if tenth <= self.tenth:
                return
            self.tenth = tenth
            attributes["taskstream.progress.percent"] = draft.progress.percent
        elif draft.type.output_log or draft.type is EventType.metadata:
            self.counted[draft.type.value] = self.counted.get(draft.type.value, 0) + 1
            return
        if draft.error is not None:
            attributes["taskstream.error.type"] = draft.error.type
        self.span.add_event(draft.type.value, attributes)
        if draft.type is EventType.failed:
            self.span.set_status(Status(StatusCode.ERROR, draft.error.type if draft.error else ""))

    def end(self) -> None:
        for type, count in self.counted.items():
            self.span.set_attribute(f"taskstream.events.{type}", count)


class Tracing:
    """A process's tracer, and the spans of the attempts it runs now."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("taskstream", __version__)
        self._attempts: dict[str, _Attempt] = {}  # by task id (written by one attempt at a time)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        return ServerSpans(app, self.tracer)

    def store(self, client: "redis.Redis", settings: Settings) -> "TracedEventStore":
        return TracedEventStore(client, settings, self)

    async def send(
        self, store: EventStore, draft: EventDraft, message: Callable[[Carrier], tuple[str, str]]
    ) -> Appended:
        """Appends the queued event `draft` with the message `message(headers)` makes, in a
        PRODUCER span whose context those headers carry."""
        with self.tracer.start_as_current_span(
            f"send {draft.kind}",
            kind=SpanKind.PRODUCER,
            attributes=_messaging(draft.task_id, draft.kind, "send"),
        ) as span:
            headers: Carrier = {}
            propagate.inject(headers)
            queue, body = message(headers)
            span.set_attribute("messaging.destination.name", queue)
            appended = await store.append(draft, enqueue=(queue, body))
            span.add_event(
                EventType.queued.value,
                {"taskstream.event.seq": appended.seq, "taskstream.event.id": appended.id},
            )
            return appended

    @contextlib.contextmanager
    def attempt(
        self, task_id: str, kind: str, worker: str, headers: Mapping[str, Any] | None
    ) -> Iterator[None]:
        """A CONSUMER span around an attempt, the child of the span that sent its message."""
        parent = propagate.extract(dict(headers or {}))
        attributes = {**_messaging(task_id, kind, "process"), "taskstream.worker": worker}
        with self.tracer.start_as_current_span(
            f"process {kind}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            attempt = self._attempts[task_id] = _Attempt(span)
            try:
                yield
            except Retry:
                raise  # the attempt ended asking for another: its `retrying` event says so
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                attempt.end()
                del self._attempts[task_id]

    def record(self, draft: EventDraft, seq: int, event_id: str) -> None:
        attempt = self._attempts.get(draft.task_id)
        if attempt is not None:
            attempt.record(draft, seq, event_id)

    def started(self, task_id: str, attempt_number: int) -> None:
        attempt = self._attempts.get(task_id)
        if attempt is not None:
            attempt.span.set_attribute("taskstream.attempt", attempt_number)


def _messaging(task_id: str, kind: str, operation: str) -> dict[str, str]:
    return {
        "messaging.system": "celery",
        "messaging.operation.type": operation,
        "messaging.message.id": task_id,
        "taskstream.task.id": task_id,
        "taskstream.task.kind": kind,
    }


class TracedEventStore(SyncEventStore):
    """The worker's event store when tracing: each event it writes goes on its attempt's span."""

    def __init__(self, client: "redis.Redis", settings: Settings, tracing: Tracing) -> None:
        super().__init__(client, settings)
        self.tracing = tracing

    def append(
        self,
        draft: EventDraft,
        allowed: Iterable[TaskState] | None = None,
        expect: Mapping[str, str] | None = None,
        changes: Mapping[str, str] | None = None,
        enqueue: tuple[str, str] | None = None,
    ) -> Appended:
        appended = super().append(draft, allowed, expect, changes, enqueue)
        self.tracing.record(draft, appended.seq, appended.id)
        return appended

    def append_all(self, drafts: Sequence[EventDraft]) -> list[Appended]:
        appended = super().append_all(drafts)
        for draft, one in zip(drafts, appended, strict=True):
            self.tracing.record(draft, one.seq, one.id)
        return appended

    def begin(self, draft: EventDraft, dispatch: int) -> Begun | Interrupted | NotRunnable:
        outcome = super().begin(draft, dispatch)
        if isinstance(outcome, Begun):
            self.tracing.started(draft.task_id, outcome.attempt)
            self.tracing.record(draft, outcome.seq, outcome.event_id)
        return outcome


class ServerSpans:
    """A SERVER span for each HTTP request: `<method> <route>`, its status, its request id."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope["method"])
        with self.tracer.start_as_current_span(
            method,
            context=propagate.extract(_headers(scope)),
            kind=SpanKind.SERVER,
            attributes=_request_attributes(scope),
        ) as span:

            async def traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, traced)
            finally:
                route = getattr(scope.get("route"), "path", None)  # FastAPI's, once routed
                if isinstance(route, str):
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")


def _headers(scope: Scope) -> Carrier:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _request_attributes(scope: Scope) -> dict[str, str]:
    """What the request says of itself, less its query string (1.)."""
    attributes = {
        "http.request.method": str(scope["method"]),
        "url.scheme": str(scope.get("scheme", "http")),
        "url.path": str(scope["path"]),
    }
    request_id = logs.request_id.get()
    if request_id is not None:
        attributes["taskstream.request_id"] = request_id
    return attributes


def for_api(settings: Settings) -> Tracing:
    """The API's tracing, on a provider of its own (1.)."""
    return Tracing(_provider(settings, "api"))


def for_worker(settings: Settings) -> Tracing:
    """The worker's tracing, on the global provider, each pool process flushing at its end (4.)."""
    provider = _provider(settings, "worker")
    trace.set_tracer_provider(provider)

    @signals.worker_process_shutdown.connect(weak=False)
    def flush(**_: Any) -> None:
        provider.shutdown()

    return Tracing(provider)
