"""Payments settings (``CRM2_PAYMENTS_*``)."""

from __future__ import annotations

import base64
import binascii
import re

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# the webhook route's provider (``schemas.payments.Provider``): a name it cannot take is a
# provider no webhook could ever reach
PROVIDER = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


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
    # matched in the upload's request and transaction: 5,000 lines took 40 s on a loaded
    # PostgreSQL (most of it booking the matched ones); 20,000 would take minutes
    statement_max_rows: int = Field(
        5_000,
        ge=1,
        le=1_000_000,
        description="the most lines one uploaded statement may have; it is matched in the "
        "upload's request (5,000 lines: about 40 s under load), so a larger limit holds "
        "the request, and its locks on the payments it matches, as much longer",
    )

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets_usable(cls, value: SecretStr) -> SecretStr:
        """A malformed entry was skipped: its provider answered 404 (or 401 for a rotation's
        new secret) with nothing saying why. Refused at start-up, naming the entry but never
        the secret."""
        for number, item in enumerate(value.get_secret_value().split(","), 1):
            if not item.strip():
                continue
            provider, colon, secret = item.strip().partition(":")
            provider = provider.strip()
            if not colon or not PROVIDER.fullmatch(provider):
                raise ValueError(
                    f"entry {number}: 'provider:whsec_…' with a provider of a-z, 0-9, _ and - "
                    "(at most 64)"
                )
            try:
                key = base64.b64decode(secret.strip().removeprefix("whsec_"), validate=True)
            except binascii.Error:
                key = b""
            if not key:
                raise ValueError(f"entry {number} ({provider}): the secret is not whsec_<base64>")
        return value
