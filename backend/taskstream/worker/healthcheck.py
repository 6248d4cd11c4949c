"""Exit 0 when a worker on this host has a fresh heartbeat (for container healthchecks)."""

import socket
import sys
import time

from taskstream.events.connection import sync_redis
from taskstream.events.keys import Keys
from taskstream.settings import get_settings


def main() -> int:
    settings = get_settings()
    client = sync_redis(settings)
    since = time.time() - settings.worker_stale_seconds
    workers = client.zrangebyscore(Keys(settings.key_prefix).workers, since, "+inf")
    host = socket.gethostname()
    # names are "<node>@<host>/<pid>"
    alive = [str(name) for name in workers if str(name).split("/")[0].endswith(f"@{host}")]
    print("alive: " + ", ".join(alive) if alive else f"no live worker on {host}")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
