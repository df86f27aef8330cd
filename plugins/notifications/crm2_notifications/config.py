"""Notifications settings (``CRM2_NOTIFICATIONS_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotificationsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CRM2_NOTIFICATIONS_", env_file=".env", extra="ignore"
    )

    delivery_interval_seconds: int = Field(
        30, ge=1, le=3600, description="how often due deliveries (retries, quiet hours) are sent"
    )
    delivery_batch: int = Field(200, ge=1, le=10_000, description="deliveries per job run")
    max_attempts: int = Field(
        6, ge=1, le=50, description="attempts of a delivery before it is dead-lettered"
    )
    retry_base_seconds: float = Field(
        30.0, gt=0, le=86_400, description="first retry delay; doubles per attempt, with jitter"
    )
    retry_max_seconds: float = Field(
        3600.0, gt=0, le=604_800, description="longest delay between two attempts"
    )
    rate_per_minute: int = Field(
        30, ge=1, le=100_000, description="deliveries per user and channel per minute (bucket)"
    )
    rate_burst: int = Field(10, ge=1, le=100_000, description="token bucket size per user+channel")
    rate_limit_excess: Literal["digest", "queue"] = Field(
        "digest",
        description="what a delivery over its user's rate limit does: fold into the user's next "
        "daily digest, or wait in the queue for a token (webhooks always queue)",
    )
    digest_hour: int = Field(
        8, ge=0, le=23, description="local hour (user's zone) at which daily digests go out"
    )
    retention_days: int = Field(
        90,
        ge=0,
        le=36_500,
        description="days feed entries (read or not), their deliveries and the delivery log "
        "are kept; 0: forever",
    )
    default_timezone: str = Field(
        "UTC", max_length=64, description="zone of users who set none (quiet hours, digests)"
    )
    # e-mail
    smtp_host: str = Field("", max_length=255, description="SMTP server; empty: e-mail is off")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_starttls: bool = Field(True, description="upgrade the connection with STARTTLS")
    smtp_ca_file: str = Field(
        "",
        max_length=500,
        description="CA bundle to verify the SMTP server with; empty: the system's",
    )
    smtp_username: str = Field("", max_length=255, description="SMTP login; empty: no login")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password")
    smtp_from: str = Field(
        "crm2 <noreply@localhost>", max_length=320, description="From: of notification e-mails"
    )
    smtp_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="SMTP timeout of each reply; a whole conversation gets three times it",
    )
    public_url: str = Field(
        "", max_length=500, description="base URL of the web app, for links in e-mail / Telegram"
    )
    # telegram
    telegram_bot_token: SecretStr = Field(
        SecretStr(""), description="Bot API token; empty: Telegram is off"
    )
    telegram_bot_name: str = Field("", max_length=64, description="bot username, for t.me links")
    telegram_api_base_url: str = Field(
        "https://api.telegram.org", max_length=500, description="Bot API base URL"
    )
    telegram_webhook_secret: SecretStr = Field(
        SecretStr(""),
        description="X-Telegram-Bot-Api-Secret-Token the webhook requires; empty: webhook off",
    )
    telegram_rate_per_second: float = Field(
        25.0, gt=0, le=1000, description="messages per second for the whole bot (bucket)"
    )
    telegram_link_ttl_seconds: int = Field(
        600, ge=60, le=86_400, description="lifetime of a one-time Telegram link code"
    )
    # outbound webhooks
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="webhook timeout: the whole request and its answer"
    )
    webhook_allow_private_targets: bool = Field(
        False,
        description="TESTS ONLY: let webhooks reach loopback/private addresses (SSRF guard off); "
        "ignored with CRM2_ENV=production",
    )
