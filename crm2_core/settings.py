"""The core's settings, read from ``CRM2_*`` environment variables (and ``.env``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm2_core.errors import ConfigurationError

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    """Every core setting; ``env.example`` lists each one (a test keeps them in step)."""

    model_config = SettingsConfigDict(
        env_prefix="CRM2_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Environment = Field(
        "development",
        description="development, test or production; only development allows demo secrets",
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./crm2.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    database_pool_size: int = Field(
        10,
        ge=1,
        le=200,
        description="connections per process (PostgreSQL); requests beyond it wait for one",
    )
    database_pre_ping: bool = Field(
        False,
        description="test each pooled PostgreSQL connection before use (3 extra round trips "
        "per request); off: a dropped connection fails one request, then the pool refreshes",
    )
    redis_url: str | None = Field(
        None, description="redis://… for login throttling and fan-out; unset = in-process"
    )
    rate_limit_per_minute: int = Field(
        0,
        ge=0,
        description="requests per minute per user, API key or anonymous client IP "
        "(0 = no limit); shared by every process through Redis when CRM2_REDIS_URL is set",
    )
    rate_limit_burst: int = Field(
        0, ge=0, description="requests allowed at once before the rate applies (0 = one minute's)"
    )
    redis_prefix: str = Field("crm2:", description="prefix of every Redis key crm2 writes")
    trusted_proxies: str = Field(
        "",
        description="comma-separated proxy addresses or networks whose X-Forwarded-For is "
        "believed (e.g. 10.0.0.0/8); empty = none, the connection's address is the client's",
    )
    plugins: str | None = Field(
        None, description="comma-separated plugins to enable; unset = every installed plugin"
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="largest request body accepted, in bytes (413 above)"
    )
    max_upload_bytes: int = Field(
        33_554_432,
        ge=1024,
        description="largest file upload (multipart/form-data, e.g. a CSV import), in bytes",
    )
    page_max_limit: int = Field(
        200, ge=1, le=10_000, description="largest page a list endpoint returns"
    )
    idempotency_ttl_seconds: int = Field(
        86_400, ge=3600, description="how long Idempotency-Key responses are kept"
    )
    idempotency_wait_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="how long a repeated Idempotency-Key waits for the first request (409 after)",
    )
    broker_url: str = Field(
        "memory://",
        description="memory:// (handlers run inside crm2 serve), amqp://… (RabbitMQ) or redis://…",
    )
    broker_queue_prefix: str = Field(
        "crm2",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,40}$",
        description="prefix of broker queue names",
    )
    broker_management_url: str = Field(
        "",
        description=(
            "RabbitMQ management API (http://user:password@host:15672) that `crm2 broker setup`"
            " uses for the vhost, permissions and policies; empty: rabbitmqctl on this machine"
        ),
    )
    broker_queue_max_length: int = Field(
        1_000_000,
        ge=0,
        description=(
            "RabbitMQ: messages a plugin's queue holds before publishing is refused"
            " (policy set by `crm2 broker setup`; the relay retries); 0: no limit"
        ),
    )
    broker_dead_letter_max_length: int = Field(
        100_000,
        ge=1,
        description=(
            "RabbitMQ: messages kept in a queue's dead-letter queue (<queue>.XQ), oldest dropped"
        ),
    )
    relay_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="how often the relay looks for unsent events when idle"
    )
    relay_batch_size: int = Field(
        200, ge=1, le=10_000, description="events the relay moves per batch"
    )
    relay_skips_batch_size: int = Field(
        4,
        ge=0,
        le=100,
        description=(
            "PostgreSQL: batches up to this many events have the handlers' skips asked by"
            " the relay, which records a skipped event instead of sending or queueing it"
            " (0: the handlers' deliveries ask)"
        ),
    )
    events_retention_days: int = Field(30, ge=1, description="how long the event log keeps events")
    handler_concurrency: int = Field(
        4, ge=1, le=64, description="handlers run at once by the in-process (memory://) broker"
    )
    sse_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="seconds between heartbeat comments on SSE streams"
    )
    sse_token_ttl_seconds: int = Field(
        60, ge=5, le=3600, description="lifetime of a stream token (POST /api/v1/streams/token)"
    )
    sse_queue_size: int = Field(
        1000, ge=1, le=100_000, description="events a stream may fall behind before it is cut"
    )
    sse_max_connection_seconds: float = Field(
        3600.0, gt=0, description="an SSE connection is ended (to reconnect) after this long"
    )
    sse_max_connections_per_principal: int = Field(
        32,
        ge=0,
        description="SSE streams one user or API key may hold open in one process; one more "
        "is 429 (0 = no limit)",
    )
    sse_max_connections: int = Field(
        5000,
        ge=0,
        description="SSE streams one server process holds open at most, for all principals "
        "together; one more is 503 with Retry-After (0 = no limit). Keep it under the "
        "process's open-file limit (ulimit -n)",
    )
    sse_max_replay_events: int = Field(
        10_000,
        ge=0,
        description="a stream resumed from a Last-Event-ID more than this many log positions "
        "behind is not replayed: it gets a reset event (reload your data) and goes on live "
        "(0 = replay everything)",
    )
    scheduler_enabled: bool = Field(
        True, description="run the plugins' scheduled jobs in this process (one run per due job)"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text (one readable line) or json (one object per line, with request id, "
        "principal, plugin, event and handler)",
    )
    admin_email: str | None = Field(
        None, description="first admin created by `crm2 serve` when there are no users"
    )
    admin_password: SecretStr | None = Field(
        None, description="its password; generated and printed once when unset (development)"
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.split(":///", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB"
                " (sqlite:/// and postgresql:// are accepted too)"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        from crm2_core.networks import parse_networks

        parse_networks(value)
        return value

    @property
    def enabled_plugins(self) -> list[str] | None:
        """The ``CRM2_PLUGINS`` allow-list, or ``None`` for every installed plugin."""
        if self.plugins is None:
            return None
        return [name.strip() for name in self.plugins.split(",") if name.strip()]

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if not value.startswith(("memory://", "amqp://", "amqps://", "redis://", "rediss://")):
            raise ValueError("must start with memory://, amqp://, amqps://, redis:// or rediss://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    """The settings from the environment (and ``.env``).

    :raises ConfigurationError: one line naming each bad ``CRM2_*`` variable and what
        is wrong with it (not the value: it may be a secret).
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(
            f"invalid settings: {settings_problems(exc, 'CRM2_')}: "
            "fix these environment variables (see env.example)"
        ) from None


def settings_problems(error: ValidationError, prefix: str) -> str:
    """Each invalid variable of a settings model (``prefix`` + field name) and what is
    wrong with it, never its value: it may be a secret."""
    return "; ".join(
        f"{prefix}{'_'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}"
        for problem in error.errors()
    )
