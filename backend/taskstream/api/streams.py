"""The SSE streams' content: catch up from the log, then follow the fan-out, with no gap and no
duplicate. (How a stream lives as a response, and its `retry:` and keep-alives, is `sse`'s.)

A client subscribes to the fan-out first and only then reads the log, up to the position the
fan-out had when it subscribed; everything after that position reaches its buffer live. Each event
goes out only if its id is above the last one sent, so the overlap between what the log returns
and what the fan-out delivers is never sent twice; the fan-out writes live frames to the
connection itself only once none of them can be one sent (`Subscriber.next_batch`).
"""

import json
import logging
from collections.abc import AsyncGenerator

from redis.exceptions import RedisError

from taskstream.api.caller import Caller
from taskstream.api.fanout import (
    Connection,
    Fanout,
    Frame,
    StreamClosed,
    joined,
    newest_id,
    reset_frame,
    sse_message,
)
from taskstream.api.filters import EVERYTHING, EventFilter
from taskstream.events.ids import ZERO, EventId, format_event_id, parse_event_id
from taskstream.events.store import EventStore

PAGE = 500
log = logging.getLogger(__name__)


async def resume_problem(store: EventStore, last_event_id: str, output: bool = False) -> str | None:
    """Why the log (with `output`, the two global logs) cannot replay what follows
    `last_event_id`, or None if it can."""
    key = parse_event_id(last_event_id)
    if key is None:
        return f"malformed event id {last_event_id!r}"
    # An id of either log is a position in both (the task list answers the newest of either);
    # what the stream reads is complete only if none of the logs it reads was trimmed past it.
    known = key == ZERO
    for output_log in (False, True):
        known = known or await store.has_event(format_event_id(key), output=output_log)
    for output_log in (False, True) if output else (False,):
        bounds = await store.bounds(output=output_log)
        older = key < bounds.first_id if bounds.first_id is not None else key <= bounds.last_id
        if bounds.trimmed and older:
            return f"events after {last_event_id} are no longer retained"
    return None if known else f"unknown event id {last_event_id!r}"


def _fresh(frames: list[Frame], sent: EventId) -> tuple[list[Frame], EventId]:
    """The frames not sent yet (keep-alives always are), and the newest event id sent then."""
    fresh = [frame for frame in frames if frame.key > sent or frame.key == ZERO]
    return fresh, newest_id(fresh, sent)


async def all_events(
    store: EventStore,
    fanout: Fanout,
    caller: Caller,
    last_event_id: str | None,
    connection: Connection | None = None,
    filter: EventFilter = EVERYTHING,
) -> AsyncGenerator[bytes, None]:
    """Every event `caller` may see that `filter` admits. `connection`: where the fan-out may
    write live events itself once the client has caught up."""
    sub = fanout.subscribe(caller, connection=connection, filter=filter)
    try:
        sent = sub.start
        if last_event_id is not None:
            fanout.stats.resumes += 1
            problem = await resume_problem(store, last_event_id, filter.output)
            if problem is not None:
                fanout.stats.resets += 1
                yield reset_frame(sub.start, problem).data
            else:
                sent = parse_event_id(last_event_id) or ZERO
                while sent < sub.start:
                    until = format_event_id(sub.start)
                    after = format_event_id(sent)
                    entries = await store.read_log(after, until, PAGE, output=filter.output)
                    if not entries:
                        break
                    mine = [
                        e
                        for e in entries
                        if caller.may_see(e.owner)
                        and filter.admits(e.type, e.kind, e.tags, e.task_id)
                    ]
                    if mine:
                        yield joined(Frame.of(entry) for entry in mine)
                    sent = entries[-1].key
        while True:
            fresh, sent = _fresh(await sub.next_batch(sent), sent)
            if fresh:
                yield joined(fresh)
    except StreamClosed:
        return
    except (RedisError, OSError) as exc:
        # Headers are sent: end the stream, and the client resumes by its last id.
        log.warning("stream ended: Redis failed during catch-up: %s", exc)
        return
    finally:
        fanout.unsubscribe(sub)


async def task_events(
    store: EventStore,
    fanout: Fanout,
    caller: Caller,
    task_id: str,
    last_event_id: str | None,
    connection: Connection | None = None,
    snapshot: bool = False,
) -> AsyncGenerator[bytes, None]:
    """The task's history (after `last_event_id` if it is one of its events), then live, to its end.

    An id that is not one of the task's events replays from the start; a client keeps the highest
    `seq` it has seen to ignore repeats. With `snapshot`, or where the task's own log no longer
    holds its first events, a `snapshot` (the task and its output, as of an event) comes first
    and the events after it follow: a replay never starts past `seq` 1 with nothing said.
    """
    # The route checked that `caller` may see the task.
    sub = fanout.subscribe(caller, task_id, connection)
    try:
        if last_event_id:
            fanout.stats.resumes += 1
        resume = parse_event_id(last_event_id) if last_event_id else None
        known = resume is not None and await store.has_task_event(task_id, format_event_id(resume))
        sent = resume if known and resume is not None else ZERO
        if snapshot and not known:
            message, sent, ended = await _snapshot(store, task_id)
            yield message
            if ended:
                return
        while True:
            after = None if sent == ZERO else format_event_id(sent)
            entries = await store.read_task_log(task_id, after, "+", PAGE)
            if not entries:
                break
            if sent == ZERO and entries[0].seq > 1:  # its first events were trimmed
                message, sent, ended = await _snapshot(store, task_id)
                yield message
                if ended:
                    return
                continue
            frames = [Frame.of(entry) for entry in entries]
            yield joined(frames)
            sent = frames[-1].key
            if frames[-1].final:
                return
        if known and sent == resume:  # resumed at its newest event: it may be the final one
            task = await store.get_task(task_id)
            if task is None or (
                task.state.finished and task.last_event_id == format_event_id(sent)
            ):
                return
        while True:
            fresh, sent = _fresh(await sub.next_batch(sent), sent)
            final = next((i for i, frame in enumerate(fresh) if frame.final), None)
            if final is not None:
                yield joined(fresh[: final + 1])
                return
            if fresh:
                yield joined(fresh)
    except StreamClosed:
        return
    except (RedisError, OSError) as exc:
        # Headers are sent: end the stream, and the client resumes by its last id.
        log.warning("stream ended: Redis failed during catch-up: %s", exc)
        return
    finally:
        fanout.unsubscribe(sub)


async def _snapshot(store: EventStore, task_id: str) -> tuple[bytes, EventId, bool]:
    """A `snapshot` message of the task (its id: the task's last event), that id, and whether
    the task has ended."""
    read = await store.read_output(task_id)
    if read is None:
        raise StreamClosed("the task expired")
    task, output = read
    data = json.dumps(
        {
            "task": task.model_dump(mode="json"),
            "output": output.model_dump(mode="json", exclude_none=True),  # as `/output` sends it
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    message = sse_message(task.last_event_id, "snapshot", data)
    return message, parse_event_id(task.last_event_id) or ZERO, task.state.finished
