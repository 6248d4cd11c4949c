"""Mint watch tokens: a page that must not hold an API key reads one task, or a tag's tasks."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, status

from taskstream.api.auth import CallerDep
from taskstream.api.caller import Scope
from taskstream.api.deps import SignerDep, TasksDep
from taskstream.api.models import WatchToken
from taskstream.api.problems import responses
from taskstream.api.routes.tasks import TaskId
from taskstream.api.schemas import token_request_type
from taskstream.events.models import TAG_PATTERN
from taskstream.settings import Settings

USE = (
    " Send it as `Authorization: Bearer <token>`, or as `?access_token=` on the event streams "
    "(an EventSource cannot send headers). It cannot submit, cancel, list other tasks or mint."
)


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["tokens"])
    TokenBody: Any = Annotated[  # noqa: N806 (a type, bounded by the settings)
        token_request_type(settings.watch_token_max_ttl_seconds) | None, Body()
    ]

    @router.post(
        "/tasks/{task_id}/tokens",
        operation_id="createTaskToken",
        summary="Mint a watch token for a task",
        description="A signed token that reads this task, its output and its event stream until it "
        f"expires.{USE}",
        status_code=status.HTTP_201_CREATED,
        response_model=WatchToken,
        responses=responses(401, 403, 404, 422, 503),
    )
    async def create_task_token(
        task_id: TaskId,
        tasks: TasksDep,
        signer: SignerDep,
        caller: CallerDep,
        body: TokenBody = None,
    ) -> WatchToken:
        await tasks.get(task_id, caller)
        ttl = body.ttl_seconds if body is not None else None
        return signer.mint(caller, Scope(task_id=task_id), ttl)

    @router.post(
        "/tags/{tag}/tokens",
        operation_id="createTagToken",
        summary="Mint a watch token for a tag's tasks",
        description="A signed token that reads every task of the caller's with this tag, those "
        "submitted later included: `GET /api/tasks?tag=`, each task, its output and events, and "
        f"`/api/events` (of the tag's tasks only).{USE}",
        status_code=status.HTTP_201_CREATED,
        response_model=WatchToken,
        responses=responses(401, 403, 422),
    )
    async def create_tag_token(
        tag: Annotated[str, Path(pattern=TAG_PATTERN, description="The tag.")],
        signer: SignerDep,
        caller: CallerDep,
        body: TokenBody = None,
    ) -> WatchToken:
        ttl = body.ttl_seconds if body is not None else None
        return signer.mint(caller, Scope(tag=tag), ttl)

    return router
