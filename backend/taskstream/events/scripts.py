"""The Lua scripts that keep the event log and the task state in step.

Appending an event and updating the task's state happen in one script, so a reader never sees an
event whose state is not stored yet, nor a state without its event. The script also refuses an
event that the task's current state does not allow (nothing follows a final event, say): that is
how a cancelled task's late progress, or a redelivered finished task, is kept out of the log.

What an event does (the states it may follow, the fields it writes) comes from the table in
`types.py`, as data: the scripts apply it without knowing any event type. Each script's keys and
arguments are one `ScriptCall` dataclass, which the Lua reads into locals of the same names.
"""

import functools
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from taskstream.errors import TransitionRefused
from taskstream.events.contract import Pairs, ScriptCall, key
from taskstream.events.keys import Keys
from taskstream.events.models import EventDraft, EventType, TaskState
from taskstream.events.state import hash_writes
from taskstream.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class LogCall(ScriptCall):
    """What both scripts that append an event are told."""

    log: str = key()  # the global log the event goes to (the event log or the output log)
    other_log: str = key()  # the other global log
    clock: str = key()  # the newest id given to either global log (`Keys.clock`)
    task: str = key()  # the task's hash
    task_log: str = key()  # the task's own log
    task_id: str
    kind: str
    event_type: str
    body: str  # the event's JSON as its writer encoded it (`EventDraft.body`)
    follows: str  # the states it may follow, comma-separated ("": the task must be new)
    writes: Pairs  # the task's fields it writes (`state.hash_writes`)
    token: str  # names this call: a repeat whose first reply was lost returns that reply
    maxlen: int  # of `log`
    task_maxlen: int
    ttl: int  # seconds to keep the task after this event
    list_max: int  # entries a list part keeps (a task's log lines)
    prefix: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendCall(LogCall):
    queue: str | None = key(optional=True)  # a queue to push `message` onto in the same step
    owner: str  # who submitted the task, kept when it is new
    expect: Pairs  # stored values the append requires
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BeginCall(LogCall):
    dispatch: str  # the dispatch the worker's message belongs to


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelCall(ScriptCall):
    task: str = key()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadOutputCall(ScriptCall):
    task: str = key()


# The attempt an event belongs to is the task's `attempts` after it (0 until one starts): the
# log assigns it, with `seq`, since only the log knows it in the same step as the event.
LIBRARY = """
local function id_parts(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end

local function later(a, b)
  local a_ms, a_seq = id_parts(a)
  local b_ms, b_seq = id_parts(b)
  return a_ms > b_ms or (a_ms == b_ms and a_seq > b_seq)
end

-- The next id of the two global logs' one sequence: what Redis would give, above the newest of
-- either log, so the logs merged by id are the order events happened in.
local function next_id()
  local last = redis.call('GET', clock)
  if not last then  -- no event written yet, or written before the output log existed
    last = '0-0'
    for _, name in ipairs({log, other_log}) do
      local top = redis.call('XREVRANGE', name, '+', '-', 'COUNT', 1)[1]
      if top and later(top[1], last) then last = top[1] end
    end
  end
  local ms, seq = id_parts(last)
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local id
  if now_ms > ms then id = string.format('%.0f-0', now_ms)
  else id = string.format('%.0f-%.0f', ms, seq + 1) end
  redis.call('SET', clock, id)
  return id
end

local function may_follow(state)
  if follows == '' then return not state end
  return state and string.find(',' .. follows .. ',', ',' .. state .. ',', 1, true) ~= nil
end

-- Applies `writes` and appends the event to both logs. `state`, `owner`, `seq`, `attempts` and
-- `tags` are the task's stored values before it (false for a new task), read with whatever else
-- the caller needs in one HMGET.
local function append_event(state, owner, seq, attempts, tags)
  local set, newstate = {'token', token}, state
  attempts = tonumber(attempts or '0')
  for _, write in ipairs(writes) do
    local name, value = write[1], write[2]
    local mark = string.sub(name, 1, 1)
    if mark == '+' then
      name = string.sub(name, 2)
      local total = redis.call('HINCRBY', task, name, value)
      if name == 'attempts' then attempts = total end
    elseif mark == '>' then  -- appended to a part's key of its own: `output:<stream>`
      local part = task .. ':' .. string.sub(name, 2)
      redis.call('APPEND', part, value)
      redis.call('EXPIRE', part, ttl)
    elseif mark == '<' then  -- pushed onto a list part of its own, which keeps its last ones
      local part = task .. ':' .. string.sub(name, 2)
      redis.call('RPUSH', part, value)
      redis.call('LTRIM', part, -list_max, -1)
      redis.call('EXPIRE', part, ttl)
    elseif mark == '*' then  -- a map cleared: its `<map>.<name>` fields and their keys
      local map = string.sub(name, 2)
      local dotted = map .. '.'
      for _, field in ipairs(redis.call('HKEYS', task)) do
        if string.sub(field, 1, #dotted) == dotted then
          redis.call('HDEL', task, field)
          redis.call('DEL', task .. ':' .. map .. ':' .. string.sub(field, #dotted + 1))
        end
      end
    else
      if mark == '?' then
        name = string.sub(name, 2)
        if (redis.call('HGET', task, name) or '') ~= '' then name = nil end
      end
      if name then
        set[#set + 1] = name
        set[#set + 1] = value
        if name == 'state' then newstate = value end
        if name == 'attempts' then attempts = tonumber(value) end
        if name == 'tags' then tags = value end
      end
    end
  end
  seq = tonumber(seq or '0') + 1
  local entry = {'task', task_id, 'kind', kind, 'type', event_type, 'seq', seq,
    'attempt', attempts, 'owner', owner, 'data', body}
  if tags and tags ~= '' and tags ~= '[]' then
    entry[#entry + 1] = 'tags'
    entry[#entry + 1] = tags
  end
  local id = next_id()
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, id, unpack(entry))
  redis.call('XADD', task_log, 'MAXLEN', '~', task_maxlen, id, unpack(entry))
  set[#set + 1] = 'seq'
  set[#set + 1] = seq
  set[#set + 1] = 'last_event_id'
  set[#set + 1] = id
  if not state then  -- the log's own bookkeeping of a new task: who owns it, its first dispatch
    set[#set + 1] = 'owner'
    set[#set + 1] = owner
    set[#set + 1] = 'dispatch'
    set[#set + 1] = 1
    redis.call('ZADD', prefix .. 'tasks', 0, task_id)
    redis.call('ZADD', prefix .. 'tasks:kind:' .. kind, 0, task_id)
    if owner ~= '' then redis.call('ZADD', prefix .. 'tasks:owner:' .. owner, 0, task_id) end
    if tags and tags ~= '' then
      for _, tag in ipairs(cjson.decode(tags)) do
        redis.call('ZADD', prefix .. 'tasks:tag:' .. tag, 0, task_id)
      end
    end
  end
  redis.call('HSET', task, unpack(set))
  if state ~= newstate then
    if state then redis.call('ZREM', prefix .. 'tasks:state:' .. state, task_id) end
    redis.call('ZADD', prefix .. 'tasks:state:' .. newstate, 0, task_id)
  end
  redis.call('EXPIRE', task, ttl)
  redis.call('EXPIRE', task_log, ttl)
  return id, seq, attempts
end
"""

# Returns {1, event id, seq, cancel requested} or {0, current state or ""}.
APPEND = """
local h = redis.call('HMGET', task, 'state', 'token', 'owner', 'seq', 'last_event_id',
  'cancel_requested', 'attempts', 'tags')
local state = h[1]
if state and h[2] == token then return {1, h[5], h[4], h[6] or '0'} end
if not may_follow(state) then return {0, state or ''} end
for _, pair in ipairs(expect) do
  if (redis.call('HGET', task, pair[1]) or '') ~= pair[2] then return {0, state} end
end
local id, seq = append_event(state, state and (h[3] or '') or owner, h[4], h[7], h[8])
if queue then redis.call('LPUSH', queue, message) end
return {1, id, seq, redis.call('HGET', task, 'cancel_requested') or '0'}
"""

# Starts an attempt in one round trip: checks that the message is the task's current dispatch
# and that the task waits to run, and returns what the worker needs.
# Returns {1, event id, seq, attempt, params JSON, cancel requested}; {0, state} when the task
# is unknown or finished; {2, worker, attempts, lost} when an earlier attempt is still marked
# running (its worker was lost: record that first); {3, dispatch} when a newer dispatch
# superseded this message.
BEGIN = """
local h = redis.call('HMGET', task, 'state', 'attempts', 'dispatch', 'worker', 'params',
  'cancel_requested', 'lost', 'token', 'last_event_id', 'seq', 'owner', 'tags')
local state = h[1]
if not state then return {0, ''} end
if state == 'running' and h[8] == token then
  return {1, h[9], h[10], tonumber(h[2]), h[5] or '{}', h[6] or '0'}
end
if (h[3] or '1') ~= dispatch then return {3, h[3] or '1'} end
if state == 'running' then return {2, h[4] or '', h[2] or '0', h[7] or '0'} end
if not may_follow(state) then return {0, state} end
local id, seq, attempt = append_event(state, h[11] or '', h[10], h[2], h[12])
return {1, id, seq, attempt, h[5] or '{}', h[6] or '0'}
"""

# The task's hash, the content of each of its output streams and its last log lines, read in one
# step, so that they are exactly what its `last_event_id` includes. Returns {hash as a flat
# list, {stream, content, stream, content...}, {log line JSON...}}.
READ_OUTPUT = """
local h = redis.call('HGETALL', task)
local parts = {}
for i = 1, #h, 2 do
  if string.sub(h[i], 1, 7) == 'output.' then
    local stream = string.sub(h[i], 8)
    parts[#parts + 1] = stream
    parts[#parts + 1] = redis.call('GET', task .. ':output:' .. stream) or ''
  end
end
return {h, parts, redis.call('LRANGE', task .. ':logs', 0, -1)}
"""

# Asks a running task to stop; returns its state ("" if unknown).
REQUEST_CANCEL = """
local state = redis.call('HGET', task, 'state')
if state == 'running' then redis.call('HSET', task, 'cancel_requested', '1') end
return state or ''
"""


@dataclass(frozen=True)
class Script:
    """A script's source: its call's prelude, then `body`. Both stores run it the same way: the
    `EVALSHA` of `command()` through redis-py, loading the script when Redis does not know it
    (redis-py's `Script` objects cost the worker another 30 us a task in argument checks)."""

    call: type[ScriptCall]
    body: str

    @functools.cached_property
    def source(self) -> str:
        library = LIBRARY if issubclass(self.call, LogCall) else ""
        return self.call.prelude() + library + self.body

    @functools.cached_property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    def command(self, call: ScriptCall) -> tuple[str | int, ...]:
        keys, args = call.keys_and_args()
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


APPEND_SCRIPT = Script(AppendCall, APPEND)
BEGIN_SCRIPT = Script(BeginCall, BEGIN)
CANCEL_SCRIPT = Script(CancelCall, REQUEST_CANCEL)
READ_OUTPUT_SCRIPT = Script(ReadOutputCall, READ_OUTPUT)


def _follows(states: Iterable[TaskState]) -> str:
    return ",".join(sorted(states))


def _log_fields(keys: Keys, settings: Settings, draft: EventDraft) -> dict[str, Any]:
    output_log = draft.type.output_log
    return {
        "log": keys.output_events if output_log else keys.events,
        "other_log": keys.events if output_log else keys.output_events,
        "clock": keys.clock,
        "task": keys.task(draft.task_id),
        "task_log": keys.task_events(draft.task_id),
        "task_id": draft.task_id,
        "kind": draft.kind,
        "event_type": draft.type.value,
        "body": draft.body(),
        "token": secrets.token_hex(8),
        "maxlen": settings.output_events_maxlen if output_log else settings.events_maxlen,
        "task_maxlen": settings.task_events_maxlen,
        "ttl": settings.task_ttl_seconds,
        "list_max": settings.log_max_lines,
        "prefix": keys.prefix,
    }


def append_call(
    keys: Keys,
    settings: Settings,
    draft: EventDraft,
    allowed: Iterable[TaskState] | None = None,
    expect: Mapping[str, str] | None = None,
    changes: Mapping[str, str] | None = None,
    enqueue: tuple[str, str] | None = None,
) -> AppendCall:
    """`allowed`: fewer states than the event may follow; `expect`: stored values the append
    requires; `changes`: more fields to write (`+n`, `?n`); `enqueue`: a queue's list and a
    message to push onto it in the same step."""
    follows = draft.type.rule.follows
    if allowed is not None:
        follows &= set(allowed)
        if not follows:
            raise ValueError(f"{draft.type} follows none of {sorted(allowed)}")
    return AppendCall(
        **_log_fields(keys, settings, draft),
        follows=_follows(follows),
        writes=hash_writes(draft) + tuple((changes or {}).items()),
        owner=draft.owner or "",
        expect=tuple((expect or {}).items()),
        queue=enqueue[0] if enqueue else None,
        message=enqueue[1] if enqueue else "",
    )


def begin_call(keys: Keys, settings: Settings, draft: EventDraft, dispatch: int) -> BeginCall:
    """The call that starts an attempt with `draft`, a `started` event."""
    assert draft.type is EventType.started, draft.type
    return BeginCall(
        **_log_fields(keys, settings, draft),
        follows=_follows(draft.type.rule.follows),
        writes=hash_writes(draft),
        dispatch=str(dispatch),
    )


@dataclass(frozen=True)
class Appended:
    id: str
    seq: int
    cancel_requested: bool


def parse_append_reply(task_id: str, type: EventType, reply: list[Any]) -> Appended:
    if int(reply[0]) != 1:
        state = str(reply[1]) or None
        raise TransitionRefused(task_id, state, type.value)
    return Appended(id=str(reply[1]), seq=int(reply[2]), cancel_requested=str(reply[3]) == "1")


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
