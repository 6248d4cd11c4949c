"""The token-stream baseline, the design people usually build: a task PUBLISHes every token on
Redis pub/sub, and an sse-starlette endpoint subscribes for each client.

uvicorn bench.baselines.pubsub_tokens:app --loop uvloop --http httptools --no-access-log

`POST /api/tasks` with `{"kind": "tokens", "params": {"chunks", "rate", "start_at"}}` queues
the Celery task `bench.tokens_pubsub` (`celery_app.py`), which publishes each chunk as one message
on the task's channel, then `[DONE]`. `GET /api/tasks/{id}/events` subscribes to that channel on
a `redis.asyncio` connection of its own (from a pool sized for one per client) and sends each
message as an `output` event whose data is the token, then `succeeded` and the end of the
stream. As with every pub/sub design, what is published before a client's SUBSCRIBE lands, or
while it is away, is gone for it.
"""

import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from bench.baselines.celery_app import TOKENS_CHANNEL, TOKENS_DONE, tokens_pubsub

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MAX_CONNECTIONS = int(os.environ.get("REDIS_MAX_CONNECTIONS", "20000"))

app = FastAPI(title="bench: tokens over pub/sub, one subscription per client")
pool = aioredis.ConnectionPool.from_url(REDIS_URL, max_connections=MAX_CONNECTIONS)
client = aioredis.Redis(connection_pool=pool)


class TokensParams(BaseModel):
    chunks: int = Field(ge=1, le=2_000_000)
    rate: float = Field(ge=1, le=200_000)
    start_at: float = Field(0, ge=0)


class TaskRequest(BaseModel):
    kind: str
    params: TokensParams


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/tasks", status_code=202)
def submit(body: TaskRequest) -> dict[str, str]:
    if body.kind != "tokens":
        raise HTTPException(422, "only kind 'tokens' is served here")
    task_id = uuid.uuid4().hex
    p = body.params
    tokens_pubsub.apply_async(args=(p.chunks, p.rate, p.start_at), task_id=task_id)
    return {"id": task_id, "kind": "tokens", "state": "queued"}


@app.get("/api/tasks/{task_id}/events")
async def task_events(task_id: str) -> EventSourceResponse:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(TOKENS_CHANNEL + task_id)
        try:
            async for message in pubsub.listen():
                data: bytes = message["data"]
                if data == TOKENS_DONE:
                    final = {"task_id": task_id, "type": "succeeded"}
                    yield {"event": "succeeded", "data": json.dumps(final)}
                    return
                yield {"event": "output", "data": data.decode()}
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventSourceResponse(stream(), headers=headers, ping=15)
