"""The API's dependencies as `Annotated` aliases, all taken from the app's state.

They are `async def` although none awaits: FastAPI runs a plain `def` dependency in a thread.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from taskstream.api.fanout import Fanout
from taskstream.api.metrics import Metrics
from taskstream.api.service import TaskService
from taskstream.api.tokens import Signer
from taskstream.events.store import EventStore
from taskstream.kinds import KindRegistry
from taskstream.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    kinds: KindRegistry
    store: EventStore
    stream_store: EventStore  # the SSE streams' catch-up reads, on a pool of their own
    fanout: Fanout
    tasks: TaskService
    metrics: Metrics | None
    signer: Signer
    # The host application's own authentication, when taskstream runs inside it (`embed`).
    authenticate: Callable[[Request], Awaitable[str]] | None = None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _settings(request: Request) -> Settings:
    return _services(request).settings


async def _kinds(request: Request) -> KindRegistry:
    return _services(request).kinds


async def _store(request: Request) -> EventStore:
    return _services(request).store


async def _stream_store(request: Request) -> EventStore:
    return _services(request).stream_store


async def _fanout(request: Request) -> Fanout:
    return _services(request).fanout


async def _tasks(request: Request) -> TaskService:
    return _services(request).tasks


SettingsDep = Annotated[Settings, Depends(_settings)]
KindsDep = Annotated[KindRegistry, Depends(_kinds)]
StoreDep = Annotated[EventStore, Depends(_store)]
StreamStoreDep = Annotated[EventStore, Depends(_stream_store)]
FanoutDep = Annotated[Fanout, Depends(_fanout)]


async def _metrics(request: Request) -> Metrics | None:
    return _services(request).metrics


async def _signer(request: Request) -> Signer:
    return _services(request).signer


TasksDep = Annotated[TaskService, Depends(_tasks)]
SignerDep = Annotated[Signer, Depends(_signer)]
MetricsDep = Annotated[Metrics | None, Depends(_metrics)]
