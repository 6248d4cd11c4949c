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
from taskstream.api.fanout import Connection, Fanout, Frame, StreamClosed, joined, newest_id
from taskstream.events.ids import ZERO, EventId, format_event_id, parse_event_id
from taskstream.events.store import EventStore

PAGE = 500
log = logging.getLogger(__name__)


def reset_message(position: EventId, reason: str) -> bytes:
    event_id = format_event_id(position)
    data = json.dumps({"reason": reason, "last_event_id": event_id})
    return f"id: {event_id}\nevent: reset\ndata: {data}\n\n".encode()


async def resume_problem(store: EventStore, last_event_id: str) -> str | None:
    """Why the log cannot replay what follows `last_event_id`, or None if it can."""
    key = parse_event_id(last_event_id)
    if key is None:
        return f"malformed event id {last_event_id!r}"
    bounds = await store.bounds()
    if key != ZERO and await store.has_event(format_event_id(key)):
        return None
    older = key < bounds.first_id if bounds.first_id is not None else key <= bounds.last_id
    if bounds.trimmed and older:
        return f"events after {last_event_id} are no longer retained"
    if key == ZERO:
        return None
    return f"unknown event id {last_event_id!r}"


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
) -> AsyncGenerator[bytes, None]:
    """Every event `caller` may see. `connection`: where the fan-out may write live events itself
    once the client has caught up."""
    sub = fanout.subscribe(caller, connection=connection)
    try:
        sent = sub.start
        if last_event_id is not None:
            fanout.stats.resumes += 1
            problem = await resume_problem(store, last_event_id)
            if problem is not None:
                fanout.stats.resets += 1
                yield reset_message(sub.start, problem)
            else:
                sent = parse_event_id(last_event_id) or ZERO
                while sent < sub.start:
                    until = format_event_id(sub.start)
                    entries = await store.read_log(format_event_id(sent), until, PAGE)
                    if not entries:
                        break
                    mine = [e for e in entries if caller.may_see(e.owner)]
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
) -> AsyncGenerator[bytes, None]:
    """The task's history (after `last_event_id` if it is one of its events), then live, to its end.

    The task's own log keeps its whole history, so an id that is not one of its events simply
    replays from the start; a client keeps the highest `seq` it has seen to ignore repeats.
    """
    # The route checked that `caller` may see the task.
    sub = fanout.subscribe(caller, task_id, connection)
    try:
        if last_event_id:
            fanout.stats.resumes += 1
        resume = parse_event_id(last_event_id) if last_event_id else None
        known = resume is not None and await store.has_task_event(task_id, format_event_id(resume))
        sent = resume if known and resume is not None else ZERO
        while True:
            after = None if sent == ZERO else format_event_id(sent)
            entries = await store.read_task_log(task_id, after, "+", PAGE)
            if not entries:
                break
            frames = [Frame.of(entry) for entry in entries]
            yield joined(frames)
            sent = frames[-1].key
            if frames[-1].final:
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
