"""Each error the API answers, raised as the client's exception for it, with what it said."""

import concurrent.futures

import httpx
import pytest

from taskstream.client import (
    Client,
    ClientError,
    Conflict,
    Event,
    InvalidRequest,
    NotFound,
    RateLimited,
    Reconnect,
    TokenExpired,
    TransportError,
    Unauthorized,
    Unavailable,
)
from tests.client.conftest import FLOOD_KEY, OWNER_KEY, SUBMIT_RATE, async_client
from tests.conftest import StackFactory
from tests.support.loops import run_apart
from tests.support.processes import ApiServer, free_port
from tests.support.stack import Stack
from tests.support.waiting import wait_until

NO_TASK = "0" * 32


def test_an_unknown_task_is_not_found_with_its_problem_details(client: Client) -> None:
    with pytest.raises(NotFound) as raised:
        client.get(NO_TASK)
    error = raised.value
    assert (error.status, error.code) == (404, "not_found")
    assert NO_TASK in error.detail
    assert error.problem is not None
    assert error.problem.title
    for call in (client.output, client.cancel):
        with pytest.raises(NotFound):
            call(NO_TASK)
    with pytest.raises(NotFound):
        next(client.watch(NO_TASK))


def test_async_errors_are_the_same_tree(stack: Stack) -> None:
    async def scenario() -> type[ClientError]:
        async with async_client(stack.api.url) as client:
            try:
                await client.get(NO_TASK)
            except ClientError as exc:
                return type(exc)
        raise AssertionError("no error")

    assert run_apart(scenario()) is NotFound


def test_cancelling_a_finished_task_is_a_conflict(client: Client) -> None:
    task = client.wait(client.submit("add", {"x": 1, "y": 1}).id, timeout=30)
    with pytest.raises(Conflict) as raised:
        client.cancel(task.id)
    assert (raised.value.status, raised.value.code) == (409, "task_finished")


def test_bad_params_are_an_invalid_request_naming_each_field(client: Client) -> None:
    with pytest.raises(InvalidRequest) as raised:
        client.submit("add", {"x": "two", "z": 1})
    assert raised.value.status == 422
    assert {e.field for e in raised.value.errors} == {"params.x", "params.y", "params.z"}
    with pytest.raises(InvalidRequest):
        client.submit("no-such-kind")
    with pytest.raises(InvalidRequest) as malformed:
        client.get("not-a-task-id")
    assert [e.field for e in malformed.value.errors] == ["path.task_id"]


def test_submitting_past_the_rate_is_rate_limited_with_retry_after(secured: ApiServer) -> None:
    with Client(secured.url, api_key=FLOOD_KEY) as client:
        for n in range(SUBMIT_RATE):
            client.submit("add", {"x": n, "y": 0})
        with pytest.raises(RateLimited) as raised:
            client.submit("add", {"x": 0, "y": 0})
    assert raised.value.status == 429
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 0


def test_a_wrong_key_is_unauthorized_and_not_an_expired_token(secured: ApiServer) -> None:
    for client in (Client(secured.url, api_key="wrong"), Client(secured.url)):
        with client, pytest.raises(Unauthorized) as raised:
            client.get(NO_TASK)
        assert not isinstance(raised.value, TokenExpired)
        assert (raised.value.status, raised.value.code) == (401, "unauthorized")
    with Client(secured.url, api_key="wrong") as client, pytest.raises(Unauthorized):
        next(client.watch_events())
    with Client(secured.url, api_key=OWNER_KEY) as client, pytest.raises(NotFound):
        client.get(NO_TASK)  # the right key gets past


def test_redis_away_is_unavailable_and_a_watch_waits_for_it(make_stack: StackFactory) -> None:
    private = make_stack(appendonly=True, api_env={"SSE_RETRY_MS": "100"})
    refusals: list[int] = []

    def count_refusals(response: httpx.Response) -> None:
        if response.url.path.endswith("/events") and response.status_code == 503:
            refusals.append(503)

    patient = Reconnect(first_delay=0.05, max_delay=0.3, give_up_after=None)
    http = httpx.Client(event_hooks={"response": [count_refusals]})
    with http, Client(private.api.url, reconnect=patient, http=http) as client:
        task = client.submit("add", {"x": 20, "y": 22})
        client.wait(task.id, timeout=30)
        private.redis.stop()
        wait_until(lambda: private.http.get("/readyz").status_code == 503, 30, message="503")
        with pytest.raises(Unavailable) as raised:
            client.submit("add", {"x": 1, "y": 1})
        assert raised.value.status == 503
        assert raised.value.retry_after is not None
        assert raised.value.retry_after > 0
        with pytest.raises(Unavailable):
            client.get(task.id)
        impatient = Reconnect(first_delay=0.05, max_delay=0.1, give_up_after=0.5)
        with (
            Client(private.api.url, reconnect=impatient) as giving_up,
            pytest.raises(Unavailable),
        ):
            next(giving_up.watch(task.id))  # tried again and again, then gave up

        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            watching = thread.submit(lambda: list(client.watch(task.id)))
            wait_until(lambda: len(refusals) >= 2, 30, message="the watch to be refused twice")
            private.redis.start()
            events = watching.result(timeout=60)
    assert [e.seq for e in events if isinstance(e, Event)] == [1, 2, 3]
    assert [type(e) for e in events] == [Event] * 3


def test_an_unreachable_api_is_a_transport_error_after_retries() -> None:
    once = Reconnect(first_delay=0.01, max_delay=0.05, give_up_after=0.3)
    with Client(f"http://127.0.0.1:{free_port()}", reconnect=once, timeout=2) as client:
        with pytest.raises(TransportError) as raised:
            client.get(NO_TASK)
        assert raised.value.status is None
        assert raised.value.__cause__ is not None
        with pytest.raises(TransportError):
            next(client.watch_events())
