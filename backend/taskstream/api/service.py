"""What the task routes do, over the event store and the dispatcher: submit, read, cancel."""

import contextlib
from typing import TYPE_CHECKING, Any

from celery import Celery
from pydantic import BaseModel
from redis.exceptions import RedisError

from taskstream import broker
from taskstream.api.caller import Caller
from taskstream.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidRequest,
    TaskFinished,
    TaskNotFound,
    TooManyRequests,
    TransitionRefused,
)
from taskstream.events import idempotency
from taskstream.events.ids import new_task_id
from taskstream.events.models import EventDraft, EventType, Task, TaskOutput, TaskState
from taskstream.events.scripts import Appended
from taskstream.events.state import fold
from taskstream.events.store import EventStore, TaskPage
from taskstream.kinds import KindRegistry, TaskKind
from taskstream.settings import Settings

if TYPE_CHECKING:
    from taskstream.tracing import Tracing


def _counted_as(caller: Caller) -> str:
    """The name the store counts the caller's submissions and idempotency keys under: `""` for
    anyone, as those keys have always been written."""
    return caller.name or ""


class TaskService:
    """Every call names the caller asking: a task is seen, listed and cancelled only by a caller
    that may see it (with keys, the one that submitted it; without, anyone)."""

    def __init__(
        self,
        store: EventStore,
        celery: Celery,
        kinds: KindRegistry,
        settings: Settings,
        tracing: "Tracing | None" = None,
    ) -> None:
        self._store = store
        self._celery = celery  # only to build messages: the API never connects to the broker
        self._kinds = kinds
        self._settings = settings
        self._tracing = tracing

    async def submit(
        self,
        caller: Caller,
        kind_name: str,
        params: BaseModel,
        idempotency_key: str | None = None,
        tags: list[str] | None = None,
    ) -> tuple[Task, bool]:
        """Records the task as queued, then queues it. Returns it and whether it is new."""
        kind = self._kinds.get(kind_name)
        if kind is None:
            raise InvalidRequest(f"unknown kind {kind_name!r}", field="kind")
        values = params.model_dump(mode="json")
        tags = list(dict.fromkeys(tags or ()))  # each once, in the order given
        task_id = new_task_id()
        owner = caller.name
        if idempotency_key is not None:
            fingerprint = idempotency.fingerprint(kind_name, values, tags)
            scoped = idempotency.scoped_key(caller.name, idempotency_key)
            claimed = await self._store.claim_idempotency_key(scoped, f"{task_id}:{fingerprint}")
            if claimed is not None:
                return await self._replay(idempotency_key, claimed, fingerprint), False
        await self._check_rate(caller)
        draft = EventDraft(
            task_id=task_id,
            kind=kind_name,
            type=EventType.queued,
            params=values,
            tags=tags or None,
            owner=owner,
        )
        try:
            appended = await self._queue(draft, kind, kind.time_limit(params))
        except BaseException:
            if idempotency_key is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._store.release_idempotency_key(scoped)
            raise
        task = fold(None, draft, appended.seq, appended.id)  # what the log stored, by its table
        return task.model_copy(update={"owner": draft.owner}), True

    async def _queue(self, draft: EventDraft, kind: TaskKind[Any], soft_limit: float) -> Appended:
        """The queued event, the task's state and the Celery message, in one step."""
        celery, settings, task_id = self._celery, self._settings, draft.task_id
        if self._tracing is not None:  # the message then carries the trace's context
            return await self._tracing.send(
                self._store,
                draft,
                lambda headers: broker.message(
                    celery, settings, kind, task_id, soft_limit, headers=headers
                ),
            )
        queued = broker.message(celery, settings, kind, task_id, soft_limit)
        return await self._store.append(draft, enqueue=queued)

    async def _check_rate(self, caller: Caller) -> None:
        limit = self._settings.submit_rate_per_minute
        if limit:
            count, retry_after = await self._store.count_submission(_counted_as(caller))
            if count > limit:
                raise TooManyRequests(
                    f"more than {limit} submissions a minute; try again in {retry_after} s",
                    retry_after,
                )

    async def _replay(self, key: str, claimed: str, fingerprint: str) -> Task:
        task_id, _, stored = claimed.partition(":")
        if stored != fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was used for a different request",
                field="header.Idempotency-Key",
            )
        task = await self._store.get_task(task_id)
        if task is None:
            raise IdempotencyInProgress(
                f"the first request with Idempotency-Key {key!r} is unfinished"
            )
        return task

    async def get(self, task_id: str, caller: Caller) -> Task:
        task = await self._store.get_task(task_id)
        if task is None or not caller.may_read(task.id, task.owner, task.tags):
            raise TaskNotFound(task_id)  # another's task is as good as missing
        return task

    async def page(
        self,
        caller: Caller,
        state: TaskState | None,
        kind: str | None,
        limit: int,
        cursor: str | None,
        tag: str | None = None,
    ) -> TaskPage:
        if kind is not None and self._kinds.get(kind) is None:
            raise InvalidRequest(
                f"unknown kind {kind!r}; known: {', '.join(self._kinds.names())}",
                field="query.kind",
            )
        if caller.scope is not None:  # a tag's watch token lists that tag's tasks
            tag = caller.scope.narrow_tag(tag)
        return await self._store.list_tasks(
            state=state, kind=kind, limit=limit, cursor=cursor, owner=caller.name, tag=tag
        )

    async def output(self, task_id: str, caller: Caller) -> tuple[Task, TaskOutput]:
        """The task and its output so far, as one read."""
        read = await self._store.read_output(task_id)
        if read is None or not caller.may_read(task_id, read[0].owner, read[0].tags):
            raise TaskNotFound(task_id)
        return read

    async def cancel(self, task_id: str, caller: Caller) -> Task:
        """Cancels a waiting task at once; asks a running one to stop (it ends within a second)."""
        await self.get(task_id, caller)
        for _ in range(3):
            state = await self._store.request_cancel(task_id)
            if not state:
                raise TaskNotFound(task_id)
            if TaskState(state).finished:
                raise TaskFinished(task_id, state)
            if state == TaskState.running:
                return await self.get(task_id, caller)
            task = await self.get(task_id, caller)
            draft = EventDraft(task_id=task_id, kind=task.kind, type=EventType.cancelled)
            try:
                await self._store.append(draft, {TaskState.queued, TaskState.retrying})
            except TransitionRefused:
                continue  # it started (or finished) meanwhile: look again
            return await self.get(task_id, caller)
        return await self.get(task_id, caller)
