"""The one `Settings` class. Built once by `create_app()` or the CLI, never at import time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.services.json_limits import JsonLimits
from app.services.tasks.retry import RetryPolicy

ENV_PREFIX = "JOBSERVER_"
CONTRACT_ENV_PREFIX = "ZNDRAW_JOBLIB_"
MIN_SECRET_LENGTH = 32
# Values shipped in .env.example; the server refuses to run with any of them.
PLACEHOLDER_SECRETS = frozenset({"change-me", "CHANGE-ME-IN-PRODUCTION-SECRET!", "changeme"})
SECRET_FIELDS = frozenset({"secret_key", "default_admin_password", "metrics_token"})
# Embedded mode keeps the secret key it generates in this file under DATA_DIR (bootstrap.py).
GENERATED_SECRET_FILE = "secret-key"


def contract(name: str, default: Any, description: str) -> Any:
    """A contract setting: read as JOBSERVER_<NAME> first, then ZNDRAW_JOBLIB_<NAME>."""
    upper = name.upper()
    return Field(
        default,
        # Order matters: the first name found in the environment wins. The field name
        # itself needs no alias: populate_by_name covers Settings(name=...).
        validation_alias=AliasChoices(f"{ENV_PREFIX}{upper}", f"{CONTRACT_ENV_PREFIX}{upper}"),
        description=description,
        json_schema_extra={"contract": True},
    )


class Settings(BaseSettings):
    """Every knob of the server. Env prefix JOBSERVER_; `.env` is read too."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- storage -------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Embedded mode: SQLite file, secrets")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset = SQLite file under DATA_DIR"
    )
    redis_url: str | None = Field(None, description="Redis URL; unset = embedded mode")
    leader_database_url: str | None = Field(
        None,
        description="PostgreSQL: the leader lock's own connection, straight to PostgreSQL "
        "when DATABASE_URL goes through a transaction-mode pooler; unset = DATABASE_URL",
    )
    db_orm_pool_size: int = Field(
        5, ge=1, description="PostgreSQL: connections the ORM pool keeps open, per process"
    )
    db_orm_max_overflow: int = Field(
        5, ge=0, description="PostgreSQL: extra ORM connections opened under load, per process"
    )
    redis_socket_timeout_seconds: float = Field(
        1.0, gt=0, description="Longest wait for a Redis answer: a hung Redis costs a call this"
    )
    redis_connect_timeout_seconds: float = Field(
        1.0, gt=0, description="Longest wait for a new Redis connection"
    )
    # --- auth ----------------------------------------------------------------
    secret_key: SecretStr | None = Field(
        None, description="JWT signing key; embedded mode generates one under DATA_DIR"
    )
    default_admin_email: str | None = Field(
        None, description="Admin created at start when no account has this email"
    )
    default_admin_password: SecretStr | None = Field(None, description="Password of that admin")
    token_lifetime_seconds: int = Field(3600, ge=1, description="Lifetime of login tokens")
    max_token_lifetime_seconds: int = Field(
        30 * 24 * 3600, ge=1, description="Longest lifetime any minted token may have"
    )
    allow_registration: bool = Field(False, description="Allow POST /v1/auth/register")
    password_min_length: int = Field(
        10, ge=1, description="Shortest password accepted wherever a password is set"
    )
    password_hash_threads: int = Field(
        2, ge=1, description="Threads that hash and verify passwords (off the event loop)"
    )
    login_max_failures_per_account: int = Field(
        10, ge=1, description="Failed logins/registrations of one email per window before 429"
    )
    login_max_failures_per_address: int = Field(
        50, ge=1, description="Failed logins/registrations from one address per window before 429"
    )
    login_failure_window_seconds: int = Field(
        300, ge=1, description="Window of the login and registration throttle"
    )
    socket_auth_check_seconds: float = Field(
        2.0, gt=0, description="How often open Socket.IO connections are checked for revocation"
    )
    auth_cache_seconds: float = Field(
        1.0, ge=0, description="Reuse a token's user lookup this long (0 = every request)"
    )
    # --- serving -------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Bind address of `jobserver serve`")
    port: int = Field(8000, ge=0, le=65535, description="Port of `jobserver serve`")
    log_level: str = Field("info", description="Log level")
    disconnect_grace_seconds: float = Field(
        60.0,
        ge=0,
        description="Socket.IO: wait this long before cleaning up a gone worker "
        "(at least two heartbeat periods of its client: 30 s for JobManager, 15 s SDK)",
    )
    background_enabled: bool = Field(True, description="Run the sweeper loop in this process")
    # --- observability -------------------------------------------------------
    log_format: Literal["console", "json"] = Field(
        "console", description="Log lines: readable `console` or one JSON object a line"
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token that may read /metrics besides admins' tokens"
    )
    cookie_secure: bool = Field(
        False, description="Dashboard: send the session cookie over HTTPS only"
    )
    # --- @internal jobs ------------------------------------------------------
    internal_extensions: str | None = Field(
        None, description="Comma-separated pkg.module:Class of server-side extensions"
    )
    example_extensions: bool = Field(
        False, description="Also run the example @internal extensions (Echo, Sleep)"
    )
    internal_threads: int = Field(
        4, ge=1, description="Threads that run @internal extensions, per process"
    )
    broker_url: str | None = Field(
        None,
        description="taskiq broker of @internal jobs: memory://, redis://, amqp://, nats://, "
        "sqs://QUEUE?region=...; unset = REDIS_URL when set, else memory://",
    )
    internal_dispatch_grace_seconds: float = Field(
        15.0, ge=0, description="Re-send an @internal task not picked up within this time"
    )
    retry_backoff_base_seconds: float = Field(
        2.0, ge=0, description="Retried task due after min(max, base * 2^attempt), jittered"
    )
    retry_backoff_max_seconds: float = Field(3600.0, ge=0, description="Cap of the retry backoff")
    scheduler_interval_seconds: float = Field(
        1.0, gt=0, description="How often the leader wakes workers for tasks that became due"
    )
    schedule_tick_seconds: float = Field(
        1.0, gt=0, description="How often the leader fires the schedules that are due"
    )
    schedule_grace_seconds: float = Field(
        60.0,
        ge=0,
        description="A schedule's fire time at most this old is on time; older ones were missed",
    )
    max_result_bytes: int = Field(
        1_048_576, ge=1, description="Largest task result a worker may report (JSON bytes)"
    )
    task_timeout_grace_seconds: float = Field(
        30.0, ge=0, description="The leader fails a task running past its job's timeout + this"
    )
    claim_lease_seconds: float = Field(
        300.0,
        gt=0,
        description="A claimed task not reported running within this goes back to pending",
    )
    retain_finished_seconds: float = Field(
        7 * 24 * 3600.0,
        ge=0,
        description="The leader deletes finished tasks older than this (0 = keep forever)",
    )
    db_pool_size: int = Field(
        10, ge=1, description="PostgreSQL connections of the task store, per server process"
    )
    # --- limits of what a request may carry (larger: 413 problem) -------------
    max_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1, description="Largest request body, checked before it is parsed"
    )
    max_payload_bytes: int = Field(
        1024 * 1024, ge=1, description="Largest task payload (JSON bytes)"
    )
    max_error_bytes: int = Field(
        64 * 1024, ge=1, description="Largest error text a worker may report (UTF-8 bytes)"
    )
    max_provider_result_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1,
        description="Largest provider result upload (it replaces the body limit there)",
    )
    max_bulk_items: int = Field(1000, ge=1, description="Most tasks in one bulk submit")
    max_json_depth: int = Field(
        64, ge=1, le=250, description="Deepest nesting of a payload, result or schema (else 422)"
    )
    task_read_scope: Literal["all", "own"] = Field(
        "all",
        description="Who reads a task: `all` (the contract) or `own` (operators read only "
        "tasks they submitted or their workers hold; admins and viewers read all)",
    )

    # --- the joblib contract (also read as ZNDRAW_JOBLIB_<NAME>) -------------
    allowed_categories: list[str] = contract(
        "allowed_categories",
        ["modifiers", "selections", "analysis"],
        "Job category allow-list (JSON list)",
    )
    worker_timeout_seconds: int = contract(
        "worker_timeout_seconds", 60, "Heartbeat staleness threshold"
    )
    sweeper_interval_seconds: float = contract("sweeper_interval_seconds", 30, "Sweeper period")
    long_poll_max_wait_seconds: int = contract(
        "long_poll_max_wait_seconds", 60, "Cap for Prefer: wait on GET task"
    )
    claim_max_attempts: int = contract(
        "claim_max_attempts", 10, "Claim retries on database lock errors"
    )
    claim_base_delay_seconds: float = contract(
        "claim_base_delay_seconds", 0.01, "Claim retry backoff base"
    )
    internal_task_timeout_seconds: int = contract(
        "internal_task_timeout_seconds", 3600, "Stuck @internal task threshold"
    )
    allowed_provider_categories: list[str] | None = contract(
        "allowed_provider_categories", None, "Provider category allow-list (JSON list; unset = any)"
    )
    provider_result_ttl_seconds: int = contract(
        "provider_result_ttl_seconds", 300, "Cached provider result lifetime"
    )
    provider_inflight_ttl_seconds: int = contract(
        "provider_inflight_ttl_seconds", 30, "Provider dispatch de-duplication lock lifetime"
    )
    provider_long_poll_default_seconds: int = contract(
        "provider_long_poll_default_seconds", 5, "Provider read wait without Prefer"
    )
    provider_long_poll_max_seconds: int = contract(
        "provider_long_poll_max_seconds", 30, "Cap for Prefer: wait on provider reads"
    )

    @model_validator(mode="after")
    def _token_lifetime_within_maximum(self) -> Settings:
        if self.token_lifetime_seconds > self.max_token_lifetime_seconds:
            raise ValueError(
                f"{ENV_PREFIX}TOKEN_LIFETIME_SECONDS ({self.token_lifetime_seconds}) exceeds "
                f"{ENV_PREFIX}MAX_TOKEN_LIFETIME_SECONDS ({self.max_token_lifetime_seconds})"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        for name in SECRET_FIELDS:
            value: SecretStr | None = getattr(self, name)
            if value is not None and value.get_secret_value() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"{ENV_PREFIX}{name.upper()} is still the placeholder: set a real one"
                )
        return self

    # --- derived -------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'jobserver.db').as_posix()}"

    @property
    def effective_leader_database_url(self) -> str:
        """The leader's advisory lock lives as long as one server session, which a
        transaction-mode pooler does not keep: that connection may bypass it."""
        if self.leader_database_url and not self.is_sqlite:
            return self.leader_database_url
        return self.effective_database_url

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_backoff_base_seconds, self.retry_backoff_max_seconds)

    @property
    def json_limits(self) -> JsonLimits:
        return JsonLimits(
            payload_bytes=self.max_payload_bytes,
            result_bytes=self.max_result_bytes,
            error_bytes=self.max_error_bytes,
            depth=self.max_json_depth,
            bulk_items=self.max_bulk_items,
        )

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url or "memory://"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def embedded(self) -> bool:
        """Embedded mode: SQLite and no Redis; one process owns everything."""
        return self.is_sqlite and self.redis_url is None


def env_lines(settings: Settings, *, show_secrets: bool = False) -> list[str]:
    """The effective settings as lines of a .env file, in the class's order: unset ones
    commented out, lists as JSON, secrets and URL passwords masked unless `show_secrets`.
    A secret key generated for embedded mode is named with the file that keeps it."""
    lines: list[str] = []
    for name in type(settings).model_fields:
        env_name = f"{ENV_PREFIX}{name.upper()}"
        value = getattr(settings, name)
        if name == "secret_key" and value is None:
            lines += _generated_secret_lines(settings, env_name, show_secrets)
        elif value is None:
            lines.append(f"# {env_name}=")
        else:
            lines.append(f"{env_name}={_env_value(name, value, show_secrets)}")
    return lines


def _env_value(name: str, value: Any, show_secrets: bool) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value() if show_secrets else "********"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    if name.endswith("_url") and not show_secrets:
        return mask_url_password(str(value))
    return str(value)


def _generated_secret_lines(settings: Settings, env_name: str, show_secrets: bool) -> list[str]:
    if not settings.is_sqlite:
        return [f"# {env_name}=  (unset: required with PostgreSQL)"]
    path = (settings.data_dir / GENERATED_SECRET_FILE).absolute()
    if not path.exists():
        return [f"# {env_name}=  (unset: generated into {path} at the first start)"]
    note = f"# {env_name} is unset: the key generated for embedded mode is kept in {path}"
    shown = f"{env_name}={path.read_text().strip()}" if show_secrets else f"# {env_name}="
    return [note, shown]


def mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, has_pw, _ = creds.partition(":")
    return f"{scheme}://{user}:****@{host}" if has_pw else url
