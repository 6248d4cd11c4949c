"""What happens to an attempt whose worker was lost (killed, crashed, or its machine gone).

Two cases. A pool process dies while its worker lives on: Celery hands the same message back
(late acknowledgement, rejected on a lost worker), and the next `BEGIN` finds the earlier attempt
still marked running. A whole worker dies: its heartbeat goes stale, and the sweeper of any live
worker finds its running attempts and dispatches them again. Either way the loss is recorded as a
`retrying` event naming the lost worker, or, after WORKER_LOST_RETRIES losses, a `failed` one.

Each dispatch of a task is numbered. A message of an older dispatch (such as the lost worker's
unacknowledged one, which Redis hands out again once its visibility timeout passes) is refused by
`BEGIN`, so a task never runs twice at once because of a recovery.
"""

import logging
from typing import Any

from celery import Celery

from taskstream import broker
from taskstream.errors import TransitionRefused
from taskstream.events.models import ErrorInfo, EventDraft, EventType, TaskState, utcnow
from taskstream.events.store import SyncEventStore
from taskstream.kinds import KindRegistry
from taskstream.settings import Settings

log = logging.getLogger(__name__)


def record_lost(
    store: SyncEventStore,
    task_id: str,
    kind: str,
    worker: str,
    attempts: int,
    lost: int,
    limit: int,
    *,
    redispatch: bool,
    enqueue: tuple[str, str] | None = None,
) -> bool:
    """`enqueue`: the next dispatch's message, queued in the same step as the loss is recorded."""
    """Records that `worker` was lost during attempt `attempts`; True if the task runs again."""
    message = f"worker {worker or 'unknown'} was lost during attempt {attempts}"
    give_up = lost >= limit
    if give_up:
        message += f"; giving up after {lost + 1} lost attempts"
    draft = EventDraft(
        task_id=task_id,
        kind=kind,
        type=EventType.failed if give_up else EventType.retrying,
        error=ErrorInfo(type="WorkerLost", message=message),
        retry_at=None if give_up else utcnow(),
    )
    changes = {"+lost": "1"}
    if redispatch and not give_up:
        changes["+dispatch"] = "1"
    expect = {"worker": worker, "attempts": str(attempts)}
    store.append(draft, {TaskState.running}, expect, changes, enqueue=None if give_up else enqueue)
    log.warning("task %s: %s", task_id, message)
    return not give_up


class Sweeper:
    """Finds attempts marked running on workers whose heartbeat went stale, and resolves them."""

    def __init__(
        self, store: SyncEventStore, app: Celery, settings: Settings, kinds: KindRegistry
    ) -> None:
        self._store = store
        self._app = app
        self._settings = settings
        self._kinds = kinds

    def sweep(self) -> int:
        running = self._store.running_tasks()
        if not running:
            return 0
        live = self._store.live_workers()
        resolved = 0
        for task in running:
            if task.worker in live:
                continue
            kind = self._kinds.get(task.kind)
            enqueue = None
            if kind is not None:
                stored = self._store.get_task(task.id)
                params: dict[str, Any] = stored.params if stored else {}
                soft_limit = kind.time_limit(kind.params.model_validate(params))
                enqueue = broker.message(
                    self._app, self._settings, kind, task.id, soft_limit, task.dispatch + 1
                )
            try:
                record_lost(
                    self._store,
                    task.id,
                    task.kind,
                    task.worker,
                    task.attempts,
                    task.lost,
                    self._settings.worker_lost_retries,
                    redispatch=True,
                    enqueue=enqueue,
                )
            except TransitionRefused:
                continue  # another sweeper, or the attempt itself, got there first
            resolved += 1
        return resolved
