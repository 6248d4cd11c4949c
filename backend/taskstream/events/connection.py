"""Redis clients configured the same way for the API (asyncio) and the worker (blocking).

After Redis restarts, every pooled connection is stale and its next command fails: one quick retry
on a connection error absorbs that, while a real outage still fails within about a second.
"""

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

from taskstream.settings import Settings


def _options(settings: Settings, socket_timeout: float | None, name: str) -> dict[str, Any]:
    timeout = settings.redis_timeout_seconds if socket_timeout is None else socket_timeout
    return {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": min(1.0, settings.redis_timeout_seconds),
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": 30,
        "client_name": name,
    }


def async_redis(
    settings: Settings,
    *,
    socket_timeout: float | None = None,
    name: str = "taskstream-api",
    patient: bool = False,
) -> "aioredis.Redis":
    """The API's client. Its pool waits for a free connection rather than fail: up to
    REDIS_TIMEOUT_SECONDS (then the request gets a 503), or, `patient`, as long as it takes (a
    storm of clients resuming at once each read the log: they queue, none is turned away)."""
    retry = AsyncRetry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=None if patient else settings.redis_timeout_seconds,
        retry=retry,
        **_options(settings, socket_timeout, name),
    )
    return aioredis.Redis.from_pool(pool)


def sync_redis(settings: Settings, name: str = "taskstream-worker") -> "redis.Redis":
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.1), retries=2)
    return redis.Redis.from_url(settings.redis_url, retry=retry, **_options(settings, None, name))
