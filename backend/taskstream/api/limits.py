"""Refuses request bodies above a size, before anything reads them whole.

A `Content-Length` above the limit is refused at once. A body sent without one (chunked) is
counted as it arrives, whoever reads it: past the limit, a request still unanswered gets the
`413` from here, and whatever reads on sees the client as gone (as does a route whose answer had
already begun: an event stream does not wait for the body), so nothing fails halfway.

FastAPI now has a limit of its own (`FastAPI(max_body_size=...)`, on Starlette's
`RequestBodyLimitMiddleware`). It is not used: it answers a `Content-Length` over the limit with
a plain-text `413` from below every exception handler, where this API answers every error as
problem details naming what was wrong (`tests/api/test_bad_input.py`, whose 413 tests fail with
it).
"""

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
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
                has_body = value != b"0"
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            # Neither length nor chunks: HTTP/1.1 says there is no body (as for every event
            # stream), so there is nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        too_large = answered = refused = finished = False

        async def limited() -> Message:
            nonlocal received, too_large, answered, refused
            if too_large:
                return GONE
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    if not answered:
                        answered = refused = True
                        await self._refuse(scope, receive, send)
                    return GONE
            return message

        async def unless_refused(message: Message) -> None:
            nonlocal answered, finished
            if refused:
                return  # the 413 went out instead of this answer
            if message["type"] == "http.response.start":
                answered = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        await self.app(scope, limited, unless_refused)
        if too_large and answered and not refused and not finished:
            # A stream that stopped for the client it took as gone: end its answer properly.
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _detail(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from taskstream.api.problems import problem_response, status_code

        code, title = status_code(413)
        response = problem_response(scope, 413, code, title, self._detail())
        await response(scope, receive, send)
