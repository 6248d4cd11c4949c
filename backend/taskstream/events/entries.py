"""An entry of the event log as read from Redis, with its JSON encoded once."""

from collections.abc import Mapping
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
