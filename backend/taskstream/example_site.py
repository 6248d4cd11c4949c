"""`python -m taskstream.example_site`: a customer's site showing a task with `<taskstream-task>`.

It plays both halves of such a site on EXAMPLE_PORT: the page (`frontend/example/`, with the
built element from `frontend/client/dist/` under `/client/`), and the page's own backend, which
alone holds an API key:

- `POST /start` submits a `generate` task with the typed client (`taskstream.client`),
  asking for a watch token (`watch_token=True`), and answers the
  page `{task_id, token, expires_at, api}`: the token reads that one task and can do nothing else.
- `POST /tasks/{id}/token` mints a fresh token when the page's has expired.
- `POST /tasks/{id}/cancel` cancels, which a watch token may not do.

A real site would check that the task is its signed-in user's before the last two; this one has
no users. Its routes take JSON only, so another site's form cannot post to them (a cross-origin
JSON request needs a preflight, which this server never grants). The pages get the same strict
Content-Security-Policy as taskstream's own, which lets them connect to the API's origin.
"""

import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from taskstream.client import (
    AsyncClient,
    ClientError,
    Conflict,
    NotFound,
    TransportError,
    Unavailable,
)
from taskstream.events.ids import TASK_ID_PATTERN
from taskstream.settings import Settings, get_settings, settings_or_exit
from taskstream.web import SecurityHeaders, api_origin

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
PAGE_ROOT = FRONTEND / "example"
CLIENT_ROOT = FRONTEND / "client" / "dist"
ELEMENT_BUNDLE = "taskstream-task.js"
WORDS_PER_SECOND = 40
_TASK_ID = re.compile(TASK_ID_PATTERN)


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: int = Field(600, ge=1, le=5_000, description="How long the report is, in words.")


class SiteError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def missing_files(page_root: Path = PAGE_ROOT, client_root: Path = CLIENT_ROOT) -> str | None:
    """What is missing for the site to be served, in a sentence; None when nothing is."""
    if not (page_root / "index.html").is_file():
        return f"{page_root}/index.html not found"
    if not (client_root / ELEMENT_BUNDLE).is_file():
        return f"{client_root}/{ELEMENT_BUNDLE} not found: build the web app (make web) first"
    return None


def api_key(settings: Settings) -> str | None:
    """EXAMPLE_API_KEY, else the first of API_KEYS (the same machine's API), else none."""
    return settings.example_api_key.get_secret_value() or next(iter(settings.api_keys), None)


class Api:
    """The few calls the site's backend makes to taskstream, with the typed client and the
    site's key; the client's errors become the one sentence the page shows."""

    def __init__(self, settings: Settings) -> None:
        self.client = AsyncClient(api_origin(settings, None), api_key=api_key(settings))

    @contextlib.asynccontextmanager
    async def calling(self) -> AsyncIterator[AsyncClient]:
        try:
            yield self.client
        except NotFound:
            raise SiteError(404, "No such task.") from None
        except Conflict:
            raise SiteError(409, "The task has finished already.") from None
        except (TransportError, Unavailable):
            raise SiteError(503, "The task service cannot be reached; try again.") from None
        except ClientError as exc:
            raise SiteError(502, f"The task service answered {exc.status}.") from None

    async def close(self) -> None:
        await self.client.aclose()


def task_id_of(request: Request) -> str:
    task_id = str(request.path_params["task_id"])
    if not _TASK_ID.fullmatch(task_id):
        raise SiteError(404, "No such task.")
    return task_id


async def json_body(request: Request) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise SiteError(415, "Send JSON (Content-Type: application/json).")
    try:
        return await request.json()
    except ValueError:
        raise SiteError(422, "The body is not JSON.") from None


def create_app(
    settings: Settings | None = None,
    *,
    page_root: Path = PAGE_ROOT,
    client_root: Path = CLIENT_ROOT,
) -> ASGIApp:
    settings = settings or get_settings()
    if problem := missing_files(page_root, client_root):
        raise RuntimeError(problem)
    api = Api(settings)

    async def start(request: Request) -> JSONResponse:
        try:
            wanted = StartRequest.model_validate(await json_body(request) or {})
        except ValidationError as exc:
            raise SiteError(422, "words: a whole number from 1 to 5000.") from exc
        params = {"words": wanted.words, "rate": WORDS_PER_SECOND}
        async with api.calling() as client:
            task = await client.submit("generate", params, tags=["report"], watch_token=True)
        token = task.watch_token
        if token is None:
            raise SiteError(502, "The task service gave no watch token.")
        return JSONResponse(
            {
                "task_id": task.id,
                "token": token.token,
                "expires_at": token.expires_at.isoformat(),
                "api": api_origin(settings, request.url.hostname),
            },
            status_code=201,
        )

    async def fresh_token(request: Request) -> JSONResponse:
        await json_body(request)
        async with api.calling() as client:
            token = await client.create_token(task_id_of(request))
        return JSONResponse({"token": token.token, "expires_at": token.expires_at.isoformat()})

    async def cancel(request: Request) -> JSONResponse:
        await json_body(request)
        async with api.calling() as client:
            task = await client.cancel(task_id_of(request))
        return JSONResponse({"task_id": task.id, "state": task.state})

    async def site_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SiteError)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await api.close()

    app = Starlette(
        routes=[
            Route("/start", start, methods=["POST"]),
            Route("/tasks/{task_id}/token", fresh_token, methods=["POST"]),
            Route("/tasks/{task_id}/cancel", cancel, methods=["POST"]),
            Mount("/client", StaticFiles(directory=client_root)),
            Mount("/", StaticFiles(directory=page_root, html=True)),
        ],
        exception_handlers={SiteError: site_error},
        lifespan=lifespan,
    )
    return SecurityHeaders(app, settings)


def main() -> int:
    settings = settings_or_exit()
    try:
        app = create_app(settings)
    except RuntimeError as exc:
        print(f"taskstream: example site: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.web_host, port=settings.example_port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
