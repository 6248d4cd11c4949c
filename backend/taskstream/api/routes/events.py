"""The live event streams (Server-Sent Events)."""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query

from taskstream.api import sse, streams
from taskstream.api.auth import CallerDep
from taskstream.api.deps import FanoutDep, SettingsDep, StreamStoreDep, TasksDep
from taskstream.api.problems import responses
from taskstream.api.routes.tasks import TaskId

router = APIRouter(prefix="/api", tags=["events"])

LastEventIdHeader = Annotated[
    str | None,
    Header(alias="Last-Event-ID", max_length=64, description="Sent by EventSource on reconnect."),
]
LastEventIdQuery = Annotated[
    str | None,
    Query(max_length=64, description="Resume after this event id on a first connection."),
]


@router.get(
    "/events",
    summary="Every event, live",
    response_class=sse.EventSourceResponse,
    responses={**sse.DOC, **responses(401, 429, 503)},
)
async def all_events(
    store: StreamStoreDep,
    fanout: FanoutDep,
    settings: SettingsDep,
    caller: CallerDep,
    last_event_id: LastEventIdQuery = None,
    last_event_id_header: LastEventIdHeader = None,
) -> sse.EventStream:
    """Every event as it happens (of the caller's own tasks, when the API requires keys). With
    `Last-Event-ID` (or `?last_event_id=`) it first sends exactly the events after that id. An id
    that is malformed, unknown or older than the log retains gets a `reset` event instead:
    refetch the tasks over REST, then follow the stream."""
    await sse.admit(fanout, settings, caller)
    resume = last_event_id_header or last_event_id
    return sse.EventStream(settings, partial(streams.all_events, store, fanout, caller, resume))


@router.get(
    "/tasks/{task_id}/events",
    summary="One task's events, from its first, until it ends",
    response_class=sse.EventSourceResponse,
    responses={**sse.DOC, **responses(401, 404, 422, 429, 503)},
)
async def task_events(
    task_id: TaskId,
    tasks: TasksDep,
    store: StreamStoreDep,
    fanout: FanoutDep,
    settings: SettingsDep,
    caller: CallerDep,
    last_event_id: LastEventIdQuery = None,
    last_event_id_header: LastEventIdHeader = None,
) -> sse.EventStream:
    """The task's whole history, then its live events; the stream ends after its final event."""
    await tasks.get(task_id, caller)
    await sse.admit(fanout, settings, caller)
    resume = last_event_id_header or last_event_id
    content = partial(streams.task_events, store, fanout, caller, task_id, resume)
    return sse.EventStream(settings, content)
