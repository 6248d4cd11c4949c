"""Log lines as text (LOG_FORMAT=text) or as one JSON object a line (LOG_FORMAT=json).

A JSON line holds `time`, `level`, `logger` and `message`, and where known `request_id` (the
API's, from `RequestId`), `task_id` and `kind` (the worker's lines while a task runs, and
Celery's own lines about a task), `worker` (its node name) and `exc_info`.

The API's lines, uvicorn's and its access log among them, go through uvicorn's `log_config`
(`configure_api`); the access log's watch tokens are masked before any formatter sees them
(`api/access_log.py`). The worker's: Celery is kept from replacing the root logger's handler
(`worker_hijack_root_logger=False`, in `broker.py`) that `configure_worker` installs when the
app is imported, and Celery's `after_setup_logger` and `after_setup_task_logger` signals hand
us the handlers it adds of its own (its task logger's, its pool's), which then write JSON too.
What Celery writes for a terminal, past any logging, is its banner, left out here
(`named_and_quiet`), and its notice when told to stop (`worker: Warm shutdown`), which it
writes to standard output: the JSON lines go to standard error.
"""

import json
import logging
import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from celery import current_task, signals
from celery.utils.log import get_multiprocessing_logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskstream.broker import TASK_NAME_PREFIX
from taskstream.settings import Settings

request_id: ContextVar[str | None] = ContextVar("taskstream_request_id", default=None)

_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TEXT = "%(levelname)s %(name)s: %(message)s"  # our own lines, as text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        entry.update(self.fields(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """uvicorn's access line, `client - "method path HTTP/version" status`, from its args."""
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            _client, method, path, _version, status = args
            return {"method": method, "path": path, "status": status}
        return {}


class WorkerJsonFormatter(JsonFormatter):
    node: str | None = None  # the worker's node name, once Celery has it (`configure_worker`)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The worker, and the task a line is about: Celery's own lines name theirs in `data`
        (its documented `extra` for handlers); any other, the task its process runs, if any."""
        fields: dict[str, Any] = {} if self.node is None else {"worker": self.node}
        data = getattr(record, "data", None)
        if isinstance(data, Mapping) and isinstance(data.get("id"), str):
            task_id, name = data["id"], str(data.get("name", ""))
        elif current_task and current_task.request.id is not None:
            task_id, name = str(current_task.request.id), str(current_task.name)
        else:
            return fields
        if name.startswith(TASK_NAME_PREFIX):
            fields.update(task_id=task_id, kind=name.removeprefix(TASK_NAME_PREFIX))
        return fields


def configure_api(settings: Settings) -> dict[str, Any]:
    """Sets up the API's logging, and returns uvicorn's `log_config` (for text, uvicorn's own)."""
    if settings.log_format == "text":
        logging.basicConfig(level=settings.log_level, format=TEXT)
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    logging.captureWarnings(True)  # a warning is a line too
    level = settings.log_level.upper()
    uvicorn_loggers = ("uvicorn", "uvicorn.error", "uvicorn.access")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["json"], "level": level},
        "loggers": {name: {"level": level} for name in uvicorn_loggers},  # to the root's
    }


def configure_worker(settings: Settings) -> None:
    """Sets up the worker's logging, before Celery's (see the module's docstring)."""
    if settings.log_format == "text":
        logging.basicConfig(level=settings.log_level)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(WorkerJsonFormatter())
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    logging.captureWarnings(True)

    @signals.celeryd_init.connect(weak=False)
    def named_and_quiet(sender: str, instance: Any, **_: Any) -> None:
        WorkerJsonFormatter.node = sender  # before the pool's processes fork: they inherit it
        instance.quiet = True  # no banner: it is for a terminal

    @signals.after_setup_logger.connect(weak=False)
    def root_handlers(logger: logging.Logger, **_: Any) -> None:
        _as_json(logger)
        pool = get_multiprocessing_logger()
        if pool is not None:
            _as_json(pool)

    @signals.after_setup_task_logger.connect(weak=False)
    def task_handlers(logger: logging.Logger, **_: Any) -> None:
        _as_json(logger)


def _as_json(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        if not isinstance(handler.formatter, WorkerJsonFormatter):
            handler.setFormatter(WorkerJsonFormatter())


class RequestId:
    """Each request's id: its `X-Request-ID` if that is a sane token, else a new one; on every
    log line the request's handling writes, and in its response's `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        text = given.decode("latin-1")
        current = text if _SANE.fullmatch(text) else uuid.uuid4().hex
        header = (b"x-request-id", current.encode())

        async def echoed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"),
                    header,
                ]
            await send(message)

        token = request_id.set(current)
        try:
            await self.app(scope, receive, echoed)
        finally:
            request_id.reset(token)
