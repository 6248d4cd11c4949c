"""Server-Sent Events read as the HTML standard reads them, fed bytes as they arrive (no I/O).

A line ends at CRLF, at a lone LF or at a lone CR; one leading BOM is ignored; one space after
the colon is dropped; a message is dispatched at a blank line only if it has data; `retry:` takes
ASCII digits only; an `id:` holding NUL is ignored. A CR that ends a chunk is held back until the
next one shows whether an LF follows it, so a CRLF split between two reads is one line end.
"""

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Message:
    """One dispatched message: its `event` type ("message" when the server names none), its
    `data`, and the stream's last event id as of it (`id`, "" before any)."""

    event: str
    data: str
    id: str


class Decoder:
    """Turns a stream's bytes into messages; `retry` is the server's latest reconnection time
    hint in milliseconds (None until it sends one). One decoder per connection."""

    def __init__(self) -> None:
        self.retry: int | None = None
        self._text = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id = ""

    def feed(self, chunk: bytes) -> list[Message]:
        """The messages that `chunk` completes, in order."""
        text = self._pending + self._text.decode(chunk)
        if not self._started and text:
            text = text.removeprefix("\ufeff")
            self._started = True
        messages: list[Message] = []
        start = 0
        for end in _LINE_END.finditer(text):
            if end.group() == "\r" and end.end() == len(text):
                break  # an LF may follow in the next chunk
            self._line(text[start : end.start()], messages)
            start = end.end()
        self._pending = text[start:]
        return messages

    def _line(self, line: str, messages: list[Message]) -> None:
        if not line:
            if self._data:
                messages.append(Message(self._event or "message", "\n".join(self._data), self._id))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            return  # a comment: the server's keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
