"""The worker's own script connections: what they send, and how they recover."""

import os
from pathlib import Path
from unittest import mock

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskstream.events.connection import sync_redis
from taskstream.events.wire import Script, ScriptConnection, command
from taskstream.settings import Settings
from tests.support.processes import RedisServer

ECHO = Script("return {KEYS[1], ARGV[1], #ARGV}")


class Interrupt(BaseException):
    """Like a soft time limit: raised into the code that waits for Redis's reply."""


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert command("SET", "k", "", "é", 12, -1, "a\r\nb") == (
        b"*7\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$2\r\n\xc3\xa9\r\n"
        b"$2\r\n12\r\n$2\r\n-1\r\n$4\r\na\r\nb\r\n"
    )


def test_a_script_runs_and_is_loaded_again_when_redis_forgot_it(client: "redis.Redis") -> None:
    scripts = ScriptConnection(client)
    assert scripts.run(ECHO, ["k"], ["é", 2]) == ["k", "é", 2]
    client.script_flush()
    assert scripts.run(ECHO, ["k"], ["again"]) == ["k", "again", 1]
    scripts.close()


def test_an_interrupted_exchange_leaves_no_reply_behind(client: "redis.Redis") -> None:
    scripts = ScriptConnection(client)
    scripts.run(ECHO, ["k"], ["warm"])
    [conn] = scripts._idle
    # The request goes out, and its reply is never read.
    with mock.patch.object(conn, "read_response", side_effect=Interrupt), pytest.raises(Interrupt):
        scripts.run(ECHO, ["k"], ["first"])
    assert scripts.run(ECHO, ["k"], ["second"]) == ["k", "second", 1]  # not "first"'s reply
    scripts.close()


def test_a_restarted_redis_is_reconnected_to_at_once(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        # No retries configured: only the reconnection of a kept connection gone stale helps.
        client = redis.Redis.from_url(
            server.url, decode_responses=True, retry=Retry(NoBackoff(), 0)
        )
        scripts = ScriptConnection(client)
        assert scripts.run(ECHO, ["k"], ["before"])[1] == "before"
        server.stop()
        server.start()
        assert scripts.run(ECHO, ["k"], ["after"])[1] == "after"  # stale socket, script cache
        scripts.close()
        scripts = ScriptConnection(sync_redis(Settings(redis_url=server.url)))
        assert scripts.run(ECHO, ["k"], ["configured"])[1] == "configured"
        server.stop()
        with pytest.raises(redis.ConnectionError):  # down for good: redis-py's retries, then out
            scripts.run(ECHO, ["k"], ["down"])
    finally:
        server.stop()


def test_a_forked_child_uses_a_connection_of_its_own(client: "redis.Redis") -> None:
    scripts = ScriptConnection(client)
    scripts.run(ECHO, ["k"], ["parent"])
    [conn] = scripts._idle
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            ok = scripts.run(ECHO, ["k"], ["child"])[1] == "child"
            code = 0 if ok and scripts._idle[0] is not conn else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    assert os.read(read, 1) == b"\x00"
    os.waitpid(pid, 0)
    os.close(read)
    assert scripts.run(ECHO, ["k"], ["parent again"])[1] == "parent again"
    assert scripts._idle == [conn]
    scripts.close()
