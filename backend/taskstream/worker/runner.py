"""One attempt of one task: the events around a kind's function, and what its outcome means.

This is plain logic over the event store; `worker/app.py` wraps it in Celery tasks. `schedule_retry`
is how a retry is asked of the queue (Celery's `Task.retry`, which raises to end the attempt).
"""

import logging
import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import JsonValue, TypeAdapter, ValidationError

from taskstream.errors import TransitionRefused
from taskstream.events.models import ErrorInfo, EventDraft, EventType, TaskState, utcnow
from taskstream.events.scripts import Begun, NotRunnable
from taskstream.events.store import SyncEventStore
from taskstream.kinds import RetryableError, TaskCancelled, TaskKind
from taskstream.worker.context import OutputLimits, WorkerContext
from taskstream.worker.recovery import record_lost

if TYPE_CHECKING:
    from taskstream.tracing import Tracing

log = logging.getLogger(__name__)
_JSON = TypeAdapter(JsonValue)


class ResultTooLarge(Exception):
    """A kind's result past RESULT_MAX_BYTES: the task fails with this as its error."""


class Runner:
    def __init__(
        self,
        store: SyncEventStore,
        kind: TaskKind[Any],
        worker: str,
        lost_limit: int = 2,
        jitter: Callable[[], float] = random.random,
        limits: OutputLimits | None = None,
        result_max_bytes: int = 1024 * 1024,
        tracing: "Tracing | None" = None,
    ) -> None:
        self._store = store
        self._kind = kind
        self._worker = worker
        self._lost_limit = lost_limit
        self._jitter = jitter
        self._limits = limits or OutputLimits()
        self._result_max_bytes = result_max_bytes
        self._tracing = tracing

    def run(
        self,
        task_id: str,
        dispatch: int,
        schedule_retry: Callable[[float], None],
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """`headers`: the message's, which carry the trace's context when tracing is on."""
        if self._tracing is None:
            self._run(task_id, dispatch, schedule_retry)
            return
        with self._tracing.attempt(task_id, self._kind.name, self._worker, headers):
            self._run(task_id, dispatch, schedule_retry)

    def _run(self, task_id: str, dispatch: int, schedule_retry: Callable[[float], None]) -> None:
        begun = self._begin(task_id, dispatch)
        if begun is None:
            return
        attempt, params = begun.attempt, begun.params
        ctx = WorkerContext(
            self._store,
            task_id,
            self._kind.name,
            attempt,
            limits=self._limits,
            cancel_requested=begun.cancel_requested,
        )
        try:
            try:
                if ctx.cancelled():
                    raise TaskCancelled("cancelled before it started")
                result = self._checked(self._kind.execute(params, ctx))
            finally:
                ctx.close()  # what the kind wrote goes out before its outcome
        except TaskCancelled:
            self._finish(task_id, EventType.cancelled)
        except RetryableError as exc:
            self._retry_or_fail(task_id, params, attempt, exc, schedule_retry)
        except SoftTimeLimitExceeded:
            limit = self._kind.time_limit(self._kind.params.model_validate(params))
            error = ErrorInfo(type="TimeLimitExceeded", message=f"ran longer than {limit:g} s")
            self._finish(task_id, EventType.failed, error=error)
        except ResultTooLarge as exc:
            self._finish(task_id, EventType.failed, error=ErrorInfo.of(exc))
        except ValidationError as exc:
            error = ErrorInfo(type="InvalidResult", message=str(exc))
            self._finish(task_id, EventType.failed, error=error)
        except Exception as exc:
            log.exception("task %s (%s) failed", task_id, self._kind.name)
            self._finish(task_id, EventType.failed, error=ErrorInfo.of(exc))
        else:
            self._finish(task_id, EventType.succeeded, result=result)

    def _checked(self, result: Any) -> JsonValue:
        """The kind's result if it is JSON within RESULT_MAX_BYTES."""
        checked: JsonValue = _JSON.validate_python(result)
        size = len(_JSON.dump_json(checked))
        if size > self._result_max_bytes:
            raise ResultTooLarge(f"the result is {size} bytes; at most {self._result_max_bytes}")
        return checked

    def _begin(self, task_id: str, dispatch: int) -> Begun | None:
        for _ in range(3):
            started = EventDraft(
                task_id=task_id, kind=self._kind.name, type=EventType.started, worker=self._worker
            )
            outcome = self._store.begin(started, dispatch)
            if isinstance(outcome, Begun):
                return outcome
            if isinstance(outcome, NotRunnable):
                log.info("skipping task %s: %s", task_id, outcome.reason)
                return None
            # This message again, after the pool process running it died: record the loss.
            try:
                again = record_lost(
                    self._store,
                    task_id,
                    self._kind.name,
                    outcome.worker,
                    outcome.attempts,
                    outcome.lost,
                    self._lost_limit,
                    redispatch=False,
                )
            except TransitionRefused:
                continue
            if not again:
                return None
        return None

    def _retry_or_fail(
        self,
        task_id: str,
        params: dict[str, Any],
        attempt: int,
        exc: RetryableError,
        schedule_retry: Callable[[float], None],
    ) -> None:
        policy = self._kind.retry_policy(params)
        if attempt > policy.max_retries:
            self._finish(task_id, EventType.failed, error=ErrorInfo.of(exc))
            return
        delay = policy.delay(attempt, self._jitter())
        retry_at = utcnow() + timedelta(seconds=delay)
        error = ErrorInfo.of(exc)
        self._append(task_id, EventType.retrying, error=error, retry_at=retry_at)
        schedule_retry(delay)

    def _finish(self, task_id: str, type: EventType, **fields: Any) -> None:
        try:
            self._append(task_id, type, **fields)
        except TransitionRefused as refused:
            log.warning("outcome of task %s not recorded: %s", task_id, refused)

    def _append(self, task_id: str, type: EventType, **fields: Any) -> None:
        draft = EventDraft(task_id=task_id, kind=self._kind.name, type=type, **fields)
        allowed = {TaskState.running} if type.final else None
        self._store.append(draft, allowed)
