"""The event store's fixtures (a private redis-server, emptied before each test) for the tests of
what runs on a worker without a worker process: they are the same, so they are imported."""

from tests.events.conftest import client, redis_server, settings, store

__all__ = ["client", "redis_server", "settings", "store"]
