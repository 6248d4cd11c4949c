"""Every error answer, in one place: RFC 9457 problem details as `application/problem+json`.

The domain's exception tree (`taskstream.errors`), request validation, Starlette's HTTP errors and
a lost Redis or broker connection each map to a status and a body that names what was wrong.

A body that is not JSON at all is told apart from JSON that does not fit: a `Content-Type` other
than JSON gets `415`; a body that is not UTF-8 or not JSON, nested too deeply or holding a number
too long to read gets `422` naming `body` and the problem, as does a string holding a lone
surrogate (escaped as `\\ud800`, or its bytes sent raw), which no UTF-8 text can carry.
"""

import json
import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.types import Scope

from taskstream.api.models import FieldError, Problem, ProblemType
from taskstream.errors import (
    Forbidden,
    InvalidRequest,
    TaskstreamError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
_LOCATIONS = {"query", "path", "header", "cookie"}
# RFC 9110's names where Python's `HTTPStatus` still has older ones.
_TITLES = {413: "Content too large", 422: "Unprocessable content"}
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate quoted from the request: keep it escaped
            return json.dumps(content, separators=(",", ":")).encode()


PROBLEMS_PATH = "/problems"


def type_uri(scope: Scope, code: str) -> str:
    """A problem type's URI: `/problems/<code>` of this API (below its mount, if any), where
    `GET` tells what it means (RFC 9457 asks that a type be documented there)."""
    return f"{scope.get('root_path', '')}{PROBLEMS_PATH}/{code}"


def problem_response(
    scope: Scope,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The answer to the request of `scope`: `type` names the kind of problem (its last path
    segment is its `code`), `instance` the request it happened to."""
    body = Problem(
        type=type_uri(scope, code),
        title=title,
        status=status,
        detail=detail,
        instance=scope["path"],
        errors=errors,
    )
    return ProblemResponse(body.model_dump(exclude_none=True), status, headers=headers)


def status_code(status: int) -> tuple[str, str]:
    """The `type` and `title` of a problem that only has a status: `(not_found, Not found)`."""
    title = _TITLES.get(status) or HTTPStatus(status).phrase.capitalize()
    return title.lower().replace(" ", "_").replace("-", "_"), title


def field_name(loc: tuple[int | str, ...], union_tags: frozenset[str]) -> str:
    """`("body", "add", "params", "x")` -> `params.x`; `("query", "limit")` -> `query.limit`."""
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
        if len(parts) > 1 and parts[0] in union_tags:
            parts = parts[1:]  # the tag a discriminated union puts in front
    return ".".join(parts) if parts else "body"


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _message(kind: str, loc: tuple[Any, ...], error: Any) -> str:
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "JSON decode error")
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"the body is not valid JSON: {reason}{at}"
    if loc == ("body",) and kind == "missing":
        return "the request has no body: send the task as a JSON object"
    if loc == ("body",) and kind in ("model_attributes_type", "dict_type", "model_type"):
        return "the body must be a JSON object"
    if kind == "string_unicode":
        return "not valid Unicode text: it holds a lone surrogate (U+D800 to U+DFFF)"
    return str(error.get("msg", ""))


def _validation_errors(exc: RequestValidationError, tags: frozenset[str]) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        kind = str(error.get("type", "invalid"))
        loc = tuple(error.get("loc", ()))
        if kind.startswith("union_tag"):
            name = "kind"
        elif kind == "json_invalid":
            name = "body"
        else:
            name = field_name(loc, tags)
        errors.append(FieldError(field=name, message=_message(kind, loc, error), type=kind))
    return errors


def _unreadable_body(cause: BaseException | None) -> FieldError | None:
    """What made a body that FastAPI could not parse unreadable, if it was the body's content."""
    if isinstance(cause, UnicodeDecodeError):
        byte = cause.object[cause.start : cause.start + 1].hex()
        message = f"the body is not valid UTF-8: byte 0x{byte} at {cause.start} ({cause.reason})"
        return FieldError(field="body", message=message, type="utf8_invalid")
    if isinstance(cause, RecursionError):
        message = "the body's JSON is nested too deeply"
        return FieldError(field="body", message=message, type="json_too_deep")
    if isinstance(cause, ValueError):  # an integer of more digits than Python converts
        message = "the body is not valid JSON: a number in it has too many digits"
        return FieldError(field="body", message=message, type="json_invalid")
    return None


def _allowed_methods(request: Request) -> str | None:
    """Every method documented at the request's path (Starlette names only the first route's)."""
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    for template, operations in paths.items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods = {method.upper() for method in operations if method in _METHODS}
            return ", ".join(sorted(methods)) or None
    return None


def install(app: FastAPI, union_tags: frozenset[str]) -> None:
    async def domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TaskstreamError)
        if isinstance(exc, InvalidRequest):
            error = FieldError(field=exc.field or "body", message=exc.detail, type=exc.code)
            return problem_response(
                request.scope, exc.status, exc.code, exc.title, exc.detail, [error]
            )
        headers = None
        if isinstance(exc, Unavailable | TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, Unauthorized):
            refused = ', error="invalid_token"' if exc.token_refused else ""
            headers = {"WWW-Authenticate": f'Bearer realm="taskstream"{refused}'}
        elif isinstance(exc, Forbidden):
            headers = {"WWW-Authenticate": 'Bearer realm="taskstream", error="insufficient_scope"'}
        if exc.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.detail)
        return problem_response(
            request.scope, exc.status, exc.code, exc.title, exc.detail, headers=headers
        )

    def invalid(request: Request, errors: list[FieldError]) -> JSONResponse:
        detail = "; ".join(f"{error.field}: {error.message}" for error in errors)
        return problem_response(
            request.scope, 422, "validation_error", "Validation failed", detail, errors
        )

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc, union_tags)
        content_type = request.headers.get("content-type")
        body_refused = any(e.field == "body" and e.type != "missing" for e in errors)
        if body_refused and not _is_json(content_type):
            sent = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
            detail = f"the body must be JSON, sent with Content-Type: application/json ({sent})"
            code, title = status_code(415)
            return problem_response(request.scope, 415, code, title, detail)
        return invalid(request, errors)

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400 and (unreadable := _unreadable_body(exc.__cause__)):
            return invalid(request, [unreadable])
        code, title = status_code(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405 and (allowed := _allowed_methods(request)):
            headers["Allow"] = allowed
            detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        return problem_response(
            request.scope, exc.status_code, code, title, detail, headers=headers or None
        )

    async def outage(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: backend unreachable: %s", request.method, request.url.path, exc)
        return problem_response(
            request.scope,
            503,
            "unavailable",
            "Service unavailable",
            "Redis does not answer; try again shortly",
            headers={"Retry-After": "5"},
        )

    handlers: dict[Any, Any] = {
        TaskstreamError: domain,
        RequestValidationError: validation,
        HTTPException: http,
        RedisConnectionError: outage,
        RedisTimeoutError: outage,
        OperationalError: outage,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    _document(app)


def _document(app: FastAPI) -> None:
    """Lists in the OpenAPI schema the answers that this layer gives whatever the route: 422 to
    any operation with parameters or a body, and 413 and 415 to any with a body. FastAPI's own
    422 entry (`HTTPValidationError`) describes a body this API never sends: it is replaced, and
    problems are listed as `application/problem+json` only."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if method not in _METHODS:
                    continue
                statuses = [413, 415, 422] if "requestBody" in operation else []
                if operation.get("parameters"):
                    statuses.append(422)
                answers = operation.setdefault("responses", {})
                for status in statuses:
                    if _FASTAPI_422 in json.dumps(answers.get(str(status))):
                        del answers[str(status)]
                    answers.setdefault(str(status), _documented(status))
                for answer in answers.values():
                    content = answer.get("content", {})
                    if MEDIA_TYPE in content:  # a problem is never sent as plain JSON
                        content.pop("application/json", None)
        components = schema.get("components", {}).get("schemas", {})
        if _FASTAPI_422 not in json.dumps(schema.get("paths")):
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _documented(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


# Problems that only an HTTP status names (no domain error raises them), with what they mean.
_HTTP_ONLY = {
    400: "The request could not be read.",
    405: "The route does not take this method: `Allow` lists those it takes.",
    413: "The request body is larger than MAX_BODY_BYTES.",
    415: "The body must be JSON, sent with Content-Type: application/json.",
}


def problem_types() -> dict[str, ProblemType]:
    """Every kind of problem the API answers, by code: the domain's errors (a subclass that
    keeps its parent's code is its parent's kind), then those only HTTP names."""
    found: dict[str, ProblemType] = {}
    pending: list[type[TaskstreamError]] = [TaskstreamError]
    while pending:
        error = pending.pop(0)
        pending.extend(error.__subclasses__())
        found.setdefault(
            error.code,
            ProblemType(code=error.code, title=error.title, status=error.status, about=error.about),
        )
    for status, about in _HTTP_ONLY.items():
        code, title = status_code(status)
        found.setdefault(code, ProblemType(code=code, title=title, status=status, about=about))
    return dict(sorted(found.items()))
