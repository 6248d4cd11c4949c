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

    def task_output(self, task_id: str, stream: str) -> str:
        """The content of one of the task's output streams (the scripts name it the same way)."""
        return f"{self.prefix}task:{task_id}:output:{stream}"

    def task_logs(self, task_id: str) -> str:
        """The task's last log lines, a list (the scripts name it the same way)."""
        return f"{self.prefix}task:{task_id}:logs"

    @property
    def output_events(self) -> str:
        """The output log: the global log of the events that a task may write many of (output,
        log lines; the event table's `output_log`), trimmed to OUTPUT_EVENTS_MAXLEN, so that they
        never push other events out of the event log. Its ids and the event log's are one
        sequence (`clock`): merged by id, the two logs are the order events happened in."""
        return f"{self.prefix}output-events"

    @property
    def clock(self) -> str:
        """The newest id given to an event of either global log."""
        return f"{self.prefix}clock"

    def index_tag(self, tag: str) -> str:
        return f"{self.prefix}tasks:tag:{tag}"

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
