"""Baseline 2, the obvious FastAPI design: sse-starlette, one `redis.asyncio` pub/sub per client.

uvicorn bench.baselines.fastapi_app:app --loop uvloop --http httptools --no-access-log

`POST /api/tasks` queues the same pub/sub Celery task as baseline 1 (a plain `def` route, so
FastAPI runs the blocking publish in its thread pool); each `GET /api/events` client subscribes to
the channel on a connection of its own, from a pool sized for one per client.
"""

import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from bench.baselines.celery_app import CHANNEL, add_pubsub

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MAX_CONNECTIONS = int(os.environ.get("REDIS_MAX_CONNECTIONS", "20000"))

app = FastAPI(title="bench: FastAPI with pub/sub per client")
pool = aioredis.ConnectionPool.from_url(REDIS_URL, max_connections=MAX_CONNECTIONS)
client = aioredis.Redis(connection_pool=pool)


class AddParams(BaseModel):
    x: float
    y: float


class TaskRequest(BaseModel):
    kind: str
    params: AddParams


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/tasks", status_code=202)
def submit(body: TaskRequest) -> dict[str, str]:
    if body.kind != "add":
        raise HTTPException(422, "only kind 'add' is served here")
    task_id = uuid.uuid4().hex
    add_pubsub.apply_async(args=(body.params.x, body.params.y), task_id=task_id)
    return {"id": task_id, "kind": "add", "state": "queued"}


@app.get("/api/events")
async def events() -> EventSourceResponse:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)
        try:
            async for message in pubsub.listen():
                data = message["data"].decode()
                event = json.loads(data)
                yield {"id": event["id"], "event": event["type"], "data": data}
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventSourceResponse(stream(), headers=headers, ping=15)
