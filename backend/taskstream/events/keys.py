"""Names of every Redis key taskstream writes, under one configurable prefix."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "ts:"

    @property
    def events(self) -> str:
        """The global event log: one Redis Stream, trimmed to EVENTS_MAXLEN."""
        return f"{self.prefix}events"

    def task(self, task_id: str) -> str:
        """A hash with the task's current state."""
        return f"{self.prefix}task:{task_id}"

    def task_events(self, task_id: str) -> str:
        """A stream with the task's own events, under the same ids as in the global log."""
        return f"{self.prefix}task:{task_id}:events"

    @property
    def index(self) -> str:
        """Sorted sets of task ids (all scores 0, so ordered by id, i.e. by creation time)."""
        return f"{self.prefix}tasks"

    def index_state(self, state: str) -> str:
        return f"{self.prefix}tasks:state:{state}"

    def index_kind(self, kind: str) -> str:
        return f"{self.prefix}tasks:kind:{kind}"

    def index_owner(self, owner: str) -> str:
        return f"{self.prefix}tasks:owner:{owner}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}idem:{key}"

    @property
    def workers(self) -> str:
        """A sorted set of worker names scored by their last heartbeat (Unix seconds)."""
        return f"{self.prefix}workers"
