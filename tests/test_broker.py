"""The messages the API pushes itself are the messages kombu would publish."""

import base64
import json
from typing import Any

import redis

from taskstream.broker import make_celery, message, send
from taskstream.kinds import load
from taskstream.settings import Settings
from tests.support.processes import RedisServer

VARYING = {"origin", "reply_to", "delivery_tag"}  # per process or per message by design


def strip(envelope: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(base64.b64decode(envelope.pop("body")))
    headers = {k: v for k, v in envelope.pop("headers").items() if k not in VARYING}
    properties = {k: v for k, v in envelope.pop("properties").items() if k not in VARYING}
    return {**envelope, "body": body, "headers": headers, "properties": properties}


def test_our_message_matches_what_kombu_publishes(tmp_path: Any) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        settings = Settings(redis_url=server.url, task_queues={"long": "slow"})
        kinds = load()
        app = make_celery(settings, kinds)
        kind = kinds.get("long")
        assert kind is not None
        send(app, settings, kind, "t" * 32, 35.0, dispatch=3)
        client = redis.Redis(port=server.port, decode_responses=True)
        published = json.loads(str(client.lpop("slow")))
        queue, ours = message(app, settings, kind, "t" * 32, 35.0, dispatch=3)
        assert queue == "slow"
        assert strip(json.loads(ours)) == strip(published)
        client.close()
        app.close()
    finally:
        server.stop()
