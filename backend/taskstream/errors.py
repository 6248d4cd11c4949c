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

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(TaskstreamError):
    status = 422
    code = "validation_error"
    title = "Validation failed"

    def __init__(self, detail: str, field: str = "") -> None:
        super().__init__(detail)
        self.field = field


class IdempotencyKeyReused(InvalidRequest):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with a different request"


class Unauthorized(TaskstreamError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str, token_refused: bool = False) -> None:
        super().__init__(detail)
        self.token_refused = token_refused  # RFC 6750's `invalid_token`


class TokenExpired(Unauthorized):
    code = "token_expired"
    title = "Token expired"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, token_refused=True)


class Forbidden(TaskstreamError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class TooManyRequests(TaskstreamError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotFound(TaskstreamError):
    status = 404
    code = "not_found"
    title = "Not found"


class TaskNotFound(NotFound):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class Conflict(TaskstreamError):
    status = 409
    code = "conflict"
    title = "Conflict"


class TaskFinished(Conflict):
    code = "task_finished"
    title = "Task already finished"

    def __init__(self, task_id: str, state: str) -> None:
        super().__init__(f"task {task_id} already finished as {state}")
        self.state = state


class TransitionRefused(Conflict):
    code = "transition_refused"
    title = "State change refused"

    def __init__(self, task_id: str, state: str | None, event_type: str) -> None:
        super().__init__(f"task {task_id} in state {state or 'unknown'} cannot take {event_type}")
        self.state = state


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    title = "A request with this Idempotency-Key is still in progress"


class Unavailable(TaskstreamError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StoreUnavailable(Unavailable):
    title = "Event store unavailable"
