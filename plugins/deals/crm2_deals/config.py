"""Deals settings (``CRM2_DEALS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DealsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_DEALS_", env_file=".env", extra="ignore")

    renewal_notice_days: int = Field(
        30, ge=1, le=365, description="days before a policy ends that renewal_due is emitted"
    )
    import_max_rows: int = Field(
        50_000, ge=1, description="largest client CSV import accepted, in rows"
    )
    import_background_rows: int = Field(
        1_000,
        ge=0,
        description="a client CSV import with more rows runs as a background job (202)",
    )
    default_currency: str = Field(
        "EUR",
        pattern=r"^[A-Z]{3}$",
        description="currency of a deal or policy created without one, and of the demo data",
    )
