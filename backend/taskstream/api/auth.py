"""Who is asking (the `Caller`): an optional API-key mode that maps each key to a principal.

Programs send `Authorization: Bearer <key>`. Browsers cannot put a header on an `EventSource`,
so a page trades the key once for a session cookie (`POST /api/session`): HttpOnly (scripts never
read it), SameSite=Strict (other sites' pages cannot send it), signed with SESSION_SECRET and
expiring after SESSION_TTL_SECONDS. A page that is not ours holds no key at all: its backend mints
a watch token (`tokens`) that reads one task or tag. An EventSource sends it as `?access_token=`,
the one credential that travels in a URL; the access logs mask it. With no API_KEYS configured
every request without a token is the same caller (`ANYONE`), who sees every task.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from taskstream.api.caller import ANYONE, Caller
from taskstream.api.problems import responses
from taskstream.api.tokens import Signer, looks_like_token
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


def _bearer_caller(request: Request, settings: Settings, credential: str) -> Caller:
    if looks_like_token(credential):
        signer: Signer = request.app.state.services.signer
        return signer.verify(credential)
    if not settings.auth_required:
        return ANYONE
    name = name_for_key(settings, credential)
    if name is None:
        raise Unauthorized("the API key is not valid")
    return Caller(name)


Authenticator = Callable[[Request], Awaitable[str]]
"""An application's own way to tell who is asking (`create_app(authenticate=...)`): the principal
whose tasks the request may see, or an exception (an `HTTPException(401)`, say) to refuse it.
Watch tokens are still taskstream's own, checked before it is asked."""


async def _caller(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    cookie: str | None,
    access_token: str | None = None,
) -> Caller:
    services = request.app.state.services
    settings: Settings = services.settings
    credential = bearer.credentials.strip() if bearer is not None else ""
    if services.authenticate is not None:
        token = credential if looks_like_token(credential) else access_token
        if token:
            signer: Signer = services.signer
            return signer.verify(token)
        return Caller(await services.authenticate(request))
    if credential:
        return _bearer_caller(request, settings, credential)
    if access_token:
        return _bearer_caller(request, settings, access_token)
    if not settings.auth_required:
        return ANYONE
    if cookie:
        name = read_session(settings, cookie)
        if name is not None:
            return Caller(name)
        raise Unauthorized("the session has expired: sign in again")
    if "access_token" in request.query_params:
        raise Unauthorized(
            "access_token is taken only by the event streams: send a watch token as "
            "Authorization: Bearer <token>"
        )
    raise Unauthorized("send an API key (Authorization: Bearer <key>) or sign in")


# The security schemes, as FastAPI declares them in the OpenAPI description. None of them
# refuses a request itself: with no API_KEYS, a request without credentials is welcome.
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="An API key (API_KEYS), or a watch token, which only reads its task or tag.",
    auto_error=False,
)
SESSION = APIKeyCookie(
    name=COOKIE,
    scheme_name="session",
    description="The browser session that `POST /api/session` sets for an API key.",
    auto_error=False,
)
ACCESS_TOKEN = APIKeyQuery(
    name="access_token",
    scheme_name="accessToken",
    description="A watch token, on the event streams only: an EventSource cannot send headers.",
    auto_error=False,
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
SessionCookie = Annotated[str | None, Security(SESSION)]
AccessToken = Annotated[str | None, Security(ACCESS_TOKEN)]


async def authenticate_reader(request: Request, bearer: Bearer, cookie: SessionCookie) -> Caller:
    return await _caller(request, bearer, cookie)


async def authenticate_stream_reader(
    request: Request, bearer: Bearer, cookie: SessionCookie, access_token: AccessToken
) -> Caller:
    return await _caller(request, bearer, cookie, access_token)


async def authenticate(request: Request, bearer: Bearer, cookie: SessionCookie) -> Caller:
    caller = await _caller(request, bearer, cookie)
    caller.require_unscoped(f"{request.method} {request.url.path}")
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
"""A caller that may act (submit, cancel, list, mint): never a watch token's holder."""
ReaderDep = Annotated[Caller, Depends(authenticate_reader)]
"""A caller that reads one task: a watch token's holder too, within its scope."""
StreamReaderDep = Annotated[Caller, Depends(authenticate_stream_reader)]
"""A caller of an event stream, which may also send its watch token as `?access_token=`."""


def document(app: FastAPI, anonymous: bool) -> None:
    """States in the OpenAPI description what the security schemes mean here: with `anonymous`
    (no API_KEYS) every operation may also be called without credentials (`{}`), and every
    operation that takes credentials may answer 401."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                security = operation.get("security") if isinstance(operation, dict) else None
                if not security:
                    continue
                if anonymous and {} not in security:
                    security.append({})
                if "401" not in operation["responses"]:
                    operation["responses"]["401"] = responses(401)[401]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
