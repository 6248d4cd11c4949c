"""The Lua scripts that keep the event log and the task state in step.

Appending an event and updating the task's state happen in one script, so a reader never sees an
event whose state is not stored yet, nor a state without its event. The script also refuses an
event that the task's current state does not allow (nothing follows a final event, say): that is
how a cancelled task's late progress, or a redelivered finished task, is kept out of the log.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from taskstream.errors import TransitionRefused
from taskstream.events.keys import Keys
from taskstream.events.models import EventDraft, EventType, TaskState
from taskstream.events.state import state_fields
from taskstream.settings import Settings

# KEYS: global log, task hash, task log.
# ARGV: task id, log maxlen, task log maxlen, event type, event JSON, allowed prior states
#       (comma list; "" = the task must not exist yet), seconds to keep the task after this,
#       key prefix, kind, then field/value pairs for the task hash.
# Returns {1, event id, seq, cancel requested} or {0, current state or ""}.
APPEND = """
local state = redis.call('HGET', KEYS[2], 'state')
local allowed = ARGV[6]
if allowed == '' then
  if state then return {0, state} end
elseif not state or not string.find(',' .. allowed .. ',', ',' .. state .. ',', 1, true) then
  return {0, state or ''}
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
  'task', ARGV[1], 'type', ARGV[4], 'seq', seq, 'data', ARGV[5])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], id,
  'task', ARGV[1], 'type', ARGV[4], 'seq', seq, 'data', ARGV[5])
redis.call('HSET', KEYS[2], 'last_event_id', id)
local newstate = state
for i = 10, #ARGV, 2 do
  local name = ARGV[i]
  if string.sub(name, 1, 1) == '?' then
    redis.call('HSETNX', KEYS[2], string.sub(name, 2), ARGV[i + 1])
  else
    redis.call('HSET', KEYS[2], name, ARGV[i + 1])
    if name == 'state' then newstate = ARGV[i + 1] end
  end
end
local prefix = ARGV[8]
if not state then
  redis.call('ZADD', prefix .. 'tasks', 0, ARGV[1])
  redis.call('ZADD', prefix .. 'tasks:kind:' .. ARGV[9], 0, ARGV[1])
end
if state ~= newstate then
  if state then redis.call('ZREM', prefix .. 'tasks:state:' .. state, ARGV[1]) end
  redis.call('ZADD', prefix .. 'tasks:state:' .. newstate, 0, ARGV[1])
end
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[3], ARGV[7])
return {1, id, seq, redis.call('HGET', KEYS[2], 'cancel_requested') or '0'}
"""

# KEYS: task hash. Asks a running task to stop; returns its state ("" if unknown).
REQUEST_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' then redis.call('HSET', KEYS[1], 'cancel_requested', '1') end
return state or ''
"""

ALLOWED_BEFORE: dict[EventType, frozenset[TaskState]] = {
    EventType.queued: frozenset(),
    # `running` again: a message redelivered after its worker was lost starts over.
    EventType.started: frozenset({TaskState.queued, TaskState.retrying, TaskState.running}),
    EventType.progress: frozenset({TaskState.running}),
    EventType.retrying: frozenset({TaskState.running}),
    EventType.succeeded: frozenset({TaskState.running}),
    EventType.failed: frozenset({TaskState.queued, TaskState.running, TaskState.retrying}),
    EventType.cancelled: frozenset({TaskState.queued, TaskState.running, TaskState.retrying}),
}


def append_args(
    keys: Keys,
    settings: Settings,
    draft: EventDraft,
    allowed: Iterable[TaskState] | None = None,
) -> tuple[list[str], list[str | int]]:
    states = ALLOWED_BEFORE[draft.type] if allowed is None else frozenset(allowed)
    args: list[str | int] = [
        draft.task_id,
        settings.events_maxlen,
        settings.task_events_maxlen,
        draft.type.value,
        draft.dumps(),
        ",".join(sorted(states)),
        settings.task_ttl_seconds,
        keys.prefix,
        draft.kind,
    ]
    for name, value in state_fields(draft).items():
        args += [name, value]
    return [keys.events, keys.task(draft.task_id), keys.task_events(draft.task_id)], args


def parse_append_reply(draft: EventDraft, reply: list[str | int]) -> "Appended":
    if int(reply[0]) != 1:
        state = str(reply[1]) or None
        raise TransitionRefused(draft.task_id, state, draft.type.value)
    return Appended(id=str(reply[1]), seq=int(reply[2]), cancel_requested=str(reply[3]) == "1")


@dataclass(frozen=True)
class Appended:
    id: str
    seq: int
    cancel_requested: bool
