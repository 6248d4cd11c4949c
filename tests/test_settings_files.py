"""Secrets read from files (`<NAME>_FILE`, as compose mounts them) and REQUIRE_API_KEYS.

The unit tests read settings as a process would, from its environment; the last tests start real
API and worker processes configured only by files, against a Redis that requires a password.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from taskstream.settings import SECRET_FILE_SETTINGS, Settings, get_settings, settings_or_exit
from tests.support.processes import ApiServer, RedisServer, Worker
from tests.support.waiting import GiveUp, wait_until

KEYS = {"key-alice-0123456789": "alice"}
SESSION_SECRET = "s" * 40
TOKEN_SECRETS = {"2026-12": "t" * 40}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No secret of the machine's own, and no `.env` but the test's."""
    for name in SECRET_FILE_SETTINGS:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(f"{name.upper()}_FILE", raising=False)
    monkeypatch.delenv("REQUIRE_API_KEYS", raising=False)
    monkeypatch.chdir(tmp_path)


def secret_file(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.write_text(content)
    return path


def test_each_secret_is_read_from_its_file_without_the_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = {
        "API_KEYS_FILE": json.dumps(KEYS) + "\n",
        "SESSION_SECRET_FILE": SESSION_SECRET + "\n",
        "WATCH_TOKEN_SECRETS_FILE": json.dumps(TOKEN_SECRETS) + "\r\n",
        "REDIS_URL_FILE": "redis://cache.internal:6380/2\n",
        "EXAMPLE_API_KEY_FILE": "key-alice-0123456789",
    }
    for variable, content in files.items():
        monkeypatch.setenv(variable, str(secret_file(tmp_path, variable.lower(), content)))

    settings = Settings()

    assert settings.api_keys == KEYS
    assert settings.session_secret.get_secret_value() == SESSION_SECRET
    assert {k: v.get_secret_value() for k, v in settings.watch_token_secrets.items()} == (
        TOKEN_SECRETS
    )
    assert settings.redis_url == "redis://cache.internal:6380/2"
    assert settings.example_api_key.get_secret_value() == "key-alice-0123456789"


def test_a_file_is_named_in_the_dotenv_file_too(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "session_secret", SESSION_SECRET + "\n")
    (tmp_path / ".env").write_text(f"SESSION_SECRET_FILE={path}\n")

    assert Settings().session_secret.get_secret_value() == SESSION_SECRET


def test_the_redis_password_goes_into_the_url_percent_encoded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = secret_file(tmp_path, "redis_password", "p@ss:w/rd%\n")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(path))
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")

    assert Settings().redis_url == "redis://:p%40ss%3Aw%2Frd%25@redis:6379/0"
    # A user name in the URL stays (Redis 6 ACL users).
    monkeypatch.setenv("REDIS_URL", "rediss://taskstream@redis:6380/1")
    assert Settings().redis_url == "rediss://taskstream:p%40ss%3Aw%2Frd%25@redis:6380/1"


def test_a_password_in_the_url_and_another_in_redis_password_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:one@redis:6379/0")
    monkeypatch.setenv("REDIS_PASSWORD", "two")

    with pytest.raises(ValidationError, match="REDIS_URL has a password and REDIS_PASSWORD"):
        Settings()


@pytest.mark.parametrize("plain_in", ["environment", "dotenv"])
def test_a_file_and_the_plain_variable_together_are_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, plain_in: str
) -> None:
    monkeypatch.setenv("SESSION_SECRET_FILE", str(secret_file(tmp_path, "s", SESSION_SECRET)))
    if plain_in == "environment":
        monkeypatch.setenv("SESSION_SECRET", "x" * 40)
    else:
        (tmp_path / ".env").write_text(f"SESSION_SECRET={'x' * 40}\n")

    with pytest.raises(SettingsError, match="SESSION_SECRET_FILE and SESSION_SECRET are both set"):
        Settings()


@pytest.mark.parametrize(
    ("name", "reason"), [("missing", "No such file or directory"), (".", "Is a directory")]
)
def test_an_unreadable_file_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, reason: str
) -> None:
    path = tmp_path / name
    monkeypatch.setenv("API_KEYS_FILE", str(path))

    with pytest.raises(
        SettingsError, match=re.escape(f"API_KEYS_FILE: cannot read {path}: {reason}")
    ):
        Settings()


def test_a_json_secret_that_is_not_json_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = secret_file(tmp_path, "api_keys", "key-alice-0123456789=alice\n")
    monkeypatch.setenv("API_KEYS_FILE", str(path))

    with pytest.raises(SettingsError, match=re.escape(f"API_KEYS_FILE: {path} is not valid JSON")):
        Settings()


def test_entry_points_print_the_problem_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SESSION_SECRET_FILE", str(tmp_path / "missing"))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exited:
            settings_or_exit()
    finally:
        get_settings.cache_clear()

    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"taskstream: invalid settings: SESSION_SECRET_FILE: cannot read {tmp_path / 'missing'}: "
        "No such file or directory\n"
    )


@pytest.mark.parametrize(
    "present",
    [{}, {"API_KEYS": json.dumps(KEYS)}, {"SESSION_SECRET": SESSION_SECRET}],
    ids=["neither", "keys-only", "secret-only"],
)
def test_require_api_keys_refuses_settings_without_keys_and_a_session_secret(
    monkeypatch: pytest.MonkeyPatch, present: dict[str, str]
) -> None:
    monkeypatch.setenv("REQUIRE_API_KEYS", "true")
    for name, value in present.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match="REQUIRE_API_KEYS is true: set API_KEYS"):
        Settings()


def test_require_api_keys_accepts_keys_with_a_session_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUIRE_API_KEYS", "true")
    monkeypatch.setenv("API_KEYS", json.dumps(KEYS))
    monkeypatch.setenv("SESSION_SECRET", SESSION_SECRET)

    assert Settings().auth_required


# -- real processes ---------------------------------------------------------------------------


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password=secrets.token_hex(16))
    server.start()
    yield server
    server.stop()


def production_files(directory: Path, redis_password: str) -> dict[str, str]:
    """What docker-compose.yml hands the API: every secret as a file, and no open mode."""
    files = {
        "API_KEYS_FILE": json.dumps(KEYS),
        "SESSION_SECRET_FILE": SESSION_SECRET,
        "WATCH_TOKEN_SECRETS_FILE": json.dumps(TOKEN_SECRETS),
        "REDIS_PASSWORD_FILE": redis_password,
    }
    secrets_dir = directory / "secrets"
    secrets_dir.mkdir()
    return {
        variable: str(secret_file(secrets_dir, variable.lower(), content + "\n"))
        for variable, content in files.items()
    }


def token_signed_with(token: str, key_id: str, secret: str) -> bool:
    header, claims, signature = token.split(".")
    padded = header + "=" * (-len(header) % 4)
    if json.loads(base64.urlsafe_b64decode(padded))["kid"] != key_id:
        return False
    expected = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature


def test_api_and_worker_configured_by_files_enforce_the_keys(
    redis_with_password: RedisServer, tmp_path: Path
) -> None:
    # No password in the URL: it comes from REDIS_PASSWORD_FILE alone.
    url = f"redis://127.0.0.1:{redis_with_password.port}/0"
    assert redis_with_password.password is not None
    files = production_files(tmp_path, redis_with_password.password)
    redis_file = {"REDIS_PASSWORD_FILE": files["REDIS_PASSWORD_FILE"]}
    worker = Worker(url, tmp_path, env=redis_file)
    api = ApiServer(url, tmp_path, env={**files, "REQUIRE_API_KEYS": "true"})
    try:
        worker.start(redis_with_password.client())
        api.start()
        with httpx.Client(base_url=api.url, timeout=15) as http:
            assert http.get("/api/tasks").status_code == 401
            assert http.get("/api/tasks", headers={"Authorization": "Bearer nope"}).status_code == (
                401
            )
            alice = {"Authorization": "Bearer key-alice-0123456789"}
            body = {"kind": "add", "params": {"x": 2, "y": 3}, "watch_token": True}
            submitted = http.post("/api/tasks", json=body, headers=alice)
            assert submitted.status_code == 202, submitted.text
            task = submitted.json()
            assert task["owner"] == "alice"
            # Signed with the first secret of WATCH_TOKEN_SECRETS_FILE.
            assert token_signed_with(
                task["watch_token"]["token"], "2026-12", TOKEN_SECRETS["2026-12"]
            )

            def succeeded() -> bool:
                found = http.get(f"/api/tasks/{task['id']}", headers=alice).json()
                return bool(found["state"] == "succeeded" and found["result"] == 5)

            wait_until(succeeded, 60, message="the worker to run the task")
            # The session cookie is signed with SESSION_SECRET_FILE's secret: signing in works.
            session = http.post("/api/session", json={"api_key": "key-alice-0123456789"})
            assert session.status_code == 204, session.text
            assert http.get("/api/tasks").status_code == 200  # the cookie alone now
    finally:
        api.stop()
        worker.stop()


def test_api_with_require_api_keys_and_no_keys_exits_with_the_reason(
    redis_with_password: RedisServer, tmp_path: Path
) -> None:
    api = ApiServer(redis_with_password.url, tmp_path, env={"REQUIRE_API_KEYS": "true"})

    with pytest.raises(GiveUp, match="REQUIRE_API_KEYS is true: set API_KEYS and SESSION_SECRET"):
        api.start()
    assert api.stop() == 2
    assert "Traceback" not in api.process.log_path.read_text()


def test_api_with_a_missing_secret_file_exits_naming_the_variable(
    redis_with_password: RedisServer, tmp_path: Path
) -> None:
    missing = tmp_path / "secrets" / "api_keys"
    env = {"API_KEYS_FILE": str(missing), "SESSION_SECRET": SESSION_SECRET}
    api = ApiServer(redis_with_password.url, tmp_path, env=env)

    with pytest.raises(GiveUp, match=re.escape(f"API_KEYS_FILE: cannot read {missing}")):
        api.start()
    assert api.stop() == 2
    assert "Traceback" not in api.process.log_path.read_text()
