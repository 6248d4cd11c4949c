"""The one place that turns an event stream into an HTTP response."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse

__all__ = ["DOC", "HEADERS", "EventSourceResponse", "ensure_ready", "event_stream"]

from taskstream.api.fanout import Fanout
from taskstream.errors import StoreUnavailable
from taskstream.settings import Settings

HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}

DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of Server-Sent Events. Each message has `id:` (the log's event "
        "id), `event:` (the event's type, or `reset`) and `data:` (the event as JSON, see the "
        "`Event` schema).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


async def ensure_ready(fanout: Fanout) -> None:
    try:
        await asyncio.wait_for(fanout.ready.wait(), timeout=5)
    except TimeoutError as exc:
        raise StoreUnavailable("the event log is not reachable yet") from exc


def event_stream(body: AsyncIterator[bytes], settings: Settings) -> EventSourceResponse:
    return EventSourceResponse(
        body,
        headers=HEADERS,
        ping=0,  # the fan-out's one heartbeat keeps every stream alive
        send_timeout=settings.client_send_timeout_seconds,
    )
