"""Baseline 1, the original demo's design: Flask under gunicorn with gevent workers.

gunicorn -k gevent -w 1 --worker-connections 20000 bench.baselines.flask_app:app

`POST /api/tasks` queues the pub/sub Celery task; each `GET /api/events` client runs a generator
with its own Redis pub/sub subscription, forwarding every message the tasks publish. The pool is
sized for one connection per client (redis-py's default of 100 fails at the 101st client).
"""

import json
import os
import uuid
from collections.abc import Iterator

import redis
from flask import Flask, Response, jsonify, request

from bench.baselines.celery_app import CHANNEL, add_pubsub

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MAX_CONNECTIONS = int(os.environ.get("REDIS_MAX_CONNECTIONS", "20000"))

app = Flask(__name__)
pool = redis.ConnectionPool.from_url(REDIS_URL, max_connections=MAX_CONNECTIONS)
client = redis.Redis(connection_pool=pool)


@app.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@app.post("/api/tasks")
def submit() -> tuple[Response, int]:
    body = request.get_json(silent=True) or {}
    params = body.get("params") or {}
    if body.get("kind") != "add" or not isinstance(params, dict):
        return jsonify(detail="only kind 'add' is served here"), 422
    try:
        x, y = float(params["x"]), float(params["y"])
    except (KeyError, TypeError, ValueError):
        return jsonify(detail="params.x and params.y must be numbers"), 422
    task_id = uuid.uuid4().hex
    add_pubsub.apply_async(args=(x, y), task_id=task_id)
    return jsonify(id=task_id, kind="add", state="queued"), 202


@app.get("/api/events")
def events() -> Response:
    def stream() -> Iterator[str]:
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(CHANNEL)
        try:
            yield "retry: 2000\n\n"
            for message in pubsub.listen():
                data = message["data"].decode()
                event = json.loads(data)
                yield f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"
        finally:
            pubsub.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream(), mimetype="text/event-stream", headers=headers)
