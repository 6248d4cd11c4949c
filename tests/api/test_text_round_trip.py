"""Any text a client submits comes back exactly: in the REST task, from the worker, on both streams.

The shipped kinds take numbers only, so these tests run a stack of their own whose API and worker
both load the test-only `echo` kind (`tests.support.extra_kinds`): it reports its text as its
progress message and returns it as its result. Streams are read with the HTML standard's parser,
which ends a line at CR, LF or CRLF alike, so a line break inside the text could only survive if
the server escaped it.

What no text can carry is refused with a 422 naming the problem, never a 5xx: bytes that are not
UTF-8 (`body`), and lone surrogates, whether escaped in JSON (`"\\ud800"`) or sent as their raw
bytes (`params.text`). A surrogate pair escaped in JSON is one character, and round-trips.
"""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.eventstream import EventStreamParser, Message, open_stream, to_end
from tests.support.stack import Stack

KINDS = {"TASK_KIND_MODULES": "tests.support.extra_kinds", "PROGRESS_MESSAGE_MAX_CHARS": "1000"}
ECHO_MAX_LENGTH = 1000  # tests.support.extra_kinds.ECHO_MAX_LENGTH, not imported: see there
EVENTS = ["queued", "started", "progress", "succeeded"]  # what the everyone stream carries
TASK_EVENTS = ["queued", "started", "output", "progress", "succeeded"]  # and the task's own

ODD_TEXTS = {
    "cr": "one\rtwo",
    "lf": "one\ntwo",
    "crlf": "one\r\ntwo",
    "line breaks at the ends": "\r\n\rmiddle\n\r",
    "a fake event": "data: fake\n\nevent: x\nid: 9999999999999-0\nretry: 1\n\n",
    "a comment line": "\n: not a comment\n",
    "nul": "before\x00after",
    "every C0 control and DEL": "".join(map(chr, range(32))) + "\x7f",
    "tabs": "\tcolumn\tcolumn\t",
    "emoji and astral characters": "😀 👩‍👩‍👧‍👦 🏳️‍🌈 𝄞 𠜎 \U0010fffd",
    "right to left": "שלום עולם مرحبا بالعالم \u202eevil\u202c \u200f",
    "line and paragraph separators": "a\u2028b\u2029c\x85d",
    "quotes and backslashes": '"double" \'single\' \\ \\\\ \\n \\u0000 \\" `back`',
    "html": "</script><img src=x onerror=1><!--",
    "a byte order mark and noncharacters": "\ufeffstart \ufffe \uffff \ufdd0",
    "combining marks": "e\u0301 a\u0308\u0308\u0308 Z\u0351\u0358\u0300",
    "empty": "",
    "only spaces": "   ",
    "the longest allowed, in astral characters": "𝄞" * ECHO_MAX_LENGTH,
}


@pytest.fixture(scope="module")
def echo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    private = Stack(tmp_path_factory.mktemp("echo"), api_env=KINDS, worker_env=KINDS)
    private.start()
    yield private
    private.stop()


def post_raw(stack: Stack, body: bytes) -> httpx.Response:
    return stack.http.post("/api/tasks", content=body, headers={"content-type": "application/json"})


def submit(stack: Stack, text: str, *, ascii_only: bool) -> dict[str, Any]:
    """Submits `text` as raw UTF-8, or with everything non-ASCII escaped (astral characters as
    surrogate pairs)."""
    body = json.dumps({"kind": "echo", "params": {"text": text}}, ensure_ascii=ascii_only)
    response = post_raw(stack, body.encode())
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    assert task["params"] == {"text": text}
    return task


def check_events(messages: list[Message], task_id: str, text: str, own: bool = True) -> None:
    """The task's events as its own stream (`own`) or the everyone stream carries them."""
    mine = [m for m in messages if m.json().get("task_id") == task_id]
    expected = [e for e in (TASK_EVENTS if own else EVENTS) if text or e != "output"]
    assert [m.event for m in mine] == expected, [m.event for m in mine]
    for message in mine:
        event = message.json()
        assert message.last_event_id == event["id"]
        assert message.event == event["type"]
    events = {m.event: m.json() for m in mine}
    assert events["queued"]["params"] == {"text": text}
    assert events["progress"]["progress"]["message"] == text
    assert events["succeeded"]["result"] == {"text": text}
    if text and own:
        assert events["output"]["output"] == {"stream": "output", "offset": 0, "text": text}


def check_output(stack: Stack, task_id: str, text: str) -> None:
    output = stack.http.get(f"/api/tasks/{task_id}/output").json()
    if text:
        assert output["streams"] == {
            "output": {"type": "text", "length": len(text), "truncated": False, "text": text}
        }
    else:  # writing nothing makes no stream
        assert output["streams"] == {}


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf-8", "escaped"])
@pytest.mark.parametrize("text", list(ODD_TEXTS.values()), ids=list(ODD_TEXTS))
def test_text_round_trips_through_the_task_and_its_stream(
    echo_stack: Stack, text: str, ascii_only: bool
) -> None:
    task = submit(echo_stack, text, ascii_only=ascii_only)
    answer = open_stream(echo_stack.api.url, f"/api/tasks/{task['id']}/events", until=to_end)
    assert answer.status == 200
    assert answer.ended, "the task's stream ends after its final event"
    check_events(answer.stream.messages, task["id"], text)
    assert all(m.event in TASK_EVENTS for m in answer.stream.messages)
    check_output(echo_stack, task["id"], text)
    done = echo_stack.task(task["id"])
    assert done["state"] == "succeeded"
    assert done["params"] == {"text": text}
    assert done["result"] == {"text": text}
    assert done["progress"]["message"] == text


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(text=st.text(max_size=ECHO_MAX_LENGTH))
def test_any_text_round_trips(echo_stack: Stack, text: str) -> None:
    task = submit(echo_stack, text, ascii_only=False)
    answer = open_stream(echo_stack.api.url, f"/api/tasks/{task['id']}/events", until=to_end)
    check_events(answer.stream.messages, task["id"], text)
    assert echo_stack.task(task["id"])["result"] == {"text": text}


def test_text_round_trips_through_the_stream_of_every_event(echo_stack: Stack) -> None:
    position = echo_stack.http.get("/api/tasks", params={"limit": 1}).json()["last_event_id"]
    tasks = {submit(echo_stack, text, ascii_only=False)["id"]: text for text in ODD_TEXTS.values()}

    def all_succeeded(stream: EventStreamParser) -> bool:
        done = {m.json()["task_id"] for m in stream.messages if m.event == "succeeded"}
        return done >= set(tasks)

    answer = open_stream(
        echo_stack.api.url,
        f"/api/events?last_event_id={position}",
        until=all_succeeded,
        timeout=120,
    )
    assert answer.status == 200
    for task_id, text in tasks.items():
        check_events(answer.stream.messages, task_id, text, own=False)
    types = {m.event for m in answer.stream.messages}
    assert types <= set(EVENTS), types


def test_the_longest_text_allowed_and_one_more(echo_stack: Stack) -> None:
    submit(echo_stack, "x" * ECHO_MAX_LENGTH, ascii_only=False)
    response = echo_stack.http.post(
        "/api/tasks", json={"kind": "echo", "params": {"text": "x" * (ECHO_MAX_LENGTH + 1)}}
    )
    assert refused(response) == [("params.text", "string_too_long")]


def refused(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    return [(error["field"], error["type"]) for error in problem["errors"]]


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",  # never in UTF-8
        b"\xc3\x28",  # a lead byte without its continuation
        b"\xc0\xaf",  # an overlong "/"
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xe2\x82",  # cut short, at the end of the string
        b"\x80",  # a continuation byte alone
    ],
    ids=lambda raw: raw.hex(),
)
def test_bytes_that_are_not_utf8_are_refused_naming_the_body(echo_stack: Stack, raw: bytes) -> None:
    body = b'{"kind": "echo", "params": {"text": "ok ' + raw + b'"}}'
    response = post_raw(echo_stack, body)
    assert refused(response) == [("body", "utf8_invalid")]
    assert "UTF-8" in response.json()["detail"]
    assert f"0x{raw[:1].hex()}" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": "echo", "params": {"text": "\\ud800"}}',
        b'{"kind": "echo", "params": {"text": "a\\udfffb"}}',
        b'{"kind": "echo", "params": {"text": "\\ude00\\ud83d"}}',  # a pair the wrong way round
        b'{"kind": "echo", "params": {"text": "\\ud83d"}}',  # half of one
        b'{"kind": "echo", "params": {"text": "\xed\xa0\x80"}}',  # U+D800 as raw bytes
    ],
    ids=["escaped", "inside text", "reversed pair", "high half", "raw bytes"],
)
def test_lone_surrogates_are_refused_naming_the_field(echo_stack: Stack, body: bytes) -> None:
    response = post_raw(echo_stack, body)
    assert refused(response) == [("params.text", "string_unicode")]
    assert "surrogate" in response.json()["detail"]


def test_a_refused_text_leaves_no_task_behind(echo_stack: Stack) -> None:
    def newest() -> list[str]:
        page = echo_stack.http.get("/api/tasks", params={"limit": 1}).json()
        return [task["id"] for task in page["items"]]

    before = newest()
    for text in (b'"\\ud800"', b'"\xff"'):
        body = b'{"kind": "echo", "params": {"text": ' + text + b"}}"
        assert post_raw(echo_stack, body).status_code == 422
    assert newest() == before


def test_the_reader_ends_lines_as_the_standard_does() -> None:
    """The checks above mean something only if a raw CR or LF in the data would split it."""
    stream = EventStreamParser()
    raw = b"\xef\xbb\xbfretry: 5\r\rid: 1\revent: a\rdata: x\rdata:  y\r\r"
    raw += b": note\nevent: b\ndata: z\r\n\r\nid\ndata\n\nevent: c\n\n"
    cut = raw.index(b"z\r\n") + 2  # a CR at the end of one read, its LF at the start of the next
    stream.feed(raw[:cut])
    stream.feed(raw[cut:])
    stream.feed(b"data: never dispatched", final=True)
    assert stream.retry == 5
    assert stream.comments == [" note"]
    assert stream.messages == [
        Message("a", "x\n y", "1"),
        Message("b", "z", "1"),
        Message("message", "", ""),
    ]
