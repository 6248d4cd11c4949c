"""An application of someone's own with taskstream's API inside it, under `/jobs`.

It has its own routes, its own lifespan and its own sign-in (a header it maps to its users), and
runs taskstream in the same server: `uvicorn tests.support.host_app:app`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request

from taskstream.api import embed

USERS = {"shop-token-alice": "alice", "shop-token-bob": "bob"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.opened = True  # the host's own start-up ran
    yield


app = FastAPI(title="A shop", lifespan=lifespan)


async def who(request: Request) -> str:
    user = USERS.get(request.headers.get("x-shop-user", ""))
    if user is None:
        raise HTTPException(401, "sign in to the shop first")
    return user


@app.get("/hello")
async def hello(request: Request) -> dict[str, object]:
    return {"opened": getattr(request.app.state, "opened", False)}


embed.mount(app, "/jobs", authenticate=who)
