"""Payments settings (``CRM2_PAYMENTS_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PaymentsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_PAYMENTS_", env_file=".env", extra="ignore")

    webhook_secrets: SecretStr = Field(
        SecretStr(""),
        description="provider webhook secrets, 'provider:whsec_…' separated by commas; several "
        "per provider are all accepted (rotation); empty: webhooks answer 404",
    )
    webhook_tolerance_seconds: int = Field(
        300, ge=30, le=3600, description="how far a webhook's timestamp may be from now, seconds"
    )
    overdue_interval_seconds: int = Field(
        86_400, ge=60, le=604_800, description="how often the overdue job runs, seconds (daily)"
    )
    grace_days: int = Field(
        0, ge=0, le=365, description="days after its due date before an instalment is overdue"
    )
    match_window_days: int = Field(
        3,
        ge=0,
        le=60,
        description="reconciliation: a statement line matches an open payment of the same "
        "amount due within this many days of the line's date",
    )
    statement_max_rows: int = Field(
        20_000, ge=1, le=1_000_000, description="the most lines one uploaded statement may have"
    )
