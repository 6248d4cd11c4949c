"""Server-Sent Events read exactly as the HTML standard's parser reads them, off a raw socket.

The standard ends a line at CRLF, at a lone LF or at a lone CR, ignores one leading BOM, strips
one space after the colon, and dispatches a message at a blank line only if it has data. A reader
that split at LF alone would miss a bare CR that a browser honours, so the tests that check what
odd text does to the stream read it this way. Every read has a deadline: nothing here can hang.
"""

import codecs
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Message:
    event: str
    data: str
    last_event_id: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class EventStreamParser:
    """Incremental: feed bytes as they come, read `messages` and `comments` as they fill."""

    messages: list[Message] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))
    _text: str = ""
    _started: bool = False
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _last_id: str = ""

    def feed(self, chunk: bytes, final: bool = False) -> None:
        text = self._text + self._decoder.decode(chunk, final)
        if not self._started and text:
            text = text.removeprefix("\ufeff")
            self._started = True
        start = 0
        while True:
            cr, lf = text.find("\r", start), text.find("\n", start)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            if text[end] == "\r" and end + 1 == len(text) and not final:
                break  # a CR last in the chunk: an LF may follow in the next one
            self._line(text[start:end])
            start = end + 2 if text.startswith("\r\n", end) else end + 1
        self._text = text[start:]

    def _line(self, line: str) -> None:
        if line == "":
            if self._data:
                data = "\n".join(self._data)
                self.messages.append(Message(self._event or "message", data, self._last_id))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            self.comments.append(line[1:])
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    stream: EventStreamParser
    ended: bool  # the server ended the answer before we stopped reading
    broken: bool = False  # the connection closed without the answer's proper end

    def problem(self) -> dict[str, Any]:
        problem: dict[str, Any] = json.loads(self.body)
        return problem


def open_stream(
    base_url: str,
    target: str,
    headers: dict[str, str] | None = None,
    *,
    until: Callable[[EventStreamParser], bool] = lambda stream: bool(stream.messages),
    timeout: float = 20.0,
    body: bytes = b"",
) -> Answer:
    """GETs `target` and reads until `until(stream)` holds or the answer ends, within `timeout`.

    By default it stops at the first message. `target` is sent as given (already
    percent-encoded), header values as Latin-1 bytes, and `body` as is, after the header (its
    framing headers are the caller's). Raises TimeoutError if neither happens by the deadline.
    """
    parts = urlsplit(base_url)
    deadline = time.monotonic() + timeout
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        sock.sendall(request + body)
        reader = _Reader(sock, deadline)
        status_line = reader.line()
        status = int(status_line.split()[1])
        answer_headers: dict[str, str] = {}
        while line := reader.line():
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        stream = EventStreamParser()
        answer = Answer(status, answer_headers, b"", stream, ended=False)
        if "content-length" in answer_headers:
            answer.body = reader.exactly(int(answer_headers["content-length"]))
            answer.ended = True
            return answer
        if answer_headers.get("transfer-encoding") != "chunked":
            raise AssertionError(f"neither a length nor chunks: {answer_headers}")
        try:
            while not until(stream):
                size = int(reader.line().split(";")[0], 16)
                if size == 0:
                    stream.feed(b"", final=True)
                    answer.ended = True
                    break
                chunk = reader.exactly(size)
                reader.line()
                answer.body += chunk
                stream.feed(chunk)
        except ConnectionError:
            answer.broken = True
        return answer


def to_end(stream: EventStreamParser) -> bool:
    """For `until`: read the whole answer."""
    return False


class _Reader:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def _more(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the stream sent nothing more before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("the stream sent nothing more before the deadline") from None
        if not data:
            raise ConnectionError("the server closed the connection mid-answer")
        self.buffer += data

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            self._more()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode("latin-1")

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._more()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data
