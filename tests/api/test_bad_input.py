"""Bad input of every sort gets a clear 4xx problem naming what was wrong, as the schema documents.

Too large a body gets 413, with a length or without one (chunked); a body that is not JSON gets
415; every other bad value (out of range, of the wrong type, unknown, malformed, or JSON that
cannot be read at all) gets 422 naming its field, `body` when the body as a whole is at fault.
"""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.eventstream import open_stream, to_end
from tests.support.stack import Stack

MAX_BODY_BYTES = 65536  # the default of MAX_BODY_BYTES, which the shared stack keeps
SUBMIT = ("post", "/api/tasks")
LIST = ("get", "/api/tasks")
READ = ("get", "/api/tasks/{task_id}")
CANCEL = ("post", "/api/tasks/{task_id}/cancel")


@pytest.fixture(scope="module")
def documented(stack: Stack) -> dict[str, Any]:
    paths: dict[str, Any] = stack.http.get("/openapi.json").json()["paths"]
    return paths


def problem(
    response: httpx.Response, status: int, operation: tuple[str, str], paths: dict[str, Any]
) -> dict[str, Any]:
    """The problem in `response`, checked to be a `status` that `operation` documents."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    method, path = operation
    answers = paths[path][method]["responses"]
    assert str(status) in answers, f"{method.upper()} {path} does not document {status}"
    assert "application/problem+json" in answers[str(status)]["content"]
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


def post_json(stack: Stack, body: Any) -> httpx.Response:
    return stack.http.post("/api/tasks", json=body)


def post_raw(stack: Stack, body: bytes, content_type: str | None = "application/json") -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return stack.http.post("/api/tasks", content=body, headers=headers)


def padded(size: int) -> bytes:
    """A JSON task of exactly `size` bytes (its padding is an unknown field)."""
    start, end = b'{"kind": "add", "params": {"x": 1, "y": 2}, "pad": "', b'"}'
    return start + b"a" * (size - len(start) - len(end)) + end


# Size


def test_a_body_over_the_limit_with_a_length_gets_413(stack: Stack, documented: Any) -> None:
    at_limit = post_raw(stack, padded(MAX_BODY_BYTES))
    assert fields(problem(at_limit, 422, SUBMIT, documented)) == ["pad"]
    over = post_raw(stack, padded(MAX_BODY_BYTES + 1))
    body = problem(over, 413, SUBMIT, documented)
    assert body["type"] == "/problems/content_too_large"
    assert str(MAX_BODY_BYTES) in body["detail"]


def chunks(body: bytes, size: int = 8192) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 4 * 1024 * 1024])
def test_a_chunked_body_over_the_limit_gets_413(stack: Stack, documented: Any, size: int) -> None:
    response = stack.http.post(
        "/api/tasks", content=chunks(padded(size)), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    with_length = post_raw(stack, padded(size))
    body = problem(response, 413, SUBMIT, documented)
    assert body == with_length.json()


def test_a_chunked_body_over_the_limit_ends_an_event_stream_cleanly(stack: Stack) -> None:
    """A stream answers before the body is read: past the limit it ends, and nothing fails."""
    log = stack.api.process.log_path
    logged = log.stat().st_size
    chunk = b"a" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"
    answer = open_stream(
        stack.api.url, "/api/events", {"Transfer-Encoding": "chunked"}, until=to_end, body=body
    )
    assert answer.status == 200
    assert answer.ended
    assert not answer.broken
    assert stack.http.get("/healthz").status_code == 200
    with log.open("rb") as lines:
        lines.seek(logged)
        new = lines.read().decode(errors="replace")
    assert "Traceback" not in new
    assert "ERROR" not in new


# Values


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "long", "params": {"seconds": 0}}, "params.seconds"),
        ({"kind": "long", "params": {"seconds": 61}}, "params.seconds"),
        ({"kind": "long", "params": {"seconds": -(2**70)}}, "params.seconds"),
        ({"kind": "unreliable", "params": {"failure_rate": -0.01}}, "params.failure_rate"),
        ({"kind": "unreliable", "params": {"failure_rate": 1.01}}, "params.failure_rate"),
        ({"kind": "unreliable", "params": {"max_retries": 11}}, "params.max_retries"),
        ({"kind": "add", "params": {"x": 2**53 + 2, "y": 0}}, "params.x"),
        ({"kind": "add", "params": {"x": 0, "y": -(2**53) - 2}}, "params.y"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else value,
)
def test_out_of_range_params_get_422_naming_the_field(
    stack: Stack, documented: Any, params: dict[str, Any], field: str
) -> None:
    assert fields(problem(post_json(stack, params), 422, SUBMIT, documented)) == [field]


def test_the_ends_of_each_range_are_accepted(stack: Stack) -> None:
    for params in ({"x": 2**53, "y": -(2**53)}, {"x": 1.5e-300, "y": -0.0}):
        assert post_json(stack, {"kind": "add", "params": params}).status_code == 202
    edges = {"failure_rate": 0, "max_retries": 0}
    assert post_json(stack, {"kind": "unreliable", "params": edges}).status_code == 202


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("long", {"seconds": "1"}, "params.seconds"),
        ("long", {"seconds": True}, "params.seconds"),
        ("long", {"seconds": 5.5}, "params.seconds"),
        ("long", {"seconds": [5]}, "params.seconds"),
        ("long", {"seconds": None}, "params.seconds"),
        ("unreliable", {"max_retries": False}, "params.max_retries"),
        ("unreliable", {"failure_rate": "0.5"}, "params.failure_rate"),
        ("add", {"x": "2", "y": 3}, "params.x"),
        ("add", {"x": True, "y": 3}, "params.x"),
        ("add", {"x": {"value": 2}, "y": 3}, "params.x"),
        ("add", [2, 3], "params"),
        ("add", "2 + 3", "params"),
        ("add", None, "params"),
    ],
    ids=lambda value: json.dumps(value),
)
def test_wrong_types_get_422_naming_the_field(
    stack: Stack, documented: Any, kind: str, params: Any, field: str
) -> None:
    response = post_json(stack, {"kind": kind, "params": params})
    assert fields(problem(response, 422, SUBMIT, documented)) == [field]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"kind": "add", "params": {"x": 1, "y": 2, "z": 3}}, ["params.z"]),
        ({"kind": "add", "params": {"x": 1, "y": 2}, "priority": 1}, ["priority"]),
        ({"kind": "long", "params": {}, "a": 1, "b": 2}, ["a", "b"]),
    ],
    ids=["in params", "beside them", "two"],
)
def test_unknown_fields_get_422_naming_each(
    stack: Stack, documented: Any, body: dict[str, Any], expected: list[str]
) -> None:
    assert fields(problem(post_json(stack, body), 422, SUBMIT, documented)) == expected


@pytest.mark.parametrize("kind", ["nope", "", "ADD", "add ", 5, None, ["add"]], ids=json.dumps)
def test_unknown_kinds_get_422_naming_kind(stack: Stack, documented: Any, kind: Any) -> None:
    response = post_json(stack, {"kind": kind, "params": {}})
    assert fields(problem(response, 422, SUBMIT, documented)) == ["kind"]


def test_unknown_kind_filters_get_422(stack: Stack, documented: Any) -> None:
    for kind in ("nope", "x" * 41, "add\n"):
        response = stack.http.get("/api/tasks", params={"kind": kind})
        assert fields(problem(response, 422, LIST, documented)) == ["query.kind"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"limit": "1e3"}, "query.limit"),
        ({"state": "done"}, "query.state"),
        ({"cursor": "not-a-task-id"}, "query.cursor"),
        ({"cursor": "0" * 32 + "\n"}, "query.cursor"),
    ],
    ids=json.dumps,
)
def test_bad_list_parameters_get_422_naming_them(
    stack: Stack, documented: Any, params: dict[str, Any], field: str
) -> None:
    response = stack.http.get("/api/tasks", params=params)
    assert fields(problem(response, 422, LIST, documented)) == [field]


@pytest.mark.parametrize(
    "task_id", ["x", "0" * 31, "0" * 33, "A" * 32, "0" * 31 + "g", "%00" * 32, "0" * 32 + "%0A"]
)
def test_malformed_task_ids_get_422_and_unknown_ones_404(
    stack: Stack, documented: Any, task_id: str
) -> None:
    for operation, response in (
        (READ, stack.http.get(f"/api/tasks/{task_id}")),
        (CANCEL, stack.http.post(f"/api/tasks/{task_id}/cancel")),
    ):
        assert fields(problem(response, 422, operation, documented)) == ["path.task_id"]
    unknown = stack.http.get(f"/api/tasks/{'f' * 32}")
    assert problem(unknown, 404, READ, documented)["type"] == "/problems/not_found"


@pytest.mark.parametrize("key", ["", "a\tb", "é", "a b", "x" * 201], ids=repr)
def test_malformed_idempotency_keys_get_422(stack: Stack, documented: Any, key: str) -> None:
    response = stack.http.post(
        "/api/tasks",
        json={"kind": "add", "params": {"x": 1, "y": 1}},
        headers={b"Idempotency-Key": key.encode()},
    )
    assert fields(problem(response, 422, SUBMIT, documented)) == ["header.Idempotency-Key"]


# Bodies that are not a JSON task


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        None,
    ],
)
def test_a_body_that_is_not_json_gets_415(
    stack: Stack, documented: Any, content_type: str | None
) -> None:
    body = b'{"kind": "add", "params": {"x": 1, "y": 2}}'
    response = post_raw(stack, body, content_type)
    problem_body = problem(response, 415, SUBMIT, documented)
    assert problem_body["type"] == "/problems/unsupported_media_type"
    assert "application/json" in problem_body["detail"]


def test_a_json_body_with_a_charset_or_a_json_suffix_is_json(stack: Stack) -> None:
    body = b'{"kind": "add", "params": {"x": 1, "y": 2}}'
    for content_type in ("application/json; charset=utf-8", "application/vnd.task+json"):
        assert post_raw(stack, body, content_type).status_code == 202, content_type


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        (b"", "body", "missing"),
        (b"[]", "body", "model_attributes_type"),
        (b'[{"kind": "add", "params": {"x": 1, "y": 2}}]', "body", "model_attributes_type"),
        (b'"add"', "body", "model_attributes_type"),
        (b"null", "body", "model_attributes_type"),
        (b"{not json", "body", "json_invalid"),
        (b'{"kind": "add", "params": {"x": 1, "y": 2}} trailing', "body", "json_invalid"),
        (b"[" * 10_000 + b"]" * 10_000, "body", "json_too_deep"),
        (
            b'{"kind": "add", "params": {"x": ' + b"[" * 10_000 + b"]" * 10_000 + b', "y": 1}}',
            "body",
            "json_too_deep",
        ),
        (b'{"kind": "add", "params": {"x": 1e400, "y": 2}}', "params.x", "finite_number"),
        (b'{"kind": "add", "params": {"x": -1e400, "y": 2}}', "params.x", "finite_number"),
        (b'{"kind": "add", "params": {"x": NaN, "y": 2}}', "params.x", "finite_number"),
        (b'{"kind": "add", "params": {"x": 1, "y": Infinity}}', "params.y", "finite_number"),
        (b'{"kind": "long", "params": {"seconds": 1' + b"0" * 5000 + b"}}", "body", "json_invalid"),
    ],
    ids=[
        "empty",
        "empty array",
        "array of a task",
        "string",
        "null",
        "not json",
        "trailing text",
        "10000 levels deep",
        "10000 levels deep in params",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "5000 digits",
    ],
)
def test_bodies_that_are_no_json_task_get_422(
    stack: Stack, documented: Any, body: bytes, field: str, kind: str
) -> None:
    response = post_raw(stack, body)
    problem_body = problem(response, 422, SUBMIT, documented)
    assert [(e["field"], e["type"]) for e in problem_body["errors"]] == [(field, kind)]
    assert "Input should be a valid dictionary" not in problem_body["detail"]


def test_a_wrong_method_names_the_allowed_ones(stack: Stack) -> None:
    for method, path, allowed in (
        ("OPTIONS", "/api/tasks", "GET, POST"),
        ("DELETE", "/api/tasks", "GET, POST"),
        ("HEAD", "/api/tasks", "GET, POST"),
        ("PUT", f"/api/tasks/{'0' * 32}", "GET"),
        ("GET", f"/api/tasks/{'0' * 32}/cancel", "POST"),
    ):
        response = stack.http.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        if method != "HEAD":
            assert allowed in response.json()["detail"]
