"""Submitting tasks from Python code: a periodic job, a management command, another service.

    from taskstream.submit import submit
    task = submit("long", {"seconds": 5}, tags=["nightly"], owner="alice")

A task submitted here is one the API could have made:

1. its params are validated by the model `POST /api/tasks` validates its body with, and a bad one
   raises `InvalidRequest` naming the field (`params.seconds`) before anything is written;
2. its state, its `queued` event and its Celery message are written by the API's own script, in
   one step (`append` with `enqueue`);
3. `idempotency_key` and `owner` mean what the `Idempotency-Key` header and an API key's principal
   mean to the API, so a key repeated here or there returns the same task, and only `owner`'s key
   sees it (with API_KEYS set, a task without an owner is visible to no key).

Unlike the API, it is not held to SUBMIT_RATE_PER_MINUTE (a limit on HTTP callers) and is not
counted in the API's metrics. `Submitter` (blocking: no event loop needed) and `AsyncSubmitter`
keep their connections for many submissions; `submit` and `asubmit` open them for one.
"""

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel, TypeAdapter, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskstream import broker
from taskstream.api.schemas import TaskRequest, task_create_type
from taskstream.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidRequest,
    StoreUnavailable,
)
from taskstream.events import idempotency
from taskstream.events.connection import async_redis, sync_redis
from taskstream.events.ids import new_task_id
from taskstream.events.models import EventDraft, EventType, Task
from taskstream.events.scripts import Appended
from taskstream.events.state import fold
from taskstream.events.store import EventStore, SyncEventStore
from taskstream.kinds import KindRegistry, TaskKind, load
from taskstream.settings import Settings, get_settings

__all__ = ["AsyncSubmitter", "Params", "Submitter", "asubmit", "submit"]

Params = Mapping[str, Any] | BaseModel | None  # None: the kind's defaults
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # as the API's header admits it
_CLIENT_NAME = "taskstream-submit"


@dataclass(frozen=True)
class _Claim:
    """An idempotency key, claimed for the new task unless an earlier submission holds it."""

    key: str
    scoped: str
    fingerprint: str
    value: str  # what the key is stored with: the new task's id and the request's fingerprint

    def task_id(self, stored: str) -> str:
        """The task of the submission that holds the key (`stored`, its value), if it was this
        same request."""
        task_id, _, fingerprint = stored.partition(":")
        if fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                f"idempotency key {self.key!r} was used for a different request",
                field="idempotency_key",
            )
        return task_id

    def unfinished(self) -> IdempotencyInProgress:
        return IdempotencyInProgress(
            f"the first submission with idempotency key {self.key!r} is unfinished"
        )


@dataclass(frozen=True)
class _Submission:
    """What one submission writes, built before anything is."""

    draft: EventDraft
    enqueue: tuple[str, str]  # the queue's list and the Celery message
    claim: _Claim | None

    def task(self, appended: Appended) -> Task:
        task = fold(None, self.draft, appended.seq, appended.id)  # what the log stored
        return task.model_copy(update={"owner": self.draft.owner})


class _Planner:
    """Validates a submission as the API does and builds what it writes; no I/O."""

    def __init__(self, settings: Settings, kinds: KindRegistry) -> None:
        self.settings = settings
        self.kinds = kinds
        self._celery = broker.make_celery(settings, kinds)  # builds messages; never connects
        self._requests: dict[str, TypeAdapter[Any]] = {}

    def plan(
        self,
        kind_name: str,
        params: Params,
        tags: Sequence[str] | None,
        idempotency_key: str | None,
        owner: str | None,
    ) -> _Submission:
        kind = self.kinds.get(kind_name)
        if kind is None:
            known = ", ".join(self.kinds.names())
            raise InvalidRequest(f"unknown kind {kind_name!r}; known: {known}", field="kind")
        self._check_owner(owner)
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise InvalidRequest(
                f"idempotency_key {idempotency_key!r}: 1 to 200 printable ASCII characters, "
                "no spaces",
                field="idempotency_key",
            )
        request = self._validated(kind, params, tags)
        values = request.params.model_dump(mode="json")
        unique_tags = list(dict.fromkeys(request.tags))  # each once, in the order given
        task_id = new_task_id()
        claim = None
        if idempotency_key is not None:
            fingerprint = idempotency.fingerprint(kind_name, values, unique_tags)
            claim = _Claim(
                idempotency_key,
                idempotency.scoped_key(owner, idempotency_key),
                fingerprint,
                f"{task_id}:{fingerprint}",
            )
        draft = EventDraft(
            task_id=task_id,
            kind=kind_name,
            type=EventType.queued,
            params=values,
            tags=unique_tags or None,
            owner=owner,
        )
        soft_limit = kind.time_limit(request.params)
        enqueue = broker.message(self._celery, self.settings, kind, task_id, soft_limit)
        return _Submission(draft, enqueue, claim)

    def _check_owner(self, owner: str | None) -> None:
        if owner is None:
            return
        principals = set(self.settings.api_keys.values())
        if not owner or (principals and owner not in principals):
            raise InvalidRequest(
                f"owner {owner!r} is not a principal of API_KEYS "
                f"({', '.join(sorted(principals)) or 'none set'})",
                field="owner",
            )

    def _validated(
        self, kind: TaskKind[Any], params: Params, tags: Sequence[str] | None
    ) -> TaskRequest:
        """The request as `POST /api/tasks` reads it, by the same generated model."""
        adapter = self._requests.get(kind.name)
        if adapter is None:
            one = KindRegistry()
            one.add(kind)
            adapter = self._requests[kind.name] = TypeAdapter(task_create_type(one))
        body: dict[str, Any] = {"kind": kind.name, "tags": [] if tags is None else tags}
        if isinstance(params, BaseModel):
            body["params"] = params.model_dump(mode="json")
        elif params is not None:
            body["params"] = params
        try:
            request: TaskRequest = adapter.validate_python(body)
        except ValidationError as exc:
            errors = [
                (".".join(str(part) for part in error["loc"]) or "params", error["msg"])
                for error in exc.errors()
            ]
            detail = "; ".join(f"{field}: {message}" for field, message in errors)
            raise InvalidRequest(detail, field=errors[0][0]) from None
        return request


def _unavailable(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"Redis does not answer: {exc}")


class Submitter:
    """Submits tasks from blocking code, on a Redis connection of its own (no event loop).

    Safe to share between threads, and across a fork (a Celery pool process opens connections
    of its own). `settings`: the process's (environment) unless given; `kinds`: the declared
    kinds, loaded as the API loads them (TASK_KIND_MODULES) unless given. A lost Redis
    connection is waited for as a worker waits (REDIS_OUTAGE_PATIENCE_SECONDS), then raises
    `StoreUnavailable`.
    """

    def __init__(self, settings: Settings | None = None, kinds: KindRegistry | None = None) -> None:
        self._settings = settings = settings or get_settings()
        registry = load(settings.task_kind_modules) if kinds is None else kinds
        self._planner = _Planner(settings, registry)
        self._pid = os.getpid()
        self._store = self._new_store()

    def _new_store(self) -> SyncEventStore:
        return SyncEventStore(sync_redis(self._settings, name=_CLIENT_NAME), self._settings)

    def _current_store(self) -> SyncEventStore:
        """The store's connections outside the client's pool are not fork-safe as the pool is:
        a forked process never uses its parent's sockets."""
        if os.getpid() != self._pid:
            self._pid, self._store = os.getpid(), self._new_store()
        return self._store

    def submit(
        self,
        kind: str,
        params: Params = None,
        *,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """Records the task as queued and queues it; returns it (with an idempotency key used
        before by the same owner for the same request: that submission's task, as it is now)."""
        plan = self._planner.plan(kind, params, tags, idempotency_key, owner)
        try:
            return self._write(plan)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise _unavailable(exc) from exc

    def _write(self, plan: _Submission) -> Task:
        store = self._current_store()
        claim = plan.claim
        if claim is not None:
            stored = store.claim_idempotency_key(claim.scoped, claim.value)
            if stored is not None:
                task = store.get_task(claim.task_id(stored))
                if task is None:
                    raise claim.unfinished()
                return task
        try:
            appended = store.append(plan.draft, enqueue=plan.enqueue)
        except BaseException:
            if claim is not None:
                with contextlib.suppress(RedisError, OSError):
                    store.release_idempotency_key(claim.scoped)
            raise
        return plan.task(appended)

    def close(self) -> None:
        self._current_store().close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSubmitter:
    """Submits tasks from asyncio code, within one event loop; as `Submitter` otherwise, but a
    lost Redis connection raises `StoreUnavailable` within REDIS_TIMEOUT_SECONDS, as the API
    answers 503."""

    def __init__(self, settings: Settings | None = None, kinds: KindRegistry | None = None) -> None:
        settings = settings or get_settings()
        registry = load(settings.task_kind_modules) if kinds is None else kinds
        self._planner = _Planner(settings, registry)
        self._redis = async_redis(settings, name=_CLIENT_NAME)
        self._store = EventStore(self._redis, settings)

    async def submit(
        self,
        kind: str,
        params: Params = None,
        *,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """As `Submitter.submit`."""
        plan = self._planner.plan(kind, params, tags, idempotency_key, owner)
        try:
            return await self._write(plan)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise _unavailable(exc) from exc

    async def _write(self, plan: _Submission) -> Task:
        claim = plan.claim
        if claim is not None:
            stored = await self._store.claim_idempotency_key(claim.scoped, claim.value)
            if stored is not None:
                task = await self._store.get_task(claim.task_id(stored))
                if task is None:
                    raise claim.unfinished()
                return task
        try:
            appended = await self._store.append(plan.draft, enqueue=plan.enqueue)
        except BaseException:
            if claim is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._store.release_idempotency_key(claim.scoped)
            raise
        return plan.task(appended)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def submit(
    kind: str,
    params: Params = None,
    *,
    tags: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    owner: str | None = None,
    settings: Settings | None = None,
) -> Task:
    """One submission, on a connection opened for it (`Submitter` keeps one for many)."""
    with Submitter(settings) as submitter:
        return submitter.submit(
            kind, params, tags=tags, idempotency_key=idempotency_key, owner=owner
        )


async def asubmit(
    kind: str,
    params: Params = None,
    *,
    tags: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    owner: str | None = None,
    settings: Settings | None = None,
) -> Task:
    """One submission from asyncio code (`AsyncSubmitter` keeps a connection for many)."""
    async with AsyncSubmitter(settings) as submitter:
        return await submitter.submit(
            kind, params, tags=tags, idempotency_key=idempotency_key, owner=owner
        )
