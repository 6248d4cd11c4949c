"""The worker's store sends a task's scripts on connections of its own, one call at a time each."""

import threading
from typing import Any

import pytest

from taskstream.events.models import EventDraft, EventType
from taskstream.events.store import SyncEventStore
from tests.events.test_scripts import begin, queue


class Interrupted(BaseException):
    """What a signal handler raises in a worker (a soft time limit, a warm shutdown)."""


def test_an_interrupted_call_leaves_no_reply_for_the_next(
    store: SyncEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = queue(store)
    begin(store, task_id)
    (connection,) = store._idle  # what the calls so far used, and the next one takes
    read = connection.read_response

    def interrupted_read(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(connection, "read_response", read)
        raise Interrupted  # after the command went out, before its reply was read

    monkeypatch.setattr(connection, "read_response", interrupted_read)
    with pytest.raises(Interrupted):
        store.append(progress(task_id))

    # The interrupted progress was written (seq 3), its reply never read: the next call must be
    # answered with its own reply, not with that one.
    assert store.append(progress(task_id)).seq == 4
    task = store.get_task(task_id)
    assert task is not None
    assert task.seq == 4


def test_threads_do_not_share_a_connection(store: SyncEventStore) -> None:
    task_ids = [queue(store) for _ in range(4)]
    for task_id in task_ids:
        begin(store, task_id)
    seqs: dict[str, list[int]] = {task_id: [] for task_id in task_ids}
    started = threading.Barrier(4)

    def write(task_id: str) -> None:
        started.wait()
        for _ in range(200):
            seqs[task_id].append(store.append(progress(task_id)).seq)

    threads = [threading.Thread(target=write, args=(task_id,)) for task_id in task_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert 1 <= len(store._idle) <= 4  # kept for the next calls, never more than were in use
    for task_id in task_ids:  # each reply went to the thread that asked: every seq in order
        assert seqs[task_id] == list(range(3, 203))


def progress(task_id: str) -> EventDraft:
    return EventDraft(task_id=task_id, kind="add", type=EventType.progress)
