"""The one exception tree of taskstream. The API maps it to HTTP in one place (`api/problems.py`).

TaskstreamError                  500 (never raised on purpose)
├── InvalidRequest               422  validation_error
│   └── IdempotencyKeyReused     422  idempotency_key_reused
├── Unauthorized                 401  unauthorized (with WWW-Authenticate)
│   └── TokenExpired             401  token_expired
├── Forbidden                    403  forbidden (a watch token asked for more than reading)
├── NotFound                     404  not_found
│   └── TaskNotFound
├── Conflict                     409  conflict
│   ├── TaskFinished             409  task_finished
│   ├── TransitionRefused        409  (a state change that the task's state no longer allows)
│   └── IdempotencyInProgress    409  idempotency_in_progress
├── TooManyRequests              429  too_many_requests (with Retry-After)
└── Unavailable                  503  unavailable (with Retry-After)
    └── StoreUnavailable         Redis did not answer
"""

from typing import ClassVar


class TaskstreamError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    about: ClassVar[str] = "The server failed in a way it did not foresee; its log has the details."

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(TaskstreamError):
    status = 422
    code = "validation_error"
    title = "Validation failed"
    about = "The request does not fit the API: `errors` names each bad field and why."

    def __init__(self, detail: str, field: str = "") -> None:
        super().__init__(detail)
        self.field = field


class IdempotencyKeyReused(InvalidRequest):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with a different request"
    about = "This Idempotency-Key came before with another request body; use a new key."


class Unauthorized(TaskstreamError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"
    about = (
        "No valid credentials: send an API key (Authorization: Bearer), sign in for a "
        "session, or send a watch token that is valid."
    )

    def __init__(self, detail: str, token_refused: bool = False) -> None:
        super().__init__(detail)
        self.token_refused = token_refused  # RFC 6750's `invalid_token`


class TokenExpired(Unauthorized):
    code = "token_expired"
    title = "Token expired"
    about = "The watch token has expired: ask whoever handed it out for a new one."

    def __init__(self, detail: str) -> None:
        super().__init__(detail, token_refused=True)


class Forbidden(TaskstreamError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
    about = (
        "A watch token only reads its task or tag: it cannot submit, cancel, list other "
        "tasks or mint tokens."
    )


class TooManyRequests(TaskstreamError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"
    about = "Over a limit (submissions a minute, open streams): retry after Retry-After seconds."

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotFound(TaskstreamError):
    status = 404
    code = "not_found"
    title = "Not found"
    about = "No such resource, or one the caller may not see: another's task answers the same."


class TaskNotFound(NotFound):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class Conflict(TaskstreamError):
    status = 409
    code = "conflict"
    title = "Conflict"
    about = "The resource's state does not allow this now."


class TaskFinished(Conflict):
    code = "task_finished"
    title = "Task already finished"
    about = "The task has already finished: it can no longer be cancelled."

    def __init__(self, task_id: str, state: str) -> None:
        super().__init__(f"task {task_id} already finished as {state}")
        self.state = state


class TransitionRefused(Conflict):
    code = "transition_refused"
    title = "State change refused"
    about = "The task's state no longer allows this step."

    def __init__(self, task_id: str, state: str | None, event_type: str) -> None:
        super().__init__(f"task {task_id} in state {state or 'unknown'} cannot take {event_type}")
        self.state = state


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    title = "A request with this Idempotency-Key is still in progress"
    about = "The first request with this Idempotency-Key is still being handled: repeat it shortly."


class Unavailable(TaskstreamError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
    about = (
        "The API cannot serve this now (Redis does not answer, or the server is full or "
        "stopping): retry after Retry-After seconds."
    )

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StoreUnavailable(Unavailable):
    title = "Event store unavailable"
