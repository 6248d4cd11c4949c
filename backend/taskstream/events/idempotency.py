"""How an idempotency key is kept, whoever submits (the API, `taskstream.submit`): the same key
for the same request returns the same task, whichever way it came in."""

import hashlib
import json
from typing import Any


def fingerprint(kind: str, values: dict[str, Any], tags: list[str]) -> str:
    """What a key is stored with: a key repeated with another request is refused. (A request
    without tags fingerprints as its params alone, as keys have always been written.)"""
    request = {"params": values, "tags": tags} if tags else values
    canonical = json.dumps([kind, request], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def scoped_key(owner: str | None, key: str) -> str:
    """A key as the store keeps it: each principal's keys apart (`""` for anyone's)."""
    name = owner or ""
    return f"{len(name)}:{name}:{key}"
