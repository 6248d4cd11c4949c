"""What each event type does to a task, read from `types.json`: the one table of event semantics.

The event log's scripts, the Python fold (`state.py`) and the page's fold all follow this table;
`tests/cases/events.json` holds all three to it. A new event type is a row there (and its name in
`EventType`, which this checks).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).with_name("types.json")


class TaskState(StrEnum):
    queued = "queued"
    running = "running"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINAL_STATES


class EventType(StrEnum):
    queued = "queued"
    started = "started"
    progress = "progress"
    output = "output"
    log = "log"
    metadata = "metadata"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def rule(self) -> "Rule":
        return RULES[self]

    @property
    def state(self) -> TaskState:
        return RULES[self].state

    @property
    def final(self) -> bool:
        return RULES[self].final

    @property
    def output_log(self) -> bool:
        return RULES[self].output_log


class Op(Enum):
    copy = "copy"  # the event's field `arg`
    clear = "clear"
    add = "add"  # `arg` added to the task's value
    first = "first"  # the event's field `arg`, only while the task has no value
    value = "value"  # `arg` itself
    extend = "extend"  # the event's output chunk `arg`, appended to its stream of the field
    push = "push"  # the event's field `arg`, counted in the field and kept in a list apart


@dataclass(frozen=True, slots=True)
class Write:
    field: str
    op: Op
    arg: Any = None


@dataclass(frozen=True, slots=True)
class Rule:
    type: EventType
    state: TaskState
    follows: frozenset[TaskState]  # empty: the event must be the task's first
    final: bool
    output_log: bool  # kept in the output log instead of the event log
    writes: tuple[Write, ...]


def _write(field: str, spec: Any) -> Write:
    if spec is None:
        return Write(field, Op.clear)
    if isinstance(spec, str):
        return Write(field, Op.copy, spec)
    if isinstance(spec, dict) and len(spec) == 1:
        ((name, arg),) = spec.items()
        return Write(field, Op(name), arg)
    raise ValueError(f"{field}: {spec!r} is not a field write")


def _rule(name: str, row: Mapping[str, Any]) -> Rule:
    return Rule(
        type=EventType(name),
        state=TaskState(row["state"]),
        follows=frozenset(TaskState(state) for state in row["follows"]),
        final=bool(row["final"]),
        output_log=bool(row["output_log"]),
        writes=tuple(_write(field, spec) for field, spec in row["sets"].items()),
    )


def load(path: Path = TABLE_PATH) -> dict[EventType, Rule]:
    rows = json.loads(path.read_text())["types"]
    rules = {rule.type: rule for rule in (_rule(name, row) for name, row in rows.items())}
    missing = set(EventType) - set(rules)
    if missing:
        raise ValueError(f"{path.name} has no row for {sorted(t.value for t in missing)}")
    return rules


RULES = load()
FINAL_STATES = frozenset(rule.state for rule in RULES.values() if rule.final)
FINAL_TYPES = frozenset(rule.type.value for rule in RULES.values() if rule.final)
# What the everyone stream carries unless asked for more: what the event log holds.
OUTPUT_TYPES = frozenset(rule.type for rule in RULES.values() if rule.output_log)
