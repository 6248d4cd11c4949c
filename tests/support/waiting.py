"""Waiting for a condition with a generous deadline, never for a fixed time."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class GiveUp(Exception):
    """Raised by a probe when waiting longer cannot help (the process it waits for exited)."""


def wait_until(
    probe: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Calls `probe` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except GiveUp:
            raise
        except Exception as exc:  # the thing waited for may fail until it is up
            last_error = exc
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout} s waiting for {text} ({last_error!r})")
        time.sleep(interval)
