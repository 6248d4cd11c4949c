"""A worker bootstep that records the worker as alive in Redis every few seconds.

`/readyz` counts the workers whose heartbeat is fresh; `python -m taskstream.worker.healthcheck`
checks the one on this host. The heartbeat runs in the worker's main process, so it stops when
the worker stops (or hangs), not when a task does.
"""

import logging
import threading
from typing import Any

from celery import bootsteps

from taskstream.events.connection import sync_redis
from taskstream.events.store import SyncEventStore
from taskstream.settings import get_settings

log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: SyncEventStore | None = None

    def start(self, parent: Any) -> None:
        settings = get_settings()
        self._store = SyncEventStore(sync_redis(settings), settings)
        name = str(parent.hostname)
        self._thread = threading.Thread(
            target=self._beat, args=(name, settings.worker_heartbeat_seconds), daemon=True
        )
        self._thread.start()

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._store is not None:
            try:
                self._store.forget_worker(str(parent.hostname))
            except Exception:  # Redis may be gone already; the entry then simply goes stale
                log.warning("could not remove the heartbeat of %s", parent.hostname)

    def _beat(self, name: str, interval: float) -> None:
        assert self._store is not None
        while not self._stop.is_set():
            try:
                self._store.heartbeat(name)
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(interval)
