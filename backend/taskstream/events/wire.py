"""The worker's Lua scripts, sent straight down connections of the worker's own.

Every task costs the worker two scripts (its start and its outcome), and redis-py's client spent
more Python on each than Redis spends running it: a pool checkout that polls the socket for
stale data, retry and observability wrappers around every command, an encoder that inspects each
argument. Here a script is one prepared RESP command on a connection that stays checked out of
the client's pool, and what matters of that machinery is kept: the connection's health check,
an immediate reconnection when Redis restarted, then redis-py's own retries (each script carries
a token, so a repeat is safe), the script loaded again when Redis has forgotten it, and a
connection whose exchange was cut short (say by a task's soft time limit) disconnected, never
reused with a reply pending.
"""

import hashlib
import os
from typing import Any, Protocol, cast

import redis
from redis.exceptions import NoScriptError
from redis.retry import Retry


class _Connection(Protocol):
    """What this uses of a redis-py connection (whose methods are not annotated)."""

    retry: Retry

    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None: ...

    def read_response(self) -> Any: ...

    def disconnect(self) -> None: ...


def command(*args: str | int) -> bytes:
    """`args` as one RESP array of bulk strings, as redis-py would send them (UTF-8, strict)."""
    chunks = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else b"%d" % arg
        chunks.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(chunks)


class Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class ScriptConnection:
    """Runs scripts on connections kept out of `client`'s pool: one per script running at once
    (so one per pool process, or per thread of a threaded worker), each process its own."""

    def __init__(self, client: "redis.Redis") -> None:
        self._pool = client.connection_pool
        self._pid = os.getpid()
        self._idle: list[_Connection] = []

    def run(self, script: Script, keys: list[str], args: list[str | int]) -> Any:
        request = command("EVALSHA", script.sha, len(keys), *keys, *args)
        conn = self._checkout()
        try:
            try:
                return _exchange(conn, request)
            except NoScriptError:  # Redis restarted, or its script cache was flushed
                _exchange(conn, command("SCRIPT", "LOAD", script.source))
                return _exchange(conn, request)
        finally:
            self._idle.append(conn)

    def _checkout(self) -> _Connection:
        if self._pid != os.getpid():  # a forked child: its parent's sockets are not its own
            self._pid, self._idle = os.getpid(), []
        try:
            return self._idle.pop()
        except IndexError:
            return cast(_Connection, self._pool.get_connection())

    def close(self) -> None:
        while self._idle:
            self._idle.pop().disconnect()


def _exchange(conn: _Connection, request: bytes) -> Any:
    def attempt() -> Any:
        try:
            conn.send_packed_command([request])
            return conn.read_response()
        except redis.ResponseError:
            raise  # Redis's answer, read whole: the connection is in step
        except BaseException:
            conn.disconnect()  # whatever cut the exchange short, drop what is left of it
            raise

    try:
        return attempt()
    except (redis.ConnectionError, redis.TimeoutError):
        # A kept connection goes stale when Redis restarts: reconnect at once (as the pool does
        # on checkout), then retry as redis-py would.
        return conn.retry.call_with_retry(attempt, lambda _error: conn.disconnect())
