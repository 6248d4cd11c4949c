"""Who is asking (the `Caller`): an optional API-key mode that maps each key to a principal.

Programs send `Authorization: Bearer <key>`. Browsers cannot put a header on an `EventSource`,
so a page trades the key once for a session cookie (`POST /api/session`): HttpOnly (scripts never
read it), SameSite=Strict (other sites' pages cannot send it), signed with SESSION_SECRET and
expiring after SESSION_TTL_SECONDS. No secret ever travels in a URL, so none lands in an access
log. With no API_KEYS configured every request is the same caller (`ANYONE`), who sees every task.
"""

import base64
import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, Request

from taskstream.api.caller import ANYONE, Caller
from taskstream.errors import Unauthorized
from taskstream.settings import Settings

COOKIE = "taskstream_session"


def name_for_key(settings: Settings, key: str) -> str | None:
    """The principal `key` stands for, if it is one of API_KEYS."""
    for known, name in settings.api_keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            return name
    return None


def _signature(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def issue_session(settings: Settings, key: str, now: float | None = None) -> str:
    """A session for the principal of `key`, which must be valid. It names the key (by a hash),
    so removing the key from API_KEYS ends the sessions it opened."""
    name = name_for_key(settings, key)
    assert name is not None
    expires = int((time.time() if now is None else now) + settings.session_ttl_seconds)
    raw = f"{_key_id(key)}|{expires}|{name}"
    payload = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return f"{payload}.{_signature(settings.session_secret.get_secret_value(), payload)}"


def read_session(settings: Settings, cookie: str, now: float | None = None) -> str | None:
    """The principal a valid, unexpired session cookie was issued for."""
    payload, _, signature = cookie.partition(".")
    expected = _signature(settings.session_secret.get_secret_value(), payload)
    if not signature or not hmac.compare_digest(signature, expected):
        return None
    try:
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        key_id, expires, name = decoded.split("|", 2)
        if int(expires) < (time.time() if now is None else now):
            return None
    except ValueError:
        return None
    for key, named in settings.api_keys.items():
        if named == name and hmac.compare_digest(_key_id(key), key_id):
            return name
    return None


async def authenticate(request: Request) -> Caller:  # async: no thread for a plain check
    settings: Settings = request.app.state.services.settings
    if not settings.auth_required:
        return ANYONE
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key:
        name = name_for_key(settings, key.strip())
        if name is None:
            raise Unauthorized("the API key is not valid")
        return Caller(name)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        name = read_session(settings, cookie)
        if name is not None:
            return Caller(name)
        raise Unauthorized("the session has expired: sign in again")
    raise Unauthorized("send an API key (Authorization: Bearer <key>) or sign in")


CallerDep = Annotated[Caller, Depends(authenticate)]
