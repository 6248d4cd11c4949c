"""The Celery app of the worker, with one Celery task per declared kind.

celery -A taskstream.worker.app worker -Q taskstream --concurrency 4
"""

import os
from typing import TYPE_CHECKING, Any

from celery import Celery, Task

from taskstream import logs
from taskstream.broker import celery_task_name, make_celery
from taskstream.events.connection import sync_redis
from taskstream.events.store import SyncEventStore
from taskstream.kinds import KindRegistry, TaskKind, load
from taskstream.settings import Settings, settings_or_exit
from taskstream.worker.context import OutputLimits
from taskstream.worker.heartbeat import Heartbeat, identity
from taskstream.worker.runner import Runner

if TYPE_CHECKING:
    from taskstream.tracing import Tracing

_stores: dict[int, SyncEventStore] = {}


def _store(settings: Settings, tracing: "Tracing | None") -> SyncEventStore:
    """One store per process: a forked pool child must not share its parent's sockets."""
    pid = os.getpid()
    if pid not in _stores:
        _stores.clear()
        client = sync_redis(settings)
        _stores[pid] = (
            SyncEventStore(client, settings) if tracing is None else tracing.store(client, settings)
        )
    return _stores[pid]


def _tracing(settings: Settings) -> "Tracing | None":
    if not settings.tracing_enabled:
        return None
    from taskstream import tracing  # only now: with tracing off, OpenTelemetry is not loaded

    return tracing.for_worker(settings)


def _register(
    app: Celery, settings: Settings, kind: TaskKind[Any], tracing: "Tracing | None"
) -> None:
    def run(task: Task[Any, Any], task_id: str, dispatch: int = 1) -> None:
        def schedule_retry(delay: float) -> None:
            raise task.retry(countdown=delay)

        worker = identity(str(task.request.hostname or "worker"))
        runner = Runner(
            _store(settings, tracing),
            kind,
            worker,
            settings.worker_lost_retries,
            limits=OutputLimits.of(settings),
            result_max_bytes=settings.result_max_bytes,
            tracing=tracing,
        )
        runner.run(task_id, dispatch, schedule_retry, task.request.headers)

    run.__name__ = run.__qualname__ = f"run_{kind.name}"
    app.task(name=celery_task_name(kind.name), bind=True, max_retries=None)(run)


def create_app(settings: Settings, kinds: KindRegistry) -> Celery:
    app = make_celery(settings, kinds)
    app.conf.task_queues = None
    tracing = _tracing(settings)
    for kind in kinds:
        _register(app, settings, kind, tracing)
    app.steps["worker"].add(Heartbeat)
    return app


_settings = settings_or_exit()
logs.configure_worker(_settings)
app = create_app(_settings, load(_settings.task_kind_modules))
