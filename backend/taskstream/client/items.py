"""What an event stream yields besides the API's `Event`s: a `Snapshot` or a `Reset`."""

from pydantic import ConfigDict

from taskstream.api import models
from taskstream.events.models import Event

__all__ = ["Event", "Reset", "Snapshot", "StreamItem", "WatchItem"]


class Snapshot(models.Snapshot):
    """A task and its output as of one of its events (`id`): the state to go on from.

    `watch` yields one when asked (`snapshot=True`), where the task's log no longer holds its
    first events, and after anything that may have made it miss some (a `reset`, a gap in
    `seq`): the events after it follow."""

    model_config = ConfigDict(frozen=True)

    @property
    def id(self) -> str:
        return self.task.last_event_id


class Reset(models.Reset):
    """`watch_events` could not resume where asked (`reason`: the id was malformed, unknown or
    no longer retained): events may have been missed. Refetch what you show over REST; the
    stream goes on from `last_event_id`, the log's position when it said so."""

    model_config = ConfigDict(frozen=True)

    @property
    def id(self) -> str:
        return self.last_event_id


WatchItem = Event | Snapshot
StreamItem = Event | Reset
