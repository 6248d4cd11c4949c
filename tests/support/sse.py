"""A small Server-Sent Events client on a raw socket, for tests.

A raw socket shows exactly what the server sends (headers, comments, `retry:`), and closing it
from the test's thread ends the reader at once, like a browser tab going away.
"""

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Message:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class SSEClient:
    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.request_headers = headers or {}
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.messages: list[Message] = []
        # When each message was read (time.time(), as an event's `at`), index for index.
        self.arrivals: list[float] = []
        self.comments: list[str] = []
        self.retry: int | None = None
        self.ended = threading.Event()
        self._opened = threading.Event()
        self._changed = threading.Condition()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SSEClient":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, timeout: float = 30) -> "SSEClient":
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout)
        lines = [
            f"GET {self.target} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Accept: text/event-stream",
            "Accept-Encoding: gzip, br",
        ]
        lines += [f"{name}: {value}" for name, value in self.request_headers.items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._sock.settimeout(None)
        self._thread.start()
        if not self._opened.wait(timeout):
            raise TimeoutError("no response headers")
        return self

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread.is_alive():
            self._thread.join(10)

    @property
    def last_event_id(self) -> str | None:
        with self._changed:
            ids = [m.id for m in self.messages if m.id is not None]
        return ids[-1] if ids else None

    def wait_for(
        self, predicate: Callable[[list[Message]], bool], timeout: float = 30
    ) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.ended.is_set() and not predicate(self.messages)):
                    if self.ended.is_set() and remaining > 0:
                        raise AssertionError(f"stream ended first: {self.messages!r}")
                    raise TimeoutError(f"predicate not met within {timeout} s: {self.messages!r}")
                self._changed.wait(min(remaining, 0.5))
            return list(self.messages)

    def wait_ended(self, timeout: float = 30) -> None:
        if not self.ended.wait(timeout):
            raise TimeoutError("the stream did not end")

    def _run(self) -> None:
        assert self._sock is not None
        reader = self._sock.makefile("rb")
        try:
            status_line = reader.readline().decode()
            self.status = int(status_line.split()[1]) if status_line else 0
            while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self._opened.set()
            if self.status != 200:
                length = int(self.headers.get("content-length", "0"))
                self.body = reader.read(length) if length else b""
                return
            self._parse(self._chunks(reader))
        except OSError:
            pass
        finally:
            self._opened.set()
            self.ended.set()
            with self._changed:
                self._changed.notify_all()

    def _chunks(self, reader: Any) -> Any:
        if self.headers.get("transfer-encoding") != "chunked":
            while chunk := reader.read1(65536):
                yield chunk
            return
        while True:
            size_line = reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            chunk = reader.read(size)
            reader.readline()
            yield chunk

    def _parse(self, chunks: Any) -> None:
        buffer = b""
        fields: dict[str, str] = {}
        data: list[str] = []
        for chunk in chunks:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.rstrip(b"\r").decode()
                if line == "":
                    if data or "event" in fields:
                        self._emit(
                            Message(
                                fields.get("id"), fields.get("event", "message"), "\n".join(data)
                            )
                        )
                    fields, data = {}, []
                elif line.startswith(":"):
                    with self._changed:
                        self.comments.append(line[1:].strip())
                        self._changed.notify_all()
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        data.append(value)
                    elif name == "retry" and value.isdigit():
                        self.retry = int(value)
                    elif name in ("id", "event"):
                        fields[name] = value

    def _emit(self, message: Message) -> None:
        arrived = time.time()
        with self._changed:
            self.messages.append(message)
            self.arrivals.append(arrived)
            self._changed.notify_all()


def of_task(task_id: str) -> Callable[[list[Message]], list[dict[str, Any]]]:
    """The events of one task among a stream's messages, as dicts."""

    def select(messages: list[Message]) -> list[dict[str, Any]]:
        events = [m.json() for m in messages if m.event != "reset"]
        return [e for e in events if e.get("task_id") == task_id]

    return select


FINAL = {"succeeded", "failed", "cancelled"}


def finished(task_id: str) -> Callable[[list[Message]], bool]:
    """A `wait_for` predicate: the task's final event has arrived."""
    return lambda messages: any(e["type"] in FINAL for e in of_task(task_id)(messages))
