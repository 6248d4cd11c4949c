"""The synchronous client: the shared calls and followers, sent with `httpx.Client`."""

import contextlib
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from taskstream.api.models import SubmittedTask, WatchToken
from taskstream.client import calls, wire
from taskstream.client.calls import DEFAULT_TIMEOUT, Call, Config, Paging
from taskstream.client.errors import ClientError
from taskstream.client.follow import RECONNECT, AllEvents, Follower, Reconnect, TaskEvents
from taskstream.client.items import Reset, Snapshot
from taskstream.events.models import Event, EventType, Task, TaskOutput, TaskState

M = TypeVar("M", bound=BaseModel)
ItemT = TypeVar("ItemT")


class Client:
    """A client of the taskstream API, over `httpx.Client`; thread-safe.

    `api_key` or `token` (a watch token) is sent as `Authorization: Bearer`. `timeout` bounds
    each request (and each stream's connect); `retries` is how often a request is sent again
    after the network failed, when that cannot repeat it; `reconnect` is how event streams come
    back. Pass `http` to use your own `httpx.Client` (its transport, proxies, certificates); it
    is then yours to close.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        reconnect: Reconnect = RECONNECT,
        http: httpx.Client | None = None,
    ) -> None:
        self._config = Config.of(base_url, api_key, token, timeout, retries)
        self._reconnect = reconnect
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections (of the `httpx.Client` it made, not of one passed in)."""
        if self._owns_http:
            self._http.close()

    def submit(
        self,
        kind: str,
        params: Mapping[str, Any] | BaseModel | None = None,
        *,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        watch_token: bool = False,
    ) -> SubmittedTask:
        """Queues a task of `kind` with `params` (a mapping or the kind's params model; None:
        its defaults) and `tags`. With `idempotency_key`, repeating the call returns the same
        task (and a failed send is retried). With `watch_token`, the answer's `watch_token`
        reads the task."""
        return self._send(calls.submit(kind, params, tags, idempotency_key, watch_token))

    def get(self, task_id: str) -> Task:
        """The task as it stands now."""
        return self._send(calls.get_task(task_id))

    def list(
        self,
        *,
        state: TaskState | str | None = None,
        kind: str | None = None,
        tag: str | None = None,
        page_size: int = 50,
    ) -> Generator[Task, None, None]:
        """Every task (the caller's, when the API requires keys) in `state`, of `kind`, with
        `tag`, newest first, fetched a page of `page_size` at a time as you iterate."""
        paging = Paging(state, kind, tag, page_size)
        while (call := paging.next_call()) is not None:
            yield from paging.take(self._send(call))

    def cancel(self, task_id: str) -> Task:
        """Cancels the task: a queued one ends at once, a running one is asked to stop
        (`cancel_requested`). A finished one raises `Conflict`."""
        return self._send(calls.cancel(task_id))

    def output(self, task_id: str) -> TaskOutput:
        """The task's output so far; `watch(task_id, last_event_id=output.last_event_id)`
        yields exactly the events after it."""
        return self._send(calls.get_output(task_id))

    def create_token(self, task_id: str, ttl_seconds: int | None = None) -> WatchToken:
        """A watch token that reads this task for `ttl_seconds` (None: the API's default)."""
        return self._send(calls.create_task_token(task_id, ttl_seconds))

    def create_tag_token(self, tag: str, ttl_seconds: int | None = None) -> WatchToken:
        """A watch token that reads every task of the caller's with `tag`."""
        return self._send(calls.create_tag_token(tag, ttl_seconds))

    def wait(self, task_id: str, timeout: float) -> Task:
        """The task once it has finished, following its event stream (no polling) across
        disconnects. Raises `WaitTimeout` if it has not finished within `timeout` seconds."""
        follower = TaskEvents(
            task_id, None, True, self._reconnect, self._config.timeout, within=timeout
        )
        for _item in self._follow(follower):
            pass
        return follower.final or self.get(task_id)

    def watch(
        self, task_id: str, *, last_event_id: str | None = None, snapshot: bool = False
    ) -> Generator[Event | Snapshot, None, None]:
        """The task's events from its first (or after `last_event_id`), each once, in `seq`
        order, until its final one, across disconnects and API restarts. With `snapshot`,
        first a `Snapshot` (the task and its output now) and the events after it. A `Snapshot`
        also comes wherever events might have been missed: go on from its state."""
        follower = TaskEvents(
            task_id, last_event_id, snapshot, self._reconnect, self._config.timeout
        )
        return self._follow(follower)

    def watch_events(
        self,
        *,
        types: Iterable[EventType | str] | None = None,
        kind: str | None = None,
        tag: str | None = None,
        task: str | Iterable[str] | None = None,
        last_event_id: str | None = None,
    ) -> Generator[Event | Reset, None, None]:
        """Every event (the caller's tasks', when the API requires keys) of `types` (default:
        all but `output` and `log`), `kind`, `tag` and `task` (an id or several), after
        `last_event_id` if given, live and without end, each once across disconnects. A
        `Reset` says events may have been missed (the id could not be resumed from): refetch
        over REST, and go on."""
        follower = AllEvents(
            types, kind, tag, task, last_event_id, self._reconnect, self._config.timeout
        )
        return self._follow(follower)

    def _send(self, call: Call[M]) -> M:
        request = call.request
        built = wire.build(self._http, self._config, request, self._config.timeout)
        attempt = 0
        while True:
            try:
                response = self._http.send(built)
            except httpx.TransportError as exc:
                delay = self._config.resend_delay(request, attempt, wire.may_have_arrived(exc), exc)
                time.sleep(delay)
                attempt += 1
                continue
            return call.read(wire.reply(response, response.content))

    def _follow(self, follower: Follower[ItemT]) -> Generator[ItemT, None, None]:
        while True:
            time.sleep(follower.delay())
            request = follower.request()
            timeout = wire.stream_timeout(*follower.timeouts())
            built = wire.build(self._http, self._config, request, timeout)
            try:
                with contextlib.closing(self._http.send(built, stream=True)) as response:
                    if response.status_code != 200:
                        follower.refused(wire.reply(response, response.read()).error())
                        continue
                    follower.opened()
                    for chunk in response.iter_bytes():
                        yield from follower.receive(chunk)
                        if follower.done:
                            return
                        if follower.dropping:
                            break
                    else:
                        follower.ended()
            except httpx.TransportError as exc:
                follower.lost(exc)
            if (check := follower.check()) is not None:
                try:
                    follower.checked(self._send(check))
                except ClientError as exc:
                    follower.check_failed(exc)
                if follower.done:
                    return
