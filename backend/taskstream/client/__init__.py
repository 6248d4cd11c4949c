"""A typed Python client of the taskstream API (install the `client` extra: httpx).

    from taskstream.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as client:
        task = client.submit("generate", {"words": 50})
        for item in client.watch(task.id):      # each event once, across restarts
            print(item.type if isinstance(item, Event) else "snapshot")
        print(client.wait(task.id, timeout=60).result)

`AsyncClient` has the same methods, to `await` (and `async for`). Both send the same requests and
follow streams with the same state machine (`calls`, `follow`): only the transport differs. The
answers are the API's own models (`Task`, `TaskOutput`, `Event`, `SubmittedTask`, `WatchToken`);
the errors, one tree under `ClientError` (`errors`).
"""

from taskstream.api.models import SubmittedTask, TokenScope, WatchToken
from taskstream.client.aio import AsyncClient
from taskstream.client.errors import (
    ClientError,
    Conflict,
    FieldError,
    Forbidden,
    InvalidRequest,
    NotFound,
    Problem,
    RateLimited,
    TokenExpired,
    TransportError,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from taskstream.client.follow import Reconnect
from taskstream.client.items import Reset, Snapshot, StreamItem, WatchItem
from taskstream.client.sync import Client
from taskstream.events.models import Event, EventType, Task, TaskOutput, TaskState

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "Conflict",
    "Event",
    "EventType",
    "FieldError",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "Problem",
    "RateLimited",
    "Reconnect",
    "Reset",
    "Snapshot",
    "StreamItem",
    "SubmittedTask",
    "Task",
    "TaskOutput",
    "TaskState",
    "TokenExpired",
    "TokenScope",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "WatchItem",
    "WatchToken",
]
