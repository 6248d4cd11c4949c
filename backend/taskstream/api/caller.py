"""Who is asking, decided once per request (`auth.authenticate`): whose tasks it may see.

The service, the streams and the fan-out all take this one value, so "anyone" has one spelling
(`ANYONE`) and no layer re-derives it from the settings. A task keeps who submitted it as its
`owner`; a caller may see a task if it sees every owner's or owns it. A caller that holds a watch
token (`tokens`) also has a `scope`: it reads only the one task, or the tasks with one tag, that
the token was minted for, and may do nothing but read.
"""

from collections.abc import Collection
from dataclasses import dataclass

from taskstream.errors import Forbidden


@dataclass(frozen=True, slots=True)
class Scope:
    """What a watch token reads: one task (`task_id`) or every task with a tag (`tag`)."""

    task_id: str | None = None
    tag: str | None = None

    def admits(self, task_id: str, tags: Collection[str]) -> bool:
        if self.task_id is not None:
            return task_id == self.task_id
        return self.tag is not None and self.tag in tags

    def narrow_tag(self, tag: str | None) -> str:
        """The tag a listing within this scope is of: its own (`tag` may only repeat it)."""
        if self.tag is None or tag not in (None, self.tag):
            raise Forbidden(f"a watch token lists only the tasks of its {self}")
        return self.tag

    def narrow_tasks(self, tasks: frozenset[str] | None) -> frozenset[str] | None:
        """The tasks a stream within this scope follows: its task's (`tasks` may only name it)."""
        if self.task_id is None:
            return tasks
        if tasks is not None and tasks != {self.task_id}:
            raise Forbidden(f"a watch token follows only its {self}")
        return frozenset({self.task_id})

    def __str__(self) -> str:
        return f"task {self.task_id}" if self.task_id is not None else f"tag {self.tag!r}"


@dataclass(frozen=True, slots=True)
class Caller:
    """`name`: the principal its API key (or session, or watch token) stands for. None only when
    the API needs no keys: then every owner's tasks are visible to it. `scope`: set for a watch
    token's holder, who sees only that part of them. Two holders of the same scope are one
    caller (they share a fan-out audience and a stream limit)."""

    name: str | None
    scope: Scope | None = None

    @property
    def sees_all(self) -> bool:
        """Whether it sees every owner's tasks (its scope may still narrow them)."""
        return self.name is None

    def may_see(self, owner: str | None) -> bool:
        return self.name is None or owner == self.name

    def may_read(self, task_id: str, owner: str | None, tags: Collection[str]) -> bool:
        """Whether it may read this task: it is the caller's, and in its scope if it has one."""
        return self.may_see(owner) and (self.scope is None or self.scope.admits(task_id, tags))

    def require_unscoped(self, action: str) -> None:
        """Refuses `action` (anything but reading) to a watch token's holder."""
        if self.scope is not None:
            raise Forbidden(f"a watch token only reads its {self.scope}; it cannot {action}")


ANYONE = Caller(None)
