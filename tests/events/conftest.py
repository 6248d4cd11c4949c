"""A private redis-server for the event store's own tests, emptied before each test."""

from collections.abc import Iterator

import pytest
import redis

from taskstream.events.connection import sync_redis
from taskstream.events.store import SyncEventStore
from taskstream.settings import Settings
from tests.support.processes import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def client(redis_server: RedisServer) -> "redis.Redis":
    redis_server.client().flushdb()
    return redis_server.client()


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    return Settings(redis_url=redis_server.url, task_ttl_seconds=600)


@pytest.fixture
def store(client: "redis.Redis", settings: Settings) -> Iterator[SyncEventStore]:
    store = SyncEventStore(sync_redis(settings), settings)
    yield store
    store.close()
