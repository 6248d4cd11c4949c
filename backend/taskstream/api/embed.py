"""taskstream's API inside an application of one's own, under a prefix, on the same server.

    app = FastAPI()

    async def who(request: Request) -> str:      # the application's own sign-in
        user = request.session.get("user")        # whatever it already uses
        if user is None:
            raise HTTPException(401, "sign in first")
        return user

    taskstream.api.embed.mount(app, "/jobs", authenticate=who)

The API is its own ASGI application mounted at the prefix (`/jobs/api/tasks`, `/jobs/docs`...):
its error answers, CORS and OpenAPI description stay its own and leave the host's routes alone.
Starlette runs no lifespan of a mounted application, so `mount` runs taskstream's inside the
host's: the event reader, the keep-alive and the end of every stream when the server is told to
stop. The streams' hand-off below the framework (see `sse`) happens at the mounted application's
own outermost layer, so an idle stream keeps no frame of taskstream's routing; the host's
middleware, which wraps the mount, stays on its path.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from taskstream.api.auth import Authenticator
from taskstream.api.main import create_app
from taskstream.kinds import KindRegistry
from taskstream.settings import Settings


def mount(
    host: FastAPI,
    prefix: str,
    *,
    settings: Settings | None = None,
    kinds: KindRegistry | None = None,
    authenticate: Authenticator | None = None,
) -> FastAPI:
    """Mounts the API at `prefix` of `host` and runs its lifespan within the host's. Returns
    the mounted API. `authenticate` decides who is asking in place of API_KEYS and sessions."""
    api = create_app(settings, kinds, authenticate=authenticate)
    host.mount(prefix, api)
    hosts_own = host.router.lifespan_context

    @asynccontextmanager
    async def both(app: Any) -> AsyncIterator[Any]:
        async with hosts_own(app) as state, api.router.lifespan_context(api):
            yield state  # the host's lifespan state, if it has one

    host.router.lifespan_context = both
    return api
