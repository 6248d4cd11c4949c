"""Submit, list, read and cancel tasks."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status

from taskstream.api.auth import CallerDep, ReaderDep
from taskstream.api.caller import Scope
from taskstream.api.deps import MetricsDep, SignerDep, StoreDep, TasksDep
from taskstream.api.models import SubmittedTask, TaskPage
from taskstream.api.problems import responses
from taskstream.api.schemas import TaskRequest, request_examples, task_create_type
from taskstream.events.ids import TASK_ID_PATTERN
from taskstream.events.models import TAG_PATTERN, Task, TaskOutput, TaskState
from taskstream.kinds import KindRegistry

TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="A task's id (32 hex digits).")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Repeating a request with the same key returns the same task.",
    ),
]


def build_router(kinds: KindRegistry) -> APIRouter:
    router = APIRouter(prefix="/api/tasks", tags=["tasks"])
    KindName: Any = Literal[tuple(kinds.names())]  # noqa: N806 (a type, made from the kinds)

    async def submit(
        body: TaskRequest,
        request: Request,
        tasks: TasksDep,
        caller: CallerDep,
        response: Response,
        metrics: MetricsDep,
        signer: SignerDep,
        idempotency_key: IdempotencyKey = None,
    ) -> SubmittedTask:
        """Queues a task of a declared kind. Its events follow on `/api/events`. With
        `"watch_token": true`, the answer also carries a token that reads the task (see
        `POST /api/tasks/{task_id}/tokens`)."""
        task, created = await tasks.submit(
            caller, body.kind, body.params, idempotency_key, body.tags
        )
        if metrics is not None and created:
            metrics.submissions.labels(body.kind).inc()
        response.headers["Location"] = f"{request.scope.get('root_path', '')}/api/tasks/{task.id}"
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        token = None
        if body.watch_token:
            token = signer.mint(caller, Scope(task_id=task.id))
        return SubmittedTask(**dict(task), watch_token=token)

    # The body's type is generated from the declared kinds; FastAPI reads it from here.
    body_type: Any = task_create_type(kinds)
    submit.__annotations__["body"] = Annotated[
        body_type, Body(openapi_examples=request_examples(kinds))
    ]
    router.add_api_route(
        "",
        submit,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SubmittedTask,
        operation_id="submitTask",
        summary="Submit a task",
        responses={
            **responses(401, 403, 409, 413, 422, 429, 503),
            202: {
                "description": "Accepted: queued",
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
        },
    )

    @router.get(
        "",
        summary="List tasks, newest first",
        operation_id="listTasks",
        response_model=TaskPage,
        responses=responses(401, 403, 422, 503),
    )
    async def list_tasks(
        tasks: TasksDep,
        store: StoreDep,
        caller: ReaderDep,
        state: Annotated[TaskState | None, Query(description="Only tasks in this state.")] = None,
        kind: Annotated[KindName | None, Query(description="Only tasks of this kind.")] = None,
        tag: Annotated[
            str | None, Query(pattern=TAG_PATTERN, description="Only tasks with this tag.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="Tasks per page.")] = 50,
        cursor: Annotated[
            str | None,
            Query(pattern=TASK_ID_PATTERN, description="`next_cursor` of the previous page."),
        ] = None,
    ) -> TaskPage:
        position = await store.last_event_id()
        page = await tasks.page(caller, state, kind, limit, cursor, tag)
        return TaskPage(items=page.items, next_cursor=page.next_cursor, last_event_id=position)

    @router.get(
        "/{task_id}",
        operation_id="getTask",
        summary="Read a task",
        response_model=Task,
        responses=responses(401, 404, 422, 503),
    )
    async def get_task(task_id: TaskId, tasks: TasksDep, caller: ReaderDep) -> Task:
        return await tasks.get(task_id, caller)

    @router.get(
        "/{task_id}/output",
        operation_id="getTaskOutput",
        summary="Read a task's output so far",
        response_model=TaskOutput,
        response_model_exclude_none=True,
        responses=responses(401, 404, 422, 503),
    )
    async def get_output(task_id: TaskId, tasks: TasksDep, caller: ReaderDep) -> TaskOutput:
        """Each output stream of the task's latest attempt: its text (or items) so far, with the
        id of the last event included. Open `/api/tasks/{task_id}/events?last_event_id=` with
        that id to get exactly the rest."""
        _task, output = await tasks.output(task_id, caller)
        return output

    @router.post(
        "/{task_id}/cancel",
        operation_id="cancelTask",
        summary="Cancel a task",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Task,
        responses=responses(401, 403, 404, 409, 422, 503),
    )
    async def cancel_task(task_id: TaskId, tasks: TasksDep, caller: CallerDep) -> Task:
        """A queued or retrying task ends `cancelled` at once. A running one is asked to stop:
        the answer shows `cancel_requested`, and its `cancelled` event follows within a second.
        A finished task answers 409."""
        return await tasks.cancel(task_id, caller)

    return router
