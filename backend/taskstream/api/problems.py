"""Every error answer, in one place: RFC 9457 problem details as `application/problem+json`.

The domain's exception tree (`taskstream.errors`), request validation, Starlette's HTTP errors and
a lost Redis or broker connection each map to a status and a body that names what was wrong.
"""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from taskstream.errors import InvalidRequest, TaskstreamError, Unavailable

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
_LOCATIONS = {"query", "path", "header", "cookie"}


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input.", examples=["params.x"])
    message: str = Field(examples=["Input should be a valid number"])
    type: str = Field(examples=["float_parsing"])


class Problem(BaseModel):
    type: str = Field(description="A stable code for the kind of error.", examples=["not_found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no task with id '019abf3e6c2a7d1e9b41c0f2a55d3e10'"])
    errors: list[FieldError] | None = Field(None, description="Each invalid input (422 only).")


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(type=code, title=title, status=status, detail=detail, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True), status, headers=headers, media_type=MEDIA_TYPE
    )


def field_name(loc: tuple[int | str, ...], union_tags: frozenset[str]) -> str:
    """`("body", "add", "params", "x")` -> `params.x`; `("query", "limit")` -> `query.limit`."""
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
        if len(parts) > 1 and parts[0] in union_tags:
            parts = parts[1:]  # the tag a discriminated union puts in front
    return ".".join(parts) if parts else "body"


def _validation_errors(exc: RequestValidationError, tags: frozenset[str]) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        kind = str(error.get("type", "invalid"))
        loc = tuple(error.get("loc", ()))
        name = "kind" if kind.startswith("union_tag") else field_name(loc, tags)
        errors.append(FieldError(field=name, message=str(error.get("msg", "")), type=kind))
    return errors


def install(app: FastAPI, union_tags: frozenset[str]) -> None:
    async def domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TaskstreamError)
        if isinstance(exc, InvalidRequest):
            error = FieldError(field=exc.field or "body", message=exc.detail, type=exc.code)
            return problem_response(exc.status, exc.code, exc.title, exc.detail, [error])
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
        if exc.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.detail)
        return problem_response(exc.status, exc.code, exc.title, exc.detail, headers=headers)

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc, union_tags)
        detail = "; ".join(f"{error.field}: {error.message}" for error in errors)
        return problem_response(422, "validation_error", "Validation failed", detail, errors)

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        phrase = HTTPStatus(exc.status_code).phrase
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        detail = exc.detail if isinstance(exc.detail, str) else phrase
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, code, phrase, detail, headers=headers)

    async def outage(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: backend unreachable: %s", request.method, request.url.path, exc)
        return problem_response(
            503,
            "unavailable",
            "Service unavailable",
            "Redis does not answer; try again shortly",
            headers={"Retry-After": str(Unavailable.retry_after)},
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
