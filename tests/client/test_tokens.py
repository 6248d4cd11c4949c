"""Watch tokens through the client: mint them, read with one, and an expired one refused."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from taskstream.api.caller import Caller, Scope
from taskstream.api.tokens import Signer
from taskstream.client import (
    Client,
    Event,
    Forbidden,
    NotFound,
    TaskState,
    TokenExpired,
    Unauthorized,
)
from taskstream.settings import Settings
from tests.client.conftest import FAST, KEYS, OWNER_KEY, TOKEN_SECRETS
from tests.support.processes import ApiServer


def signer() -> Signer:
    """What the secured API signs with: a token made here is one it made."""
    secrets = {kid: SecretStr(secret) for kid, secret in TOKEN_SECRETS.items()}
    settings = Settings(
        api_keys=KEYS, session_secret=SecretStr("s" * 40), watch_token_secrets=secrets
    )
    return Signer(settings)


def test_a_watch_token_reads_its_task_and_nothing_more(secured: ApiServer) -> None:
    tag = f"client-{uuid.uuid4().hex[:12]}"
    with Client(secured.url, api_key=OWNER_KEY, reconnect=FAST) as owner:
        task = owner.submit("add", {"x": 4, "y": 5}, tags=[tag], watch_token=True)
        other = owner.submit("add", {"x": 0, "y": 0})
        minted = owner.create_token(task.id, ttl_seconds=60)
        for_tag = owner.create_tag_token(tag)
    assert task.watch_token is not None
    assert task.watch_token.scope.task_id == task.id
    assert minted.scope.task_id == task.id
    assert for_tag.scope.tag == tag
    soon = datetime.now(UTC) + timedelta(seconds=60)
    assert soon - timedelta(seconds=10) < minted.expires_at <= soon + timedelta(seconds=1)

    for token in (task.watch_token.token, minted.token):
        with Client(secured.url, token=token, reconnect=FAST) as viewer:
            assert viewer.wait(task.id, timeout=30).result == 9
            assert viewer.get(task.id).state is TaskState.succeeded
            assert viewer.output(task.id).task_id == task.id
            events = [item for item in viewer.watch(task.id) if isinstance(item, Event)]
            assert [e.type for e in events] == ["queued", "started", "succeeded"]
            with pytest.raises(NotFound):
                viewer.get(other.id)
            with pytest.raises(Forbidden) as refused:
                viewer.cancel(task.id)
            assert refused.value.status == 403
            with pytest.raises(Forbidden):
                viewer.submit("add", {"x": 1, "y": 1})
    with Client(secured.url, token=for_tag.token, reconnect=FAST) as tag_viewer:
        assert [t.id for t in tag_viewer.list(tag=tag)] == [task.id]


def test_an_expired_token_is_token_expired(secured: ApiServer) -> None:
    task_id = uuid.uuid4().hex  # a token is refused before its task is looked for
    scope = Scope(task_id=task_id)
    expired = signer().mint(Caller("client-owner"), scope, 60, now=time.time() - 120).token
    with Client(secured.url, token=expired, reconnect=FAST) as late:
        with pytest.raises(TokenExpired) as raised:
            late.get(task_id)
        assert isinstance(raised.value, Unauthorized)
        assert (raised.value.status, raised.value.code) == (401, "token_expired")
        assert "expired" in raised.value.detail
        with pytest.raises(TokenExpired):
            next(late.watch(task_id))  # a stream does not wait for a token to mend
