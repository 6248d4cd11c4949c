"""Refuses request bodies above a size, before anything reads them whole.

A `Content-Length` above the limit is refused at once. A body sent without one (chunked) is
counted as it arrives: once past the limit, a request still unanswered gets `413`, and one whose
answer has already begun (an event stream does not wait for the body) sees the client as gone,
so its answer ends instead of failing halfway.
"""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

GONE: Message = {"type": "http.disconnect"}


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        received = 0
        too_large = False
        answering = False

        async def limited() -> Message:
            nonlocal received, too_large
            if too_large:
                return GONE
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    if answering:
                        return GONE
                    raise HTTPException(413, self._detail())
            return message

        async def watched(message: Message) -> None:
            nonlocal answering
            if message["type"] == "http.response.start":
                answering = True
            await send(message)

        await self.app(scope, limited, watched)

    def _detail(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from taskstream.api.problems import problem_response, status_code

        code, title = status_code(413)
        response = problem_response(413, code, title, self._detail())
        await response(scope, receive, send)
