"""The registry of task kinds, filled by the `@task_kind` decorator.

Every module in the `taskstream.kinds` package is imported by `load()`, so adding a kind means
adding one module here (or naming a module of your own in `TASK_KIND_MODULES`); nothing else
changes: the API's validation, the OpenAPI schema, `/api/task-kinds`, the worker's Celery tasks and
the web page's forms all follow from the declaration.
"""

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import BaseModel, JsonValue

from taskstream.kinds.base import P, RetryPolicy, TaskContext, TaskKind

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class KindRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, TaskKind[Any]] = {}

    def add(self, kind: TaskKind[Any]) -> None:
        if not _NAME.match(kind.name):
            raise ValueError(f"kind name {kind.name!r} must match {_NAME.pattern}")
        if kind.name in self._kinds:
            raise ValueError(f"kind {kind.name!r} is declared twice")
        self._kinds[kind.name] = kind

    def declare(
        self,
        name: str,
        *,
        title: str,
        description: str,
        params: type[P],
        retry: Callable[[P], RetryPolicy] | None = None,
        time_limit: Callable[[P], float] | None = None,
        max_time_limit: float = 60.0,
        examples: dict[str, dict[str, Any]] | None = None,
    ) -> Callable[[Callable[[P, TaskContext], JsonValue]], TaskKind[P]]:
        def register(run: Callable[[P, TaskContext], JsonValue]) -> TaskKind[P]:
            kind = TaskKind(
                name=name,
                title=title,
                description=description,
                params=params,
                run=run,
                retry=retry or (lambda _params: RetryPolicy()),
                time_limit=time_limit or (lambda _params: max_time_limit),
                max_time_limit=max_time_limit,
                examples=examples or {},
            )
            self.add(kind)
            return kind

        return register

    def get(self, name: str) -> TaskKind[Any] | None:
        return self._kinds.get(name)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def __iter__(self) -> Iterator[TaskKind[Any]]:
        return iter(sorted(self._kinds.values(), key=lambda kind: kind.name))

    def __len__(self) -> int:
        return len(self._kinds)


REGISTRY = KindRegistry()
task_kind = REGISTRY.declare

_INTERNAL = {"base", "registry"}


def load(extra_modules: Iterable[str] = ()) -> KindRegistry:
    """Import every kind module of this package and any extra ones; returns the registry."""
    package = importlib.import_module("taskstream.kinds")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _INTERNAL and not module.name.startswith("_"):
            importlib.import_module(f"taskstream.kinds.{module.name}")
    for name in extra_modules:
        importlib.import_module(name)
    return REGISTRY


def params_are_optional(params: type[BaseModel]) -> bool:
    return all(not field.is_required() for field in params.model_fields.values())
