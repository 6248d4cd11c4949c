"""The API's answers that its clients read too: tasks as submitted and listed, watch tokens,
problem details and the event streams' own messages. Pydantic models only, so the Python client
(`taskstream.client`) reads them without loading the server.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from taskstream.events.models import Task, TaskOutput


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input.", examples=["params.x"])
    message: str = Field(examples=["Input should be a valid number"])
    type: str = Field(examples=["float_parsing"])


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(
        description="The kind of problem: a URI reference whose last segment is a stable code "
        "(`not_found`, `token_expired`...); `GET` it for what it means.",
        examples=["/problems/not_found"],
    )
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no task with id '019abf3e6c2a7d1e9b41c0f2a55d3e10'"])
    instance: str | None = Field(
        None,
        description="The request it happened to (its path).",
        examples=["/api/tasks/019abf3e6c2a7d1e9b41c0f2a55d3e10"],
    )
    errors: list[FieldError] | None = Field(None, description="Each invalid input (422 only).")

    @property
    def code(self) -> str:
        """The stable code of its kind: `type`'s last segment."""
        return code_of(self.type)


class ProblemType(BaseModel):
    """What a problem's `type` means: `GET /problems/{code}`."""

    code: str = Field(examples=["token_expired"])
    title: str = Field(examples=["Token expired"])
    status: int = Field(examples=[401])
    about: str = Field(examples=["The watch token has expired: ask whoever handed it out..."])


def code_of(problem_type: str) -> str:
    """`/problems/not_found` (or `https://.../problems/not_found`) -> `not_found`."""
    return problem_type.rstrip("/").rsplit("/", 1)[-1]


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )
    last_event_id: str = Field(
        description="The event log's position just before this page was read: open "
        "`/api/events?last_event_id=` with it to miss no change made since.",
        examples=["1764072000000-0"],
    )


class TokenScope(BaseModel):
    """What a watch token reads: one task, or every task of its minter's with a tag."""

    task_id: str | None = Field(None, exclude_if=lambda value: value is None)
    tag: str | None = Field(None, exclude_if=lambda value: value is None)


class WatchToken(BaseModel):
    token: str = Field(
        description="Send as `Authorization: Bearer <token>`, or as `?access_token=` on the "
        "event streams. It reads its scope's task, output and events, and nothing else."
    )
    expires_at: datetime = Field(description="After this it answers 401 `token_expired`.")
    scope: TokenScope


class SubmittedTask(Task):
    """The task as queued; with `watch_token` when the submission asked for one."""

    watch_token: WatchToken | None = Field(None, exclude_if=lambda value: value is None)


class Reset(BaseModel):
    """A `reset` message's data: the stream cannot replay what follows the id it was given."""

    reason: str = Field(examples=["events after 1764072000000-0 are no longer retained"])
    last_event_id: str = Field(description="The position it goes on from; refetch over REST.")


class Snapshot(BaseModel):
    """A `snapshot` message's data: the task and its output as of the message's id."""

    task: Task
    output: TaskOutput
