"""Which events a client of the everyone stream (`/api/events`) asked for."""

import re
from dataclasses import dataclass, replace

from taskstream.api.caller import Scope
from taskstream.errors import InvalidRequest
from taskstream.events.ids import TASK_ID_PATTERN
from taskstream.events.types import OUTPUT_TYPES, EventType

# Without `types=`, the everyone stream carries what the event log holds: every task's life,
# not every token every task writes (those come when `types=` names them).
DEFAULT_TYPES = frozenset(t.value for t in EventType if t not in OUTPUT_TYPES)
OUTPUT_TYPE_NAMES = frozenset(t.value for t in OUTPUT_TYPES)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The events of a stream: of these types, and where given, of this kind, this tag and these
    tasks. Hashable: the fan-out picks each distinct filter's share of a batch once."""

    types: frozenset[str] = DEFAULT_TYPES
    kind: str | None = None
    tag: str | None = None
    tasks: frozenset[str] | None = None

    @property
    def output(self) -> bool:
        """Whether it needs the output log."""
        return not self.types.isdisjoint(OUTPUT_TYPE_NAMES)

    @property
    def everything(self) -> bool:
        """Whether it takes every event the event log holds, whatever its task."""
        return (
            self.types == DEFAULT_TYPES
            and self.kind is None
            and self.tag is None
            and self.tasks is None
        )

    def admits(self, type: str, kind: str, tags: frozenset[str], task_id: str) -> bool:
        return (
            type in self.types
            and (self.kind is None or kind == self.kind)
            and (self.tag is None or self.tag in tags)
            and (self.tasks is None or task_id in self.tasks)
        )


EVERYTHING = EventFilter()
MAX_TASKS = 50
_TASK_ID = re.compile(TASK_ID_PATTERN)


def parse_filter(
    types: str | None, kind: str | None, tag: str | None, tasks: str | None
) -> EventFilter:
    """The filter that `/api/events`'s query asks for; comma-separated lists."""
    wanted = DEFAULT_TYPES
    if types is not None:
        names = frozenset(name.strip() for name in types.split(",") if name.strip())
        unknown = names - {t.value for t in EventType}
        if unknown or not names:
            known = ", ".join(t.value for t in EventType)
            raise InvalidRequest(
                f"unknown event type {', '.join(sorted(unknown)) or '(none)'}; known: {known}",
                field="query.types",
            )
        wanted = names
    ids: frozenset[str] | None = None
    if tasks is not None:
        ids = frozenset(task.strip() for task in tasks.split(",") if task.strip())
        if not ids or len(ids) > MAX_TASKS or not all(_TASK_ID.match(i) for i in ids):
            raise InvalidRequest(
                f"task takes 1 to {MAX_TASKS} task ids (32 hex digits), comma-separated",
                field="query.task",
            )
    return EventFilter(types=wanted, kind=kind, tag=tag, tasks=ids)


def within(wanted: EventFilter, scope: Scope | None) -> EventFilter:
    """`wanted`, narrowed to what a watch token's `scope` reads (a filter of its tag or task)."""
    if scope is None:
        return wanted
    if scope.task_id is not None:
        return replace(wanted, tasks=scope.narrow_tasks(wanted.tasks))
    return replace(wanted, tag=scope.narrow_tag(wanted.tag))
