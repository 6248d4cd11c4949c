"""The `TaskContext` a kind's function receives while it runs on a worker."""

import time
from collections.abc import Callable

from taskstream.errors import TransitionRefused
from taskstream.events.models import EventDraft, EventType, Progress
from taskstream.events.store import SyncEventStore
from taskstream.kinds import TaskCancelled


class WorkerContext:
    def __init__(
        self,
        store: SyncEventStore,
        task_id: str,
        kind: str,
        attempt: int,
        *,
        cancel_requested: bool = False,
        poll_seconds: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._task_id = task_id
        self._kind = kind
        self._attempt = attempt
        self._poll = poll_seconds
        self._clock = clock
        self._sleep = sleep
        self._cancel = cancel_requested
        self._checked_at = clock()  # what the attempt's start read is fresh

    @property
    def attempt(self) -> int:
        return self._attempt

    def progress(self, current: float, total: float, message: str = "") -> None:
        draft = EventDraft(
            task_id=self._task_id,
            kind=self._kind,
            type=EventType.progress,
            progress=Progress.of(current, total, message),
        )
        try:
            appended = self._store.append(draft)
        except TransitionRefused as refused:  # the task was finished meanwhile
            raise TaskCancelled(str(refused)) from refused
        self._remember(appended.cancel_requested)
        if self._cancel:
            raise TaskCancelled("cancelled while running")

    def cancelled(self) -> bool:
        if not self._cancel and self._clock() - self._checked_at >= self._poll:
            self._remember(self._store.cancel_requested(self._task_id))
        return self._cancel

    def sleep(self, seconds: float) -> None:
        deadline = self._clock() + seconds
        while True:
            if self.cancelled():
                raise TaskCancelled("cancelled while running")
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._sleep(min(self._poll, remaining))

    def _remember(self, cancel_requested: bool) -> None:
        self._cancel = self._cancel or cancel_requested
        self._checked_at = self._clock()
