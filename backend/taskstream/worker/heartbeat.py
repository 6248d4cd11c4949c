"""A worker bootstep that records the worker as alive in Redis every few seconds, and sweeps.

`/readyz` counts the workers whose heartbeat is fresh; `python -m taskstream.worker.healthcheck`
checks the one on this host. The heartbeat runs in the worker's main process, so it stops when
the worker stops (or hangs), not when a task does. After each beat the same thread looks for
attempts left running by workers whose heartbeat went stale (`recovery.Sweeper`).

A worker is named by its Celery node name and its main process id, so a worker restarted under
the same name is not mistaken for the one that was lost.
"""

# Imported here, before the heartbeat thread runs: the thread's first connection would otherwise
# import the IDNA codec (socket.getaddrinfo needs it) while the pool forks, and a child forked
# while that module's import lock is held deadlocks on its own first connection.
import encodings.idna  # noqa: F401
import logging
import os
import threading
from typing import Any

from celery import bootsteps

from taskstream.events.connection import sync_redis
from taskstream.events.store import SyncEventStore
from taskstream.kinds import REGISTRY
from taskstream.settings import get_settings
from taskstream.worker.recovery import Sweeper

log = logging.getLogger(__name__)
# Read when the worker's main process imports this, before the pool forks: its children share it.
MAIN_PID = os.getpid()


def identity(hostname: str) -> str:
    return f"{hostname}/{MAIN_PID}"


class Heartbeat(bootsteps.StartStopStep):
    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: SyncEventStore | None = None
        self._sweeper: Sweeper | None = None

    def start(self, parent: Any) -> None:
        settings = get_settings()
        self._store = SyncEventStore(sync_redis(settings), settings)
        self._sweeper = Sweeper(self._store, parent.app, settings, REGISTRY)
        self._name = identity(str(parent.hostname))
        self._thread = threading.Thread(
            target=self._beat, args=(self._name, settings.worker_heartbeat_seconds), daemon=True
        )
        self._thread.start()

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._store is not None:
            try:
                self._store.forget_worker(self._name)
            except Exception:  # Redis may be gone already; the entry then simply goes stale
                log.warning("could not remove the heartbeat of %s", self._name)

    def _beat(self, name: str, interval: float) -> None:
        assert self._store is not None
        assert self._sweeper is not None
        while not self._stop.is_set():
            try:
                self._store.heartbeat(name)
                self._sweeper.sweep()
            except Exception as exc:  # Redis away: keep beating, it will be back
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(interval)
