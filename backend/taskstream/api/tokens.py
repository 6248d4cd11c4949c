"""Watch tokens: short-lived, signed permissions to read one task, or a tag's tasks.

A caller that may see a task mints one (`POST /api/tasks/{id}/tokens`) and hands it to a page
that must not hold an API key; the page reads the task, its output and its event stream with it
and can do nothing else. A token is a JSON Web Token (RFC 7519) signed with HMAC-SHA256: its
header names the key id that signed it, its claims the principal who minted it (`sub`), what it
reads (`scope`), and when it expires (`exp`). It is stateless: every API replica with the same
secrets verifies it, and nothing is stored.

Keys rotate without cutting live viewers off: WATCH_TOKEN_SECRETS maps key ids to secrets; the
first signs, every one verifies. Put a new key first, and drop the old one once the tokens it
signed have expired (WATCH_TOKEN_MAX_TTL_SECONDS at most).
"""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from taskstream.api.caller import Caller, Scope
from taskstream.api.models import TokenScope, WatchToken
from taskstream.errors import InvalidRequest, TokenExpired, Unauthorized
from taskstream.settings import Settings

log = logging.getLogger(__name__)

AUDIENCE = "taskstream:watch"
_HEADER_PREFIX = "eyJ"  # base64url of '{"': how a JSON Web Token begins


def looks_like_token(credential: str) -> bool:
    """Whether a bearer credential is a watch token rather than an API key."""
    return credential.startswith(_HEADER_PREFIX) and credential.count(".") == 2


class Signer:
    """Mints and verifies watch tokens with the keys of one process's settings."""

    def __init__(self, settings: Settings, known_principals: bool = True) -> None:
        """`known_principals`: whether API_KEYS names every principal (not so when the
        application that taskstream runs in decides who is asking)."""
        keys = {
            kid: secret.get_secret_value() for kid, secret in settings.watch_token_secrets.items()
        }
        if not keys and settings.session_secret.get_secret_value():
            keys = {"session": settings.session_secret.get_secret_value()}
        if not keys:
            log.warning(
                "WATCH_TOKEN_SECRETS is not set: watch tokens are signed with a secret made at "
                "start-up, which other API processes do not know and a restart forgets"
            )
            keys = {"local": secrets.token_urlsafe(32)}
        self._keys = {kid: secret.encode() for kid, secret in keys.items()}
        self._signing = next(iter(self._keys))
        known = known_principals and settings.auth_required
        self._principals = set(settings.api_keys.values()) if known else None
        self.default_ttl = settings.watch_token_ttl_seconds
        self.max_ttl = settings.watch_token_max_ttl_seconds

    def mint(
        self, caller: Caller, scope: Scope, ttl_seconds: int | None = None, now: float | None = None
    ) -> WatchToken:
        """A token that reads `scope` of `caller`'s tasks for `ttl_seconds` (default if None)."""
        if ttl_seconds is not None and ttl_seconds > self.max_ttl:
            raise InvalidRequest(
                f"ttl_seconds is at most {self.max_ttl} (WATCH_TOKEN_MAX_TTL_SECONDS)",
                field="ttl_seconds",
            )
        issued = int(time.time() if now is None else now)
        expires = issued + (self.default_ttl if ttl_seconds is None else ttl_seconds)
        claims: dict[str, object] = {
            "aud": AUDIENCE,
            "sub": caller.name,
            "iat": issued,
            "exp": expires,
            "scope": {"task_id": scope.task_id} if scope.task_id else {"tag": scope.tag},
        }
        header = {"alg": "HS256", "typ": "JWT", "kid": self._signing}
        signed = f"{_encode(header)}.{_encode(claims)}"
        token = f"{signed}.{_b64(self._sign(self._signing, signed))}"
        at = datetime.fromtimestamp(expires, UTC)
        return WatchToken(
            token=token, expires_at=at, scope=TokenScope(task_id=scope.task_id, tag=scope.tag)
        )

    def verify(self, token: str, now: float | None = None) -> Caller:
        """The scoped caller a token stands for. Raises `Unauthorized` for a token that is
        malformed, tampered with, signed by a key no longer accepted or minted by a principal no
        longer known, and `TokenExpired` for one past its expiry."""
        invalid = Unauthorized("the watch token is not valid", token_refused=True)
        try:
            header_part, claims_part, signature = token.split(".")
            header = json.loads(_unb64(header_part))
            kid = header.get("kid") if isinstance(header, dict) else None
            if header.get("alg") != "HS256" or kid not in self._keys:
                raise invalid
            expected = self._sign(kid, f"{header_part}.{claims_part}")
            if not hmac.compare_digest(_unb64(signature), expected):
                raise invalid
            claims = json.loads(_unb64(claims_part))
            scope_claim = claims["scope"]
            scope = Scope(task_id=scope_claim.get("task_id"), tag=scope_claim.get("tag"))
            expires = int(claims["exp"])
            name = claims["sub"]
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise invalid from exc
        if claims.get("aud") != AUDIENCE or (scope.task_id is None) == (scope.tag is None):
            raise invalid
        if name is not None and not isinstance(name, str):
            raise invalid
        if self._principals is not None and name not in self._principals:
            raise Unauthorized("the watch token's principal is no longer known", token_refused=True)
        if expires <= (time.time() if now is None else now):
            at = datetime.fromtimestamp(expires, UTC).isoformat()
            raise TokenExpired(f"the watch token expired at {at}: ask for a new one")
        return Caller(name, scope)

    def _sign(self, kid: str, signed: str) -> bytes:
        return hmac.new(self._keys[kid], signed.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(value: Mapping[str, object]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())
