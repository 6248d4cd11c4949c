"""Prometheus metrics at /metrics: clients come and go, submissions and durations are counted."""

from tests.support.sse import of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def scrape(stack: Stack) -> dict[str, float]:
    response = stack.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_follow_clients_submissions_and_outcomes(stack: Stack) -> None:
    before = scrape(stack)
    streams = [stack.events().open() for _ in range(3)]
    try:
        wait_until(
            lambda: scrape(stack)["taskstream_sse_clients"] == before["taskstream_sse_clients"] + 3,
            20,
            message="three more clients counted",
        )
        task = stack.submit("add", x=1, y=1)
        for stream in streams:
            stream.wait_for(lambda ms: len(of_task(task["id"])(ms)) == 3)
    finally:
        for stream in streams:
            stream.close()

    # Clients that go away free what they held.
    def released() -> dict[str, float] | None:
        metrics = scrape(stack)
        gone = metrics["taskstream_sse_clients"] == before["taskstream_sse_clients"]
        return metrics if gone else None

    after = wait_until(released, 20, message="the clients to be released")
    assert after is not None
    key = 'taskstream_submissions_total{kind="add"}'
    assert after[key] == before.get(key, 0) + 1
    count = 'taskstream_task_seconds_count{kind="add",state="succeeded"}'
    assert after[count] >= before.get(count, 0) + 1
    delivered = (
        after["taskstream_events_delivered_total"] - before["taskstream_events_delivered_total"]
    )
    assert delivered >= 9  # three events to each of three clients
    assert after["taskstream_events_published_total"] > before["taskstream_events_published_total"]
    assert 0 <= after["taskstream_reader_lag_seconds"] < 60
