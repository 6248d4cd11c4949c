"""Hands a task to Celery without blocking the event loop (kombu's publish is blocking I/O)."""

from typing import Any

import anyio
from celery import Celery

from taskstream import broker
from taskstream.kinds import TaskKind
from taskstream.settings import Settings


class Dispatcher:
    def __init__(self, app: Celery, settings: Settings, threads: int = 8) -> None:
        self._app = app
        self._settings = settings
        self._limiter = anyio.CapacityLimiter(threads)

    async def send(self, kind: TaskKind[Any], task_id: str, params: Any) -> None:
        soft_limit = kind.time_limit(params)
        await anyio.to_thread.run_sync(
            broker.send,
            self._app,
            self._settings,
            kind,
            task_id,
            soft_limit,
            limiter=self._limiter,
        )

    def close(self) -> None:
        self._app.close()
