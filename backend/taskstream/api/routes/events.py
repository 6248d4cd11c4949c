"""The live event streams (Server-Sent Events)."""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query

from taskstream.api import sse, streams
from taskstream.api.auth import StreamReaderDep
from taskstream.api.deps import FanoutDep, SettingsDep, StreamStoreDep, TasksDep
from taskstream.api.filters import parse_filter, within
from taskstream.api.problems import responses
from taskstream.api.routes.tasks import TaskId
from taskstream.events.models import TAG_PATTERN

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
    operation_id="streamEvents",
    summary="Every event, live",
    response_class=sse.EventSourceResponse,
    responses={**sse.DOC, **responses(401, 403, 422, 429, 503)},
)
async def all_events(
    store: StreamStoreDep,
    fanout: FanoutDep,
    settings: SettingsDep,
    caller: StreamReaderDep,
    last_event_id: LastEventIdQuery = None,
    last_event_id_header: LastEventIdHeader = None,
    types: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only events of these types, comma-separated. Without it: every type "
            "but `output` and `log`, which come only when named here.",
            examples=["queued,started,succeeded,failed,cancelled"],
        ),
    ] = None,
    kind: Annotated[
        str | None, Query(max_length=40, description="Only events of tasks of this kind.")
    ] = None,
    tag: Annotated[
        str | None, Query(pattern=TAG_PATTERN, description="Only events of tasks with this tag.")
    ] = None,
    task: Annotated[
        str | None,
        Query(max_length=50 * 33, description="Only events of these tasks (ids, comma-separated)."),
    ] = None,
) -> sse.EventStream:
    """Every event as it happens (of the caller's own tasks, when the API requires keys), of the
    types, kind, tag and tasks asked for. With `Last-Event-ID` (or `?last_event_id=`) it first
    sends exactly the events after that id. An id that is malformed, unknown or older than the
    log retains gets a `reset` event instead: refetch the tasks over REST, then follow."""
    wanted = within(parse_filter(types, kind, tag, task), caller.scope)
    await sse.admit(fanout, settings, caller)
    resume = last_event_id_header or last_event_id
    content = partial(streams.all_events, store, fanout, caller, resume, filter=wanted)
    return sse.EventStream(settings, content)


@router.get(
    "/tasks/{task_id}/events",
    operation_id="streamTaskEvents",
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
    caller: StreamReaderDep,
    last_event_id: LastEventIdQuery = None,
    last_event_id_header: LastEventIdHeader = None,
    snapshot: Annotated[
        bool,
        Query(
            description="First a `snapshot` event (the task with its output so far, as of its "
            "last event), then the events after it, instead of the whole history."
        ),
    ] = False,
) -> sse.EventStream:
    """The task's whole history, then its live events; the stream ends after its final event.
    Where the task's own log no longer holds its first events, a `snapshot` comes first."""
    await tasks.get(task_id, caller)
    await sse.admit(fanout, settings, caller)
    resume = last_event_id_header or last_event_id
    content = partial(
        streams.task_events, store, fanout, caller, task_id, resume, snapshot=snapshot
    )
    return sse.EventStream(settings, content)
