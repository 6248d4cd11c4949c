"""Fixtures of the client's tests: clients of the session's stack, and APIs of their own.

An API of their own runs on the session's Redis and worker: tests may restart it, or run it with
keys and a submission limit, and only one more process starts.
"""

import json
from collections.abc import Iterator

import pytest

from taskstream.client import AsyncClient, Client, Reconnect
from tests.support.processes import ApiServer
from tests.support.stack import Stack

# Streams come back within half a second: the tests wait for states, never for a backoff.
FAST = Reconnect(first_delay=0.05, max_delay=0.5, idle_timeout=10, give_up_after=60)
# A hint of 100 ms, and a keep-alive each second: a restart is noticed and mended at once.
QUICK_STREAMS = {"KEEPALIVE_SECONDS": "1", "SSE_RETRY_MS": "100"}

OWNER_KEY = "client-owner-key-0123456789"
FLOOD_KEY = "client-flood-key-0123456789"
KEYS = {OWNER_KEY: "client-owner", FLOOD_KEY: "client-flood"}
TOKEN_SECRETS = {"client": "c" * 40}
SUBMIT_RATE = 3


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(stack.api.url, reconnect=FAST) as made:
        yield made


def async_client(url: str, api_key: str | None = None) -> AsyncClient:
    """An AsyncClient for a coroutine of a test (made inside it: it belongs to that loop)."""
    return AsyncClient(url, api_key=api_key, reconnect=FAST)


@pytest.fixture(scope="module")
def restartable(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API of the module's own, on the session's Redis and worker, to restart at will."""
    directory = tmp_path_factory.mktemp("restartable")
    api = ApiServer(stack.redis.url, directory, env=QUICK_STREAMS, name="restartable")
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="package")
def secured(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API that requires keys, signs watch tokens with `TOKEN_SECRETS` and takes
    `SUBMIT_RATE` submissions a minute per principal."""
    env = {
        **QUICK_STREAMS,
        "API_KEYS": json.dumps(KEYS),
        "SESSION_SECRET": "s" * 40,
        "WATCH_TOKEN_SECRETS": json.dumps(TOKEN_SECRETS),
        "SUBMIT_RATE_PER_MINUTE": str(SUBMIT_RATE),
    }
    api = ApiServer(stack.redis.url, tmp_path_factory.mktemp("secured"), env=env, name="secured")
    api.start()
    yield api
    api.stop()
