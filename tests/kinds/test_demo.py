"""The demo kinds and the retry policy, as plain logic with a context of our own."""

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from taskstream.kinds import REGISTRY, RetryableError, RetryPolicy, TaskCancelled, load
from taskstream.kinds.base import TaskKind
from taskstream.kinds.registry import KindRegistry


class FakeContext:
    """Records what a kind reports; cancels once `cancel_after` progress reports were made."""

    def __init__(self, attempt: int = 1, cancel_after: int | None = None) -> None:
        self.attempt = attempt
        self.reports: list[tuple[float, float, str]] = []
        self.written: dict[str, list[Any]] = {}
        self.logs: list[tuple[str, str]] = []
        self.metadata: dict[str, Any] = {}
        self.slept = 0.0
        self.cancel_after = cancel_after

    def progress(self, current: float, total: float, message: str = "") -> None:
        self.reports.append((current, total, message))

    def write(self, text: str, stream: str = "output") -> None:
        self.written.setdefault(stream, []).append(text)

    def write_json(self, value: Any, stream: str = "output") -> None:
        self.written.setdefault(stream, []).append(value)

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append((level, message))

    def set_metadata(self, **fields: Any) -> None:
        self.metadata |= fields

    def cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.reports) >= self.cancel_after

    def sleep(self, seconds: float) -> None:
        if self.cancelled():
            raise TaskCancelled("cancelled")
        self.slept += seconds


def kind(name: str) -> TaskKind[Any]:
    found = load().get(name)
    assert found is not None
    return found


def test_add_adds() -> None:
    assert kind("add").execute({"x": 2, "y": 3.5}, FakeContext()) == 5.5
    with pytest.raises(ValidationError):
        kind("add").execute({"x": float("inf"), "y": 1}, FakeContext())


def test_long_reports_each_second_and_stops_when_cancelled() -> None:
    ctx = FakeContext()
    assert kind("long").execute({"seconds": 3}, ctx) == {"steps": 3}
    assert [r[0] for r in ctx.reports] == [0, 1, 2, 3]
    assert ctx.slept == 3
    stopping = FakeContext(cancel_after=2)
    with pytest.raises(TaskCancelled):
        kind("long").execute({"seconds": 10}, stopping)
    assert len(stopping.reports) == 2


def test_generate_writes_its_words_with_progress_logs_and_metadata() -> None:
    ctx = FakeContext()
    assert kind("generate").execute({"words": 25, "rate": 2000, "thinking": True}, ctx) == {
        "words": 25
    }
    assert len(ctx.written["output"]) == 25
    assert "".join(ctx.written["thinking"]) == "Let me think about this. "
    assert ctx.reports[-1][:2] == (25, 25)
    assert ctx.metadata == {"stage": "done", "words": 25}
    assert [message for _, message in ctx.logs][-1] == "done"


def test_unreliable_fails_as_often_as_asked() -> None:
    with pytest.raises(RetryableError):
        kind("unreliable").execute({"failure_rate": 1}, FakeContext())
    assert kind("unreliable").execute({"failure_rate": 0}, FakeContext(attempt=2)) == {
        "succeeded_on_attempt": 2
    }
    assert kind("unreliable").retry_policy({"max_retries": 7}).max_retries == 7


def test_retry_delay_doubles_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_retries=10, base_seconds=1, cap_seconds=8)
    assert [policy.delay(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 4]
    assert [policy.delay(n, 0.999) for n in (1, 2, 3)] == pytest.approx([1, 2, 4], abs=0.01)


def test_registry_refuses_bad_and_duplicate_names() -> None:
    registry = KindRegistry()
    add = REGISTRY.get("add")
    assert add is not None
    registry.add(add)
    with pytest.raises(ValueError, match="twice"):
        registry.add(add)
    with pytest.raises(ValueError, match="must match"):
        registry.add(dataclasses.replace(add, name="Bad Name"))
    assert registry.names() == ["add"]
