"""Each API operation as a request to send and a way to read its answer, with no I/O.

The sync and the async client send the same `Call`s and read their answers the same way; only
how the bytes travel differs. A call says whether it may be sent again once it may have reached
the server (`resend`): reads may, and a submission with an `Idempotency-Key`, which the API
answers with the same task however often it arrives.
"""

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, JsonValue, ValidationError

from taskstream.api.models import SubmittedTask, TaskPage, WatchToken
from taskstream.client.errors import ClientError, TransportError, error_from
from taskstream.events.models import Task, TaskOutput, TaskState

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT = 10.0
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Request:
    """What to send: `path` below the base URL, query `params`, a JSON `body` (None: none)."""

    method: Literal["GET", "POST"]
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: JsonValue | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    resend: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back. `headers` looks names up case-insensitively (httpx's `Headers` does)."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def error(self) -> ClientError:
        """The exception an error answer maps to."""
        return error_from(self.status, self.headers, self.content)


@dataclass(frozen=True, slots=True)
class Call(Generic[M]):
    """A request and the model its successful answer is."""

    request: Request
    answer: type[M]

    def read(self, reply: Reply) -> M:
        """The answer as its model; raises the `ClientError` that an error answer maps to."""
        if reply.status >= 400:
            raise reply.error()
        return parse(self.answer, reply.content, reply.status)


def parse(model: type[M], content: bytes | str, status: int | None = None) -> M:
    """`content` read as `model`; an answer that does not fit is a `ClientError`."""
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        detail = f"the API's answer is not a valid {model.__name__}: {exc}"
        raise ClientError(detail, status=status, code="invalid_response") from exc


@dataclass(frozen=True, slots=True)
class Config:
    """What every request of one client shares: where, as whom, how long, how often."""

    base_url: str
    headers: Mapping[str, str]
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 2

    @classmethod
    def of(
        cls,
        base_url: str,
        api_key: str | None,
        token: str | None,
        timeout: float,
        retries: int,
    ) -> "Config":
        if api_key is not None and token is not None:
            raise ValueError("give an api_key or a token, not both")
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries not negative")
        credential = api_key if api_key is not None else token
        headers = {"Accept": JSON}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        return cls(base_url.rstrip("/"), headers, timeout, retries)

    def url(self, request: Request) -> str:
        """The request's absolute URL (so that a passed-in `httpx` client needs no base URL)."""
        return self.base_url + request.path

    def headers_for(self, request: Request) -> dict[str, str]:
        """The client's headers, with the request's own over them."""
        return {**self.headers, **request.headers}

    def resend_delay(self, request: Request, attempt: int, sent: bool, error: Exception) -> float:
        """How long to wait before sending `request` again after the network failed on its
        `attempt`th try (0 first). `sent`: it may have reached the server. Raises
        `TransportError` when it must not be sent again."""
        if attempt >= self.retries or (sent and not request.resend):
            raise TransportError(f"{request.method} {request.path}: {error!r}") from error
        return 0.2 * 2.0**attempt * (0.5 + random.random() / 2)


def _task_path(task_id: str, rest: str = "") -> str:
    return f"/api/tasks/{quote(task_id, safe='')}{rest}"


def _token_body(ttl_seconds: int | None) -> JsonValue | None:
    return None if ttl_seconds is None else {"ttl_seconds": ttl_seconds}


def submit(
    kind: str,
    params: Mapping[str, Any] | BaseModel | None,
    tags: Sequence[str] | None,
    idempotency_key: str | None,
    watch_token: bool,
) -> Call[SubmittedTask]:
    """`POST /api/tasks`: only what was given is sent, so the API's defaults apply."""
    body: dict[str, JsonValue] = {"kind": kind}
    if isinstance(params, BaseModel):
        body["params"] = params.model_dump(mode="json")
    elif params is not None:
        body["params"] = dict(params)
    if tags:
        body["tags"] = list(tags)
    if watch_token:
        body["watch_token"] = True
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    request = Request(
        "POST", "/api/tasks", body=body, headers=headers, resend=idempotency_key is not None
    )
    return Call(request, SubmittedTask)


def get_task(task_id: str) -> Call[Task]:
    """`GET /api/tasks/{task_id}`."""
    return Call(Request("GET", _task_path(task_id), resend=True), Task)


def get_output(task_id: str) -> Call[TaskOutput]:
    """`GET /api/tasks/{task_id}/output`."""
    return Call(Request("GET", _task_path(task_id, "/output"), resend=True), TaskOutput)


def cancel(task_id: str) -> Call[Task]:
    """`POST /api/tasks/{task_id}/cancel`: never sent twice (a second would answer 409)."""
    return Call(Request("POST", _task_path(task_id, "/cancel")), Task)


def create_task_token(task_id: str, ttl_seconds: int | None) -> Call[WatchToken]:
    """`POST /api/tasks/{task_id}/tokens`, with a body only for a lifetime of the caller's."""
    request = Request("POST", _task_path(task_id, "/tokens"), body=_token_body(ttl_seconds))
    return Call(request, WatchToken)


def create_tag_token(tag: str, ttl_seconds: int | None) -> Call[WatchToken]:
    """`POST /api/tags/{tag}/tokens`."""
    path = f"/api/tags/{quote(tag, safe='')}/tokens"
    return Call(Request("POST", path, body=_token_body(ttl_seconds)), WatchToken)


def list_tasks(
    state: TaskState | str | None,
    kind: str | None,
    tag: str | None,
    limit: int,
    cursor: str | None,
) -> Call[TaskPage]:
    """`GET /api/tasks`: one page, after `cursor` (the previous page's `next_cursor`)."""
    wanted = {"state": state, "kind": kind, "tag": tag, "limit": limit, "cursor": cursor}
    params = {name: str(value) for name, value in wanted.items() if value is not None}
    return Call(Request("GET", "/api/tasks", params=params, resend=True), TaskPage)


class Paging:
    """The pages of a task listing, newest first, each asked for by the last one's cursor."""

    def __init__(
        self, state: TaskState | str | None, kind: str | None, tag: str | None, page_size: int
    ) -> None:
        self._filter = (state, kind, tag, page_size)
        self._cursor: str | None = None
        self._done = False

    def next_call(self) -> Call[TaskPage] | None:
        """The request of the next page, or None after the last."""
        return None if self._done else list_tasks(*self._filter, self._cursor)

    def take(self, page: TaskPage) -> Iterable[Task]:
        """The page's tasks; the next call asks for the page after it."""
        self._cursor = page.next_cursor
        self._done = page.next_cursor is None
        return page.items
