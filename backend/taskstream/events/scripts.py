"""The Lua scripts that keep the event log and the task state in step.

Appending an event and updating the task's state happen in one script, so a reader never sees an
event whose state is not stored yet, nor a state without its event. The script also refuses an
event that the task's current state does not allow (nothing follows a final event, say): that is
how a cancelled task's late progress, or a redelivered finished task, is kept out of the log.
"""

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from taskstream.errors import TransitionRefused
from taskstream.events.keys import Keys
from taskstream.events.models import (
    EventDraft,
    EventType,
    TaskState,
    started_head,
    succeeded_event,
    utcnow,
)
from taskstream.events.state import state_fields, succeeded_fields
from taskstream.settings import Settings

# Shared by the scripts below. KEYS: global log, task hash, task log.
# Appends one event (`data`: its JSON without id and seq) and applies `fields`, a list of
# {name, value}: a name starting with `?` is set only if unset, one starting with `+` is
# incremented (neither names `seq` or `last_event_id`, which this sets). `state`, `owner` and
# `seq` are the task's stored values before the event (false for a new task), which the caller
# has read with whatever else it needs in one HMGET; the plain fields, the sequence number and
# the event's id are written in one HSET.
LIBRARY = """
local function append_event(state, owner, seq, task_id, maxlen, task_maxlen, etype, data, ttl,
                            prefix, kind, fields)
  local set, newstate, given_owner = {}, state, nil
  for _, field in ipairs(fields) do
    local name, value = field[1], field[2]
    local mark = string.sub(name, 1, 1)
    if mark == '?' then
      redis.call('HSETNX', KEYS[2], string.sub(name, 2), value)
    elseif mark == '+' then
      redis.call('HINCRBY', KEYS[2], string.sub(name, 2), value)
    else
      set[#set + 1] = name
      set[#set + 1] = value
      if name == 'state' then newstate = value end
      if name == 'owner' then given_owner = value end
    end
  end
  owner = owner or given_owner or ''
  seq = tonumber(seq or '0') + 1
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*',
    'task', task_id, 'type', etype, 'seq', seq, 'owner', owner, 'data', data)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', task_maxlen, id,
    'task', task_id, 'type', etype, 'seq', seq, 'owner', owner, 'data', data)
  set[#set + 1] = 'seq'
  set[#set + 1] = seq
  set[#set + 1] = 'last_event_id'
  set[#set + 1] = id
  redis.call('HSET', KEYS[2], unpack(set))
  if not state then
    redis.call('ZADD', prefix .. 'tasks', 0, task_id)
    redis.call('ZADD', prefix .. 'tasks:kind:' .. kind, 0, task_id)
    if owner ~= '' then redis.call('ZADD', prefix .. 'tasks:owner:' .. owner, 0, task_id) end
  end
  if state ~= newstate then
    if state then redis.call('ZREM', prefix .. 'tasks:state:' .. state, task_id) end
    redis.call('ZADD', prefix .. 'tasks:state:' .. newstate, 0, task_id)
  end
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
  return id, seq
end
"""

# ARGV: task id, log maxlen, task log maxlen, event type, event JSON, allowed prior states
#       (comma list; "" = the task must not exist yet), seconds to keep the task after this,
#       key prefix, kind, a token naming this append, a queue message to push on KEYS[4] along
#       with the event ("" for none), the number K of expected field values, K field/value pairs
#       that must match the stored ones, then field/value pairs to set.
# Returns {1, event id, seq, cancel requested} or {0, current state or ""}. An append whose
# token is the task's last one already happened (its reply was lost): its result comes back.
APPEND = (
    LIBRARY
    + """
local h = redis.call('HMGET', KEYS[2], 'state', 'token', 'owner', 'seq', 'last_event_id',
  'cancel_requested')
local state = h[1]
if state and h[2] == ARGV[10] then return {1, h[5], h[4], h[6] or '0'} end
local allowed = ARGV[6]
if allowed == '' then
  if state then return {0, state} end
elseif not state or not string.find(',' .. allowed .. ',', ',' .. state .. ',', 1, true) then
  return {0, state or ''}
end
local expected = tonumber(ARGV[12])
for i = 13, 12 + 2 * expected, 2 do
  if (redis.call('HGET', KEYS[2], ARGV[i]) or '') ~= ARGV[i + 1] then return {0, state} end
end
local fields = {{'token', ARGV[10]}}
for i = 13 + 2 * expected, #ARGV, 2 do fields[#fields + 1] = {ARGV[i], ARGV[i + 1]} end
local id, seq = append_event(state, h[3], h[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  ARGV[7], ARGV[8], ARGV[9], fields)
if ARGV[11] ~= '' then redis.call('LPUSH', KEYS[4], ARGV[11]) end
return {1, id, seq, redis.call('HGET', KEYS[2], 'cancel_requested') or '0'}
"""
)

# Starts an attempt in one round trip: checks that the message is the task's current dispatch
# and that the task waits to run, counts the attempt into the `started` event, and returns what
# the worker needs. ARGV: task id, log maxlen, task log maxlen, ttl, key prefix, dispatch number,
# the `started` event's JSON without its closing brace and attempt, worker name, time, and a
# token naming this start (a start repeated because its reply was lost returns the same result).
# Returns {1, event id, seq, attempt, params JSON, cancel requested}; {0, state} when the task
# is unknown or finished; {2, worker, attempts} when an earlier attempt is still marked running
# (its worker was lost: record that first), with how often that happened before; {3, dispatch}
# when a newer dispatch superseded this message.
BEGIN = (
    LIBRARY
    + """
local h = redis.call('HMGET', KEYS[2], 'state', 'attempts', 'dispatch', 'worker', 'params',
  'cancel_requested', 'kind', 'lost', 'token', 'last_event_id', 'seq', 'owner')
local state = h[1]
if not state then return {0, ''} end
if state == 'running' and h[9] == ARGV[10] then
  return {1, h[10], h[11], tonumber(h[2]), h[5] or '{}', h[6] or '0'}
end
if (h[3] or '1') ~= ARGV[6] then return {3, h[3] or '1'} end
if state == 'running' then return {2, h[4] or '', h[2] or '0', h[8] or '0'} end
if state ~= 'queued' and state ~= 'retrying' then return {0, state} end
local attempt = tonumber(h[2] or '0') + 1
local data = ARGV[7] .. ',"attempt":' .. attempt .. '}'
local id, seq = append_event(state, h[12], h[11], ARGV[1], ARGV[2], ARGV[3], 'started', data,
  ARGV[4], ARGV[5], h[7], {{'token', ARGV[10]}, {'state', 'running'},
  {'attempts', tostring(attempt)}, {'worker', ARGV[8]}, {'?started_at', ARGV[9]}, {'progress', ''},
  {'error', ''}, {'retry_at', ''}})
return {1, id, seq, attempt, h[5] or '{}', h[6] or '0'}
"""
)

# KEYS: task hash. Asks a running task to stop; returns its state ("" if unknown).
REQUEST_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' then redis.call('HSET', KEYS[1], 'cancel_requested', '1') end
return state or ''
"""

ALLOWED_BEFORE: dict[EventType, frozenset[TaskState]] = {
    EventType.queued: frozenset(),
    EventType.started: frozenset({TaskState.queued, TaskState.retrying}),  # see BEGIN
    EventType.progress: frozenset({TaskState.running}),
    EventType.retrying: frozenset({TaskState.running}),
    EventType.succeeded: frozenset({TaskState.running}),
    EventType.failed: frozenset({TaskState.queued, TaskState.running, TaskState.retrying}),
    EventType.cancelled: frozenset({TaskState.queued, TaskState.running, TaskState.retrying}),
}
_ALLOWED_ARG = {type: ",".join(sorted(states)) for type, states in ALLOWED_BEFORE.items()}


def append_args(
    keys: Keys,
    settings: Settings,
    draft: EventDraft,
    allowed: Iterable[TaskState] | None = None,
    expect: Mapping[str, str] | None = None,
    changes: Mapping[str, str] | None = None,
    enqueue: tuple[str, str] | None = None,
) -> tuple[list[str], list[str | int]]:
    """`expect`: stored values the append requires; `changes`: more fields to set (`+n`, `?n`);
    `enqueue`: a queue's list and a message to push onto it in the same step."""
    states = _ALLOWED_ARG[draft.type] if allowed is None else ",".join(sorted(set(allowed)))
    fields = {**state_fields(draft), **(changes or {})}
    data = draft.dumps()
    return _append_args(
        keys, settings, draft.task_id, draft.kind, draft.type, data, states, fields, expect, enqueue
    )


def succeeded_args(
    keys: Keys, settings: Settings, task_id: str, kind: str, attempt: int, result: JsonValue
) -> tuple[list[str], list[str | int]]:
    """`append_args` of a `succeeded` event after a running attempt, without a draft to build:
    what every task that succeeds writes. `result` is a JSON value already validated as one."""
    at = utcnow()
    data = succeeded_event(task_id, kind, attempt, result, at)
    fields = succeeded_fields(result, at)
    return _append_args(
        keys, settings, task_id, kind, EventType.succeeded, data, "running", fields, None, None
    )


def _append_args(
    keys: Keys,
    settings: Settings,
    task_id: str,
    kind: str,
    type: EventType,
    data: str,
    states: str,
    fields: Mapping[str, str],
    expect: Mapping[str, str] | None,
    enqueue: tuple[str, str] | None,
) -> tuple[list[str], list[str | int]]:
    expect = expect or {}
    args: list[str | int] = [
        task_id,
        settings.events_maxlen,
        settings.task_events_maxlen,
        type.value,
        data,
        states,
        settings.task_ttl_seconds,
        keys.prefix,
        kind,
        secrets.token_hex(8),
        enqueue[1] if enqueue else "",
        len(expect),
    ]
    for name, value in expect.items():
        args += [name, value]
    for name, value in fields.items():
        args += [name, value]
    queue = [enqueue[0]] if enqueue else []
    return [keys.events, keys.task(task_id), keys.task_events(task_id), *queue], args


def parse_append_reply(task_id: str, type: EventType, reply: list[str | int]) -> "Appended":
    if int(reply[0]) != 1:
        state = str(reply[1]) or None
        raise TransitionRefused(task_id, state, type.value)
    return Appended(id=str(reply[1]), seq=int(reply[2]), cancel_requested=str(reply[3]) == "1")


@dataclass(frozen=True)
class Appended:
    id: str
    seq: int
    cancel_requested: bool


def begin_args(
    keys: Keys, settings: Settings, task_id: str, kind: str, dispatch: int, worker: str
) -> tuple[list[str], list[str | int]]:
    at = utcnow()
    args: list[str | int] = [
        task_id,
        settings.events_maxlen,
        settings.task_events_maxlen,
        settings.task_ttl_seconds,
        keys.prefix,
        str(dispatch),
        started_head(task_id, kind, worker, at),  # the script adds the attempt, closes it
        worker,
        at.isoformat(),
        secrets.token_hex(8),
    ]
    return [keys.events, keys.task(task_id), keys.task_events(task_id)], args


@dataclass(frozen=True)
class Begun:
    event_id: str
    seq: int
    attempt: int
    params: dict[str, Any]
    cancel_requested: bool


@dataclass(frozen=True)
class Interrupted:
    """An earlier attempt is still marked running: the worker that ran it was lost."""

    worker: str
    attempts: int
    lost: int


@dataclass(frozen=True)
class NotRunnable:
    reason: str


def parse_begin_reply(reply: list[Any]) -> Begun | Interrupted | NotRunnable:
    code = int(reply[0])
    if code == 1:
        return Begun(
            event_id=str(reply[1]),
            seq=int(reply[2]),
            attempt=int(reply[3]),
            params=json.loads(reply[4]),
            cancel_requested=str(reply[5]) == "1",
        )
    if code == 2:
        return Interrupted(worker=str(reply[1]), attempts=int(reply[2]), lost=int(reply[3]))
    if code == 3:
        return NotRunnable(f"superseded by dispatch {reply[1]}")
    return NotRunnable(f"task is {reply[1] or 'unknown'}")
