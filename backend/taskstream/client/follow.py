"""An event stream followed across disconnects and restarts, as a state machine with no I/O.

For each connection a transport asks `request()` and `timeouts()`, then tells the follower what
happened (`opened`, `receive(chunk)`, `ended`, `refused`, `lost`), yields what `receive` returns,
drops the connection when `dropping`, stops when `done`, and sleeps `delay()` before the next.
Both clients run this one machine; what it does on purpose:

1. Resume: every connection asks for what follows the last item yielded (`Last-Event-ID`), so
   a server restart, a lost connection or a proxy's timeout costs nothing but the reconnect.
2. Exactly once: a task's events come in `seq` order and one whose `seq` was seen is dropped
   (a stream resumed from an id that is not the task's replays it from the first); everyone's
   events are dropped at or below the last log id yielded.
3. Nothing missed: on a task's stream, a `reset` or a gap in `seq` drops the connection and
   opens the stream again for a `snapshot` (the task and its output as of its last event, made
   by the server in one read, so task and output agree) followed by the events after it. After
   a `reset` that snapshot is taken as it is, even at a `seq` already seen: the log went back
   (a Redis failover lost its newest writes) and its `seq`s are given again. On everyone's
   stream a `reset` is yielded: only the caller knows what to refetch.
4. Backoff: the first wait after a failure is the server's `retry:` hint (or `first_delay`),
   doubling with each failure in a row up to `max_delay`, each drawn between half and all of
   that (jitter: clients cut off together do not come back together). A 503 or 429 waits at
   least its `Retry-After`, within `max_delay`. Any connection that opens starts over.
5. Giving up: a stream failing for `give_up_after` seconds since its last connection opened
   raises its last error (`TransportError`, `Unavailable`, `RateLimited`). Other refusals
   (401, 403, 404, 422) are raised at once: waiting cannot mend them.
6. A deadline (`within`, for `wait`) bounds every connect, read and sleep; past it, `WaitTimeout`.
7. A task's stream that ends with nothing said has either been resumed at the task's final
   event (the server ends it at once) or been cut off while the task was quiet: `check()` asks
   for the task over REST to tell which, rather than reconnect forever to a finished task.
"""

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote

from taskstream.client import calls
from taskstream.client.calls import Call, Request, parse
from taskstream.client.errors import (
    ClientError,
    RateLimited,
    TransportError,
    Unavailable,
    WaitTimeout,
)
from taskstream.client.items import Reset, Snapshot
from taskstream.client.sse import Decoder, Message
from taskstream.events.ids import EventId, parse_event_id
from taskstream.events.models import Event, EventType, Task

ItemT = TypeVar("ItemT")

STREAM_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How an event stream comes back after it was lost (seconds)."""

    first_delay: float = 1.0  # the first wait, until the server hints one with `retry:`
    max_delay: float = 30.0  # the longest wait between two attempts
    idle_timeout: float = 60.0  # a stream silent this long (keep-alives included) is lost
    give_up_after: float | None = 300.0  # failing this long raises; None: never give up


RECONNECT = Reconnect()


class Follower(ABC, Generic[ItemT]):
    """What both kinds of stream share: connections, backoff, giving up and the deadline."""

    def __init__(
        self,
        policy: Reconnect,
        timeout: float,
        within: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.done = False
        self.dropping = False
        self._policy = policy
        self._timeout = timeout
        self._clock = clock
        self._within = within
        self._deadline = None if within is None else clock() + within
        self._decoder = Decoder()
        self._hint: float | None = None
        self._failures = 0
        self._failing_since: float | None = None
        self._delay = 0.0
        self._heard = False  # a message came on this connection

    @abstractmethod
    def _request(self) -> Request:
        """The stream's request, from where it stands."""

    @abstractmethod
    def _message(self, message: Message) -> ItemT | None:
        """What a message yields (None: nothing new), and where the stream then stands."""

    @abstractmethod
    def _describe(self) -> str:
        """The stream, in an error's words."""

    def request(self) -> Request:
        """The next connection's request."""
        self._check_deadline()
        self.dropping = False
        self._heard = False
        self._decoder = Decoder()
        return self._request()

    def timeouts(self) -> tuple[float, float]:
        """The next connection's connect and read timeouts."""
        connect, read = self._timeout, max(self._timeout, self._policy.idle_timeout)
        remaining = self._remaining()
        if remaining is not None:
            connect, read = min(connect, remaining), min(read, remaining)
        return max(connect, 0.001), max(read, 0.001)

    def delay(self) -> float:
        """How long to wait before the next connection (0 for the first)."""
        delay, self._delay = self._delay, 0.0
        remaining = self._remaining()
        return delay if remaining is None else max(0.0, min(delay, remaining))

    def opened(self) -> None:
        """The server accepted the connection (200)."""
        self._failures = 0
        self._failing_since = None

    def receive(self, chunk: bytes) -> list[ItemT]:
        """The items that `chunk` completes, each yielded once. Stops early when the stream is
        `done` or must be dropped (`dropping`)."""
        items: list[ItemT] = []
        for message in self._decoder.feed(chunk):
            self._heard = True
            item = self._message(message)
            if item is not None:
                items.append(item)
            if self.done or self.dropping:
                break
        if self._decoder.retry is not None:
            self._hint = self._decoder.retry / 1000
        if not self.done:
            self._check_deadline()
        return items

    def ended(self) -> None:
        """The server ended the stream before it was done (it restarted, or lost Redis)."""
        self._fail(None)

    def refused(self, error: ClientError) -> None:
        """The server answered an error instead of the stream: raises it unless waiting can
        help (503, 429)."""
        if not isinstance(error, Unavailable | RateLimited):
            raise error
        self._fail(error, at_least=error.retry_after)

    def check(self) -> Call[Task] | None:
        """A request to make before reconnecting, if any (7.)."""
        return None

    def checked(self, task: Task) -> None:
        """What `check()` answered."""

    def check_failed(self, error: ClientError) -> None:
        """`check()` failed: raises what waiting cannot mend (the task is gone, the credential
        refused); otherwise the stream reconnects as planned."""
        if not isinstance(error, TransportError | Unavailable | RateLimited):
            raise error

    def lost(self, error: Exception) -> None:
        """The network failed (refused, reset, silent for `idle_timeout`)."""
        self._check_deadline()
        lost = TransportError(f"{self._describe()}: {error!r}")
        lost.__cause__ = error
        self._fail(lost)

    def _fail(self, error: ClientError | None, at_least: float | None = None) -> None:
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        give_up = self._policy.give_up_after
        if error is not None and give_up is not None and now - self._failing_since >= give_up:
            raise error
        base = self._hint if self._hint is not None else self._policy.first_delay
        ceiling = min(self._policy.max_delay, base * 2.0**self._failures)
        self._failures += 1
        self._delay = ceiling * (0.5 + random.random() / 2)
        if at_least is not None:
            self._delay = max(self._delay, min(at_least, self._policy.max_delay))

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._clock()

    def _check_deadline(self) -> None:
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            raise WaitTimeout(f"{self._describe()}: not done within {self._within:g} s")


class TaskEvents(Follower[Event | Snapshot]):
    """One task's stream, from its first event (or after `last_event_id`) to its final one."""

    def __init__(
        self,
        task_id: str,
        last_event_id: str | None,
        snapshot: bool,
        policy: Reconnect,
        timeout: float,
        within: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policy, timeout, within, clock)
        self.task_id = task_id
        self.final: Task | None = None  # the finished task, when a snapshot showed it
        self._last_id = last_event_id
        self._snapshot = snapshot
        self._seq = 0
        # Whether the seq seen so far says where the stream stands: not after resuming from a
        # caller's id, whose seq is unknown until the first event after it.
        self._anchored = last_event_id is None
        self._check_due = False
        # Set by a `reset`: the next snapshot replaces what was seen, whatever its seq.
        self._rewound = False

    def _describe(self) -> str:
        return f"task {self.task_id}'s events"

    def _request(self) -> Request:
        params = {"snapshot": "1"} if self._snapshot else {}
        headers = dict(STREAM_HEADERS)
        if self._last_id:
            headers["Last-Event-ID"] = self._last_id
        path = f"/api/tasks/{quote(self.task_id, safe='')}/events"
        return Request("GET", path, params=params, headers=headers, resend=True)

    def ended(self) -> None:
        self._check_due = not self._heard
        super().ended()

    def check(self) -> Call[Task] | None:
        due, self._check_due = self._check_due, False
        return calls.get_task(self.task_id) if due else None

    def checked(self, task: Task) -> None:
        if task.state.finished and (task.seq <= self._seq or task.last_event_id == self._last_id):
            self.done, self.final = True, task

    def _message(self, message: Message) -> Event | Snapshot | None:
        if message.event == "reset":
            self._rewound = True
            self._resync()
            return None
        if message.event == "snapshot":
            return self._at_snapshot(parse(Snapshot, message.data))
        event = parse(Event, message.data)
        if event.seq <= self._seq:
            return None  # seen already
        if self._anchored and event.seq != self._seq + 1:
            self._resync()
            return None
        self._seq, self._anchored, self._last_id = event.seq, True, event.id
        self.done = event.type.final
        return event

    def _at_snapshot(self, snapshot: Snapshot) -> Snapshot | None:
        self._last_id = snapshot.id
        if snapshot.task.state.finished:
            self.done, self.final = True, snapshot.task
        if snapshot.task.seq <= self._seq and not self._rewound:
            return None  # nothing the caller has not seen
        self._seq, self._anchored, self._rewound = snapshot.task.seq, True, False
        return snapshot

    def _resync(self) -> None:
        self._last_id, self._snapshot, self.dropping = None, True, True


class AllEvents(Follower[Event | Reset]):
    """Everyone's stream (of the caller's tasks), filtered, resumed by log id, never ending."""

    def __init__(
        self,
        types: Iterable[EventType | str] | None,
        kind: str | None,
        tag: str | None,
        task: str | Iterable[str] | None,
        last_event_id: str | None,
        policy: Reconnect,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policy, timeout, None, clock)
        tasks = [task] if isinstance(task, str) else task
        wanted = {
            "types": None if types is None else ",".join(str(t) for t in types),
            "kind": kind,
            "tag": tag,
            "task": None if tasks is None else ",".join(tasks),
        }
        self._params = {name: value for name, value in wanted.items() if value is not None}
        self._last_id = last_event_id
        self._last_key: EventId | None = parse_event_id(last_event_id) if last_event_id else None

    def _describe(self) -> str:
        return "the event stream"

    def _request(self) -> Request:
        headers = dict(STREAM_HEADERS)
        if self._last_id:
            headers["Last-Event-ID"] = self._last_id
        return Request("GET", "/api/events", params=self._params, headers=headers, resend=True)

    def _message(self, message: Message) -> Event | Reset | None:
        if message.event == "reset":
            reset = parse(Reset, message.data)
            self._moved_to(reset.last_event_id)
            return reset
        event = parse(Event, message.data)
        key = parse_event_id(event.id)
        if key is not None and self._last_key is not None and key <= self._last_key:
            return None  # seen already
        self._moved_to(event.id)
        return event

    def _moved_to(self, event_id: str) -> None:
        self._last_id, self._last_key = event_id, parse_event_id(event_id)
