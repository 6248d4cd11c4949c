"""Task ids and event-log ids.

Task ids are 32 hex digits: 48 bits of Unix milliseconds then 80 random bits (the layout of a
UUIDv7 without its version bits), so sorting ids sorts tasks by creation time. Event ids are the
Redis Stream's own `<ms>-<n>` ids.
"""

import re
import secrets
import time

TASK_ID_PATTERN = r"^[0-9a-f]{32}$"
# ASCII digits only, matched whole: `\d` would take other scripts' digits, `$` a final newline.
_TASK_ID = re.compile(r"[0-9a-f]{32}")
_EVENT_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_MAX_PART = 2**64 - 1

EventId = tuple[int, int]
ZERO: EventId = (0, 0)


def new_task_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{ms:012x}{secrets.randbits(80):020x}"


def is_task_id(value: str) -> bool:
    return bool(_TASK_ID.fullmatch(value))


def parse_event_id(value: str) -> EventId | None:
    """The two numbers of a stream id, or None if `value` is not one. A bare number is refused."""
    match = _EVENT_ID.fullmatch(value)
    if not match:
        return None
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms > _MAX_PART or seq > _MAX_PART:
        return None
    return ms, seq


def format_event_id(event_id: EventId) -> str:
    return f"{event_id[0]}-{event_id[1]}"
