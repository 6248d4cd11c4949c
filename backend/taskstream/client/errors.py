"""The client's one exception tree, mapped from the API's problem details once (`error_from`).

ClientError                  anything the client raises; `.status`, `.code`, `.detail`, `.problem`
├── Unauthorized             401  a missing, wrong or unknown key or token
│   └── TokenExpired         401  token_expired: mint a new watch token
├── Forbidden                403  a watch token asked for more than reading
├── NotFound                 404  no such task (or not one the caller may see)
├── Conflict                 409  e.g. cancelling a finished task (`code` says which)
├── InvalidRequest           422  with `.errors`, one per invalid input
├── RateLimited              429  with `.retry_after` (seconds, from Retry-After)
├── Unavailable              503  with `.retry_after`: Redis or the API is away for now
├── TransportError           the network failed, after the retries the request allows
└── WaitTimeout              `wait` ran out of time (also a built-in `TimeoutError`)

Any other error status (413, 415, 500, a proxy's 502...) is a plain `ClientError`, as is an answer
the client cannot read (`code` "invalid_response").
"""

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from http import HTTPStatus

from pydantic import ValidationError

from taskstream.api.models import FieldError, Problem

__all__ = [
    "ClientError",
    "Conflict",
    "FieldError",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "Problem",
    "RateLimited",
    "TokenExpired",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "error_from",
    "retry_after",
]


class ClientError(Exception):
    """What went wrong: `status` (None when no answer came), `code` (the problem's stable
    code, e.g. "not_found": the last segment of its `type` URI), `detail` (a sentence naming
    what was wrong) and `problem` (the whole problem details body, when the API sent one)."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str = "client_error",
        problem: Problem | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.problem = problem


class Unauthorized(ClientError):
    """401: the request's key or token was missing, wrong or unknown."""


class TokenExpired(Unauthorized):
    """401 `token_expired`: the watch token is past its expiry; mint a new one."""


class Forbidden(ClientError):
    """403: the credential may not do this (a watch token only reads)."""


class NotFound(ClientError):
    """404: no such task, or not one the caller may see."""


class Conflict(ClientError):
    """409: the task's state does not allow it (`code` "task_finished": it already ended)."""


class InvalidRequest(ClientError):
    """422: the request was refused as invalid; `errors` names each invalid input."""

    @property
    def errors(self) -> list[FieldError]:
        return list(self.problem.errors or []) if self.problem is not None else []


class RateLimited(ClientError):
    """429: too many requests (or open streams); try again after `retry_after` seconds."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = 429,
        code: str = "too_many_requests",
        problem: Problem | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, status=status, code=code, problem=problem)
        self.retry_after = retry_after


class Unavailable(ClientError):
    """503: the API cannot serve now (Redis is away, or it holds all the streams it may); try
    again after `retry_after` seconds."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = 503,
        code: str = "unavailable",
        problem: Problem | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, status=status, code=code, problem=problem)
        self.retry_after = retry_after


class TransportError(ClientError):
    """The network failed (refused, reset, timed out) after the retries the request allows;
    the underlying exception is the `__cause__`."""


class WaitTimeout(ClientError, TimeoutError):
    """`wait` ran out of time before the task finished."""


_BY_STATUS: dict[int, type[ClientError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}
_RETRY_LATER: dict[int, type[RateLimited | Unavailable]] = {429: RateLimited, 503: Unavailable}


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (a number of seconds or an HTTP date), if any."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, at.timestamp() - (time.time() if now is None else now))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _problem(content: bytes) -> Problem | None:
    try:
        return Problem.model_validate_json(content)
    except ValidationError:
        return None


def error_from(status: int, headers: Mapping[str, str], content: bytes) -> ClientError:
    """The exception for an error answer: its class by status, its fields from the problem
    details body (or from the status alone when the body is none, as a proxy's may be)."""
    problem = _problem(content)
    if problem is not None:
        code, detail = problem.code, problem.detail
    else:
        phrase = _phrase(status)
        code = phrase.lower().replace(" ", "_").replace("-", "_") or f"http_{status}"
        text = content.decode("utf-8", "replace").strip()
        detail = f"{status} {phrase}: {text[:200]}" if text else f"{status} {phrase}".strip()
    if status in _RETRY_LATER:
        wait = retry_after(headers)
        return _RETRY_LATER[status](
            detail, status=status, code=code, problem=problem, retry_after=wait
        )
    cls = _BY_STATUS.get(status, ClientError)
    if cls is Unauthorized and code == "token_expired":
        cls = TokenExpired
    return cls(detail, status=status, code=code, problem=problem)
