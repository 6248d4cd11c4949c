"""Builds the FastAPI application: `uvicorn --factory taskstream.api.main:create_app`."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from taskstream import __version__, logs
from taskstream.api import access_log, auth, problems, sse
from taskstream.api.auth import Authenticator
from taskstream.api.deps import Services
from taskstream.api.fanout import Fanout
from taskstream.api.http_metrics import CountRequests
from taskstream.api.limits import BodySizeLimit
from taskstream.api.metrics import Metrics
from taskstream.api.routes import events, health, session, tasks, tokens
from taskstream.api.routes import kinds as kind_routes
from taskstream.api.routes import metrics as metrics_routes
from taskstream.api.routes import problems as problem_routes
from taskstream.api.service import TaskService
from taskstream.api.tokens import Signer
from taskstream.broker import make_celery
from taskstream.events import requirements
from taskstream.events.connection import async_redis
from taskstream.events.store import EventStore
from taskstream.kinds import KindRegistry, load
from taskstream.settings import Settings, get_settings

if TYPE_CHECKING:
    from taskstream.tracing import Tracing

DESCRIPTION = """\
Submit slow work to background workers and watch every step of it live.

Submit a task with `POST /api/tasks`, then follow its events on `GET /api/events` (every task) or
`GET /api/tasks/{id}/events` (one task) as Server-Sent Events. Errors are
[problem details](https://www.rfc-editor.org/rfc/rfc9457) naming what was wrong.
"""


log = logging.getLogger(__name__)


async def _warn_of_redis(client: Redis) -> None:
    """Logs once what the Redis found breaks of what taskstream needs (`requirements`)."""
    try:
        for shortfall in await requirements.shortfalls(client):
            log.warning("Redis: %s", shortfall)
    except (RedisError, OSError) as exc:  # not reachable yet: /readyz says so, and warns later
        log.info("Redis did not answer at start-up: %s", exc)


def _tracing(settings: Settings) -> "Tracing | None":
    if not settings.tracing_enabled:
        return None
    from taskstream import tracing  # only now: with tracing off, OpenTelemetry is not loaded

    return tracing.for_api(settings)


class TaskstreamAPI(FastAPI):
    """Runs an event stream below the framework once its headers are out (see `sse`), and names
    each request outside the framework's error handling, so that a crash's answer is named too."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await sse.below_the_framework(super().__call__, scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        return logs.RequestId(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    kinds: KindRegistry | None = None,
    authenticate: Authenticator | None = None,
) -> FastAPI:
    """The API. `authenticate`: the application's own way to tell who is asking, in place of
    API_KEYS and sessions, when taskstream runs inside that application (`embed.mount`)."""
    settings = settings or get_settings()
    kinds = kinds or load(settings.task_kind_modules)
    signer = Signer(settings, known_principals=authenticate is None)
    traced = _tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = async_redis(settings)
        reader = async_redis(
            settings, socket_timeout=settings.reader_block_ms / 1000 + 5, name="taskstream-reader"
        )
        store = EventStore(client, settings)
        # Streams catch up from the log on a pool of their own, which they wait for as long as
        # it takes: a reconnect storm neither fails its streams nor starves requests.
        catchup = async_redis(settings, name="taskstream-streams", patient=True)
        fanout = Fanout(store, reader, settings.reader_block_ms, settings.client_buffer_events)
        celery = make_celery(settings, kinds)
        metrics = Metrics(fanout) if settings.metrics_enabled else None
        if metrics is not None:
            fanout.observers.append(metrics.observe)
        app.state.services = Services(
            settings=settings,
            kinds=kinds,
            store=store,
            stream_store=EventStore(catchup, settings),
            fanout=fanout,
            tasks=TaskService(store, celery, kinds, settings, traced),
            metrics=metrics,
            signer=signer,
            authenticate=authenticate,
        )
        await _warn_of_redis(client)
        fanout.start()
        try:
            async with sse.streaming(fanout, settings.keepalive_seconds):
                # Long-lived objects made so far never need collecting again: keep full
                # collections from walking them while clients stream.
                gc.freeze()
                yield
        finally:
            await fanout.stop()
            celery.close()
            await reader.aclose()
            await catchup.aclose()
            await client.aclose()

    app = TaskstreamAPI(
        title="taskstream",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_credentials=True,  # the session cookie, when the API requires keys
        allow_headers=[
            "Content-Type",
            "Idempotency-Key",
            "Last-Event-ID",
            "Authorization",
            "X-Request-ID",
        ],
        expose_headers=["Location", "Retry-After", "Idempotent-Replayed", "X-Request-ID"],
        max_age=600,
    )
    if traced is not None:
        app.add_middleware(traced.middleware)
    if settings.metrics_enabled:
        app.add_middleware(CountRequests)  # outermost of ours: it sees every answer, a 413 too
    problems.install(app, frozenset(kinds.names()))
    sse.document(app)
    auth.document(app, anonymous=authenticate is None and not settings.auth_required)
    app.include_router(health.router)
    app.include_router(problem_routes.router)
    app.include_router(kind_routes.router)
    app.include_router(session.router)
    app.include_router(tasks.build_router(kinds))
    app.include_router(tokens.build_router(settings))
    app.include_router(events.router)
    if settings.metrics_enabled:
        app.include_router(metrics_routes.router)
    logging.getLogger("taskstream").setLevel(settings.log_level)
    access_log.install()
    return app
