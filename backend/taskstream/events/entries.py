"""An entry of the event log as read from Redis, with its JSON encoded once."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskstream.events.ids import EventId, parse_event_id
from taskstream.events.models import Event, encode_event
from taskstream.events.types import FINAL_TYPES


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: str
    key: EventId
    task_id: str
    type: str
    seq: int
    json: str
    owner: str
    kind: str = ""
    tags: frozenset[str] = frozenset()

    @classmethod
    def from_redis(cls, entry_id: str, fields: dict[str, str]) -> "LogEntry":
        key = parse_event_id(entry_id)
        assert key is not None, entry_id  # Redis only hands out well-formed ids
        seq = int(fields["seq"])
        return cls(
            id=entry_id,
            key=key,
            task_id=fields["task"],
            type=fields["type"],
            seq=seq,
            json=encode_event(
                entry_id, seq, fields["type"], fields.get("attempt", ""), fields["data"]
            ),
            owner=fields.get("owner", ""),
            kind=fields.get("kind", ""),
            tags=frozenset(json.loads(fields["tags"])) if "tags" in fields else frozenset(),
        )

    @property
    def final(self) -> bool:
        return self.type in FINAL_TYPES

    def event(self) -> Event:
        return Event.model_validate_json(self.json)


def text_fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in raw.items()}


def parse_entries(raw: Any) -> list[LogEntry]:
    """The entries of an `XRANGE` reply, or of one stream in an `XREAD` reply."""
    return [
        LogEntry.from_redis(str(entry_id), text_fields(fields)) for entry_id, fields in raw or ()
    ]


def merged(logs: Sequence[tuple[list[LogEntry], bool]]) -> list[LogEntry]:
    """Entries read from several logs of one id sequence after one position, in id order: each
    log's entries with whether the read stopped at its count. Where one did, entries past its
    last are left out (that log may hold more before them): the next read starts from the last
    entry returned, and misses none."""
    cut = min((entries[-1].key for entries, full in logs if full and entries), default=None)
    entries = sorted((e for log, _ in logs for e in log), key=lambda entry: entry.key)
    if cut is not None:
        entries = [entry for entry in entries if entry.key <= cut]
    return entries
