"""Session cookies as plain logic: signed, expiring, and ended with the key that opened them."""

from pydantic import SecretStr

from taskstream.api.auth import issue_session, name_for_key, read_session
from taskstream.settings import Settings

SECRET = SecretStr("x" * 40)


def settings(**keys: str) -> Settings:
    return Settings(api_keys=keys, session_secret=SECRET, session_ttl_seconds=60)


def test_a_session_names_its_principal_until_it_expires() -> None:
    config = settings(k1="alice")
    cookie = issue_session(config, "k1", now=1000)
    assert read_session(config, cookie, now=1059) == "alice"
    assert read_session(config, cookie, now=1061) is None


def test_a_forged_or_resigned_session_is_refused() -> None:
    config = settings(k1="alice")
    cookie = issue_session(config, "k1", now=1000)
    payload, _, _signature = cookie.partition(".")
    assert read_session(config, payload + ".AAAA", now=1000) is None
    other = Settings(api_keys={"k1": "alice"}, session_secret=SecretStr("y" * 40))
    assert read_session(other, cookie, now=1000) is None
    assert read_session(config, "garbage", now=1000) is None


def test_removing_a_key_ends_the_sessions_it_opened() -> None:
    cookie = issue_session(settings(k1="alice", k2="alice"), "k1", now=1000)
    assert read_session(settings(k2="alice"), cookie, now=1000) is None
    assert read_session(settings(k1="alice"), cookie, now=1000) == "alice"
    assert name_for_key(settings(k1="alice"), "k2") is None
