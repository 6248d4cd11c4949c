"""What the design needs of the Redis it runs on, and how the Redis it finds falls short.

- A single primary: the scripts touch keys they do not declare (the indexes, the id clock, the
  output log), so Redis Cluster cannot run them.
- `maxmemory-policy noeviction`: an evicted key is a task, an event log or a queue gone without
  a word; with `noeviction` a full Redis refuses writes instead, and the API answers `503`.
- Append-only persistence: without it a restart loses every event since the last snapshot, and
  clients that saw them get a `reset`.

`shortfalls` says which of these the Redis at hand breaks, for the start-up log and `/readyz`.
A Redis that hides its configuration (CONFIG renamed away, as managed services do) is taken on
trust.
"""

from redis.asyncio import Redis
from redis.exceptions import ResponseError


async def shortfalls(redis: "Redis") -> list[str]:
    found: list[str] = []
    try:
        config = await redis.config_get("maxmemory-policy", "appendonly")
    except ResponseError:
        config = {}
    policy = config.get("maxmemory-policy")
    if policy not in (None, "noeviction"):
        found.append(
            f"maxmemory-policy is {policy}: Redis may evict tasks, events and queued messages; "
            "set it to noeviction"
        )
    if config.get("appendonly") == "no":
        found.append(
            "appendonly is off: a Redis restart loses the events written since its last "
            "snapshot; set appendonly yes"
        )
    try:
        cluster = await redis.info("cluster")
    except ResponseError:
        cluster = {}
    if cluster.get("cluster_enabled") == 1:
        found.append("Redis Cluster is not supported: use a single primary")
    return found
