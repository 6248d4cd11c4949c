"""The one place that turns an event stream into an HTTP response."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse

__all__ = ["DOC", "HEADERS", "EventSourceResponse", "ensure_ready", "event_stream"]

from taskstream.api.fanout import Fanout
from taskstream.errors import StoreUnavailable, TooManyRequests, Unavailable
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


def admit(fanout: Fanout, settings: Settings, principal: str) -> str | None:
    """Checks the stream limits; returns whose events the stream may carry (None: everyone's)."""
    viewer = principal if settings.auth_required else None
    if fanout.clients >= settings.max_streams:
        raise Unavailable("this server holds as many streams as it may; try another", 5)
    if viewer is not None and fanout.clients_of(viewer) >= settings.max_streams_per_principal:
        raise TooManyRequests(
            f"at most {settings.max_streams_per_principal} open streams per principal", 5
        )
    return viewer


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
