"""Odd resume positions and task ids on both event streams: a `reset`, a replay or a 4xx, never a
crash or a hang.

The streams never end by themselves, so the schema fuzzer leaves them out; here every value opens
the stream and reads only its first message (or keep-alive), with a deadline.
"""

import re
from typing import Any
from urllib.parse import quote, quote_from_bytes, unquote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.eventstream import Answer, EventStreamParser, open_stream
from tests.support.stack import Stack

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
_EVENT_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
MAX_ID_LENGTH = 64  # the documented maxLength of both the header and the query parameter
# Values that look like `<ms>-<n>` to a lax reader: other scripts' digits, a trailing newline.
LOOKALIKES = ["\u0661\u0662\u0663-\u0660", "\uff11-\uff10", "1-0\n", "0-0\n", "\n1-0", "1-0\r"]

# Query values as sent: any text, percent-encoded, or any bytes (so also invalid UTF-8).
query_values = st.one_of(
    st.text(max_size=80).map(lambda text: quote(text, safe="")),
    st.binary(max_size=40).map(quote_from_bytes),
)
# Header values as HTTP can carry them: Latin-1 without control characters.
header_values = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=80
)


def well_formed(value: str) -> bool:
    match = _EVENT_ID.fullmatch(value)
    return match is not None and all(int(part) < 2**64 for part in match.groups())


def message_or_keepalive(stream: EventStreamParser) -> bool:
    return bool(stream.messages) or any("keep-alive" in c for c in stream.comments)


def problem(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.problem()
    assert body["status"] == status
    assert body["detail"]
    return body


def check_all_events(stack: Stack, sent: str, headers: dict[str, str] | None = None) -> None:
    """`sent` is the value the server reads (the query's decoded, or the header's)."""
    target = "/api/events" if headers else f"/api/events?last_event_id={quote(sent, safe='')}"
    answer = open_stream(stack.api.url, target, headers, until=message_or_keepalive)
    where = "header.Last-Event-ID" if headers else "query.last_event_id"
    if len(sent) > MAX_ID_LENGTH:
        body = problem(answer, 422)
        assert [e["field"] for e in body["errors"]] == [where]
        return
    assert answer.status == 200, (answer.status, answer.body)
    assert not answer.broken, f"the stream broke before its first message for {sent!r}"
    assert not answer.ended, f"the stream ended before its first message for {sent!r}"
    if headers is not None and not sent:
        return  # an empty header resumes nothing: live events follow
    if well_formed(sent):
        assert message_or_keepalive(answer.stream)
        return
    first = next(iter(answer.stream.messages), None)
    assert first is not None, f"no reset for {sent!r}, only {answer.stream.comments}"
    assert first.event == "reset", (sent, answer.stream.messages)
    assert first.json()["reason"]
    assert well_formed(first.json()["last_event_id"])
    assert first.last_event_id == first.json()["last_event_id"]


@FUZZ
@given(encoded=query_values)
@example(encoded="0-0")
@example(encoded="18446744073709551615-18446744073709551615")
@example(encoded="18446744073709551616-0")
@example(encoded="%00")
@example(encoded="%ED%A0%80")  # a lone surrogate's bytes: not UTF-8
@example(encoded="x" * (MAX_ID_LENGTH + 1))
def test_any_last_event_id_query_gets_a_reset_or_422(stack: Stack, encoded: str) -> None:
    sent = unquote(encoded, errors="replace")
    check_all_events(stack, sent)


@FUZZ
@given(value=header_values)
@example(value="")
@example(value="0-0")
@example(value="1-" + "9" * 21)
@example(value="ÿ" * (MAX_ID_LENGTH + 1))
def test_any_last_event_id_header_gets_a_reset_or_422(stack: Stack, value: str) -> None:
    # Whitespace around a header's value is not part of it (RFC 9110, 5.5).
    sent = value.strip(" \t")
    check_all_events(stack, sent, {"Last-Event-ID": value})


@pytest.mark.parametrize("value", LOOKALIKES, ids=ascii)
def test_ids_that_only_look_numeric_get_a_reset(stack: Stack, value: str) -> None:
    check_all_events(stack, value)


@pytest.fixture(scope="module")
def finished_task(stack: Stack) -> dict[str, Any]:
    task = stack.submit("add", x=1, y=2)
    return stack.wait_state(task["id"], "succeeded")


@FUZZ
@given(encoded=query_values, header=st.none() | header_values)
@example(encoded="%D9%A1-%D9%A0", header=None)
@example(encoded="1-0%0A", header=None)
@example(encoded="0-0", header="0-0")
def test_task_stream_replays_from_the_start_for_any_resume_id(
    stack: Stack, finished_task: dict[str, Any], encoded: str, header: str | None
) -> None:
    target = f"/api/tasks/{finished_task['id']}/events?last_event_id={encoded}"
    headers = None if header is None else {"Last-Event-ID": header}
    answer = open_stream(stack.api.url, target, headers)
    sent = unquote(encoded, errors="replace")
    if len(sent) > MAX_ID_LENGTH or (
        header is not None and len(header.strip(" \t")) > MAX_ID_LENGTH
    ):
        problem(answer, 422)
        return
    assert answer.status == 200, (answer.status, answer.body)
    assert not answer.broken
    first = answer.stream.messages[0].json()
    assert (first["task_id"], first["seq"], first["type"]) == (finished_task["id"], 1, "queued")


@FUZZ
@given(task_id=st.text(max_size=40) | st.from_regex(r"[0-9a-f]{32}", fullmatch=True))
@example(task_id="0" * 32)
@example(task_id="0" * 31 + "G")
@example(task_id="0" * 32 + "\n")
@example(task_id="A" * 32)
def test_task_stream_of_a_malformed_or_unknown_id_is_a_404_or_422(
    stack: Stack, task_id: str
) -> None:
    answer = open_stream(stack.api.url, f"/api/tasks/{quote(task_id, safe='')}/events")
    assert answer.status in (404, 422), (task_id, answer.status, answer.body)
    body = problem(answer, answer.status)
    if re.fullmatch(r"[0-9a-f]{32}", task_id):
        assert body["type"] == "/problems/not_found"
    elif answer.status == 422:
        assert [e["field"] for e in body["errors"]] == ["path.task_id"]


def test_the_stream_answers_are_documented(stack: Stack) -> None:
    """A 422 on either stream is listed in the schema, as a problem."""
    paths = httpx.get(f"{stack.api.url}/openapi.json").json()["paths"]
    for path in ("/api/events", "/api/tasks/{task_id}/events"):
        content = paths[path]["get"]["responses"]["422"]["content"]
        assert set(content) == {"application/problem+json"}, path
        assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
