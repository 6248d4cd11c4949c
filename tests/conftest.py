"""Fixtures: one shared stack of real processes for the session, and private ones on demand."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack

StackFactory = Callable[..., Stack]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, a worker and an API shared by the tests that do not stop or reconfigure them."""
    shared = Stack(tmp_path_factory.mktemp("stack"), api_env={"KEEPALIVE_SECONDS": "1"})
    shared.start()
    yield shared
    shared.stop()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """Private stacks for tests that stop, restart or reconfigure processes."""
    made: list[Stack] = []

    def make(**options: Any) -> Stack:
        private = Stack(tmp_path / f"stack{len(made)}", **options)
        made.append(private)
        return private.start()

    yield make
    for private in made:
        private.stop()
