"""Redis restarts (append-only persistence): everything reconnects by itself and nothing is lost."""

from tests.conftest import StackFactory
from tests.support.waiting import wait_until


def test_redis_restart_loses_no_task_and_no_event(make_stack: StackFactory) -> None:
    stack = make_stack(appendonly=True)
    running = stack.submit("long", seconds=6)
    stack.wait_state(running["id"], "running")
    waiting = [stack.submit("long", seconds=1)["id"] for _ in range(4)]  # two slots: some wait

    stack.redis.stop()  # a clean restart: SIGTERM, the append-only file is flushed
    wait_until(lambda: stack.http.get("/readyz").status_code == 503, 30, message="readyz 503")
    refused = stack.http.post("/api/tasks", json={"kind": "add", "params": {"x": 1, "y": 2}})
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0

    stack.redis.start()
    wait_until(lambda: stack.http.get("/readyz").status_code == 200, 60, message="ready again")
    for task_id in [running["id"], *waiting]:
        stack.wait_state(task_id, "succeeded", timeout=90)
    with stack.events(f"/api/tasks/{running['id']}/events") as stream:
        stream.wait_ended(30)
    events = [m.json() for m in stream.messages]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events if e["type"] not in ("progress", "log")] == [
        "queued",
        "started",
        "succeeded",
    ]
    steps = [e["progress"]["current"] for e in events if e["type"] == "progress"]
    assert steps == [0, 1, 2, 3, 4, 5, 6]  # every step once, none lost, none twice
    logged = [e["log"]["message"] for e in events if e["type"] == "log"]
    assert logged == [f"step {n} of 6 done" for n in range(1, 7)]
