"""Auth settings (``CRM2_AUTH_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The value env.example ships with; refused outside development.
EXAMPLE_JWT_SECRET = "demo-only-change-me-to-32-plus-random-bytes"
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]

# OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
OWASP_MIN_MEMORY_KIB = 19_456
OWASP_MIN_TIME_COST = 2


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_AUTH_", env_file=".env", extra="ignore")

    jwt_algorithm: Algorithm = Field(
        "HS256", description="the only algorithm tokens are accepted with"
    )
    jwt_secret: SecretStr | None = Field(
        None, description="HMAC key, at least 32 bytes; required outside development for HS*"
    )
    jwt_private_key_file: Path | None = Field(
        None, description="PEM private key signing tokens, for RS*/ES*"
    )
    jwt_public_keys_dir: Path | None = Field(
        None, description="folder of <kid>.pem public keys still accepted (key rotation)"
    )
    jwt_key_id: str = Field("k1", description="kid written into new tokens")
    jwt_issuer: str = Field("crm2", description="iss claim written and required")
    jwt_audience: str = Field("crm2-api", description="aud claim written and required")
    access_ttl_seconds: int = Field(900, ge=60, le=86_400, description="access token lifetime")
    refresh_ttl_seconds: int = Field(
        1_209_600, ge=3600, description="refresh token lifetime (a login's whole chain)"
    )
    leeway_seconds: int = Field(10, ge=0, le=300, description="clock skew tolerated on exp/nbf/iat")
    argon2_memory_kib: int = Field(
        OWASP_MIN_MEMORY_KIB, ge=OWASP_MIN_MEMORY_KIB, description="argon2id memory per hash (KiB)"
    )
    argon2_time_cost: int = Field(
        OWASP_MIN_TIME_COST, ge=OWASP_MIN_TIME_COST, description="argon2id iterations"
    )
    argon2_parallelism: int = Field(1, ge=1, le=16, description="argon2id lanes")
    login_free_failures: int = Field(
        3,
        ge=1,
        le=100,
        description="failed logins on one account from one address before each next "
        "attempt from there waits (1 s, doubling)",
    )
    login_delay_max_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="the longest wait between attempts on one account from one address",
    )
    login_max_failures_per_ip: int = Field(
        50, ge=1, description="failed logins per client IP per window before 429"
    )
    login_window_seconds: int = Field(
        900,
        ge=1,
        description="the per-address window, and how long a streak of failures is remembered",
    )
    role_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="how long a process caches role → permissions at most "
        "(changes reach every process at once through the auth.role.changed event)",
    )
    credentials_cache_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="how long a process trusts its cached copy of a user's credentials "
        "version or an API key's row at most (changes reach every process at once through "
        "an event)",
    )

    @model_validator(mode="after")
    def _keys_match_algorithm(self) -> AuthSettings:
        if self.jwt_algorithm in ASYMMETRIC_ALGORITHMS and self.jwt_private_key_file is None:
            raise ValueError(
                f"jwt_algorithm {self.jwt_algorithm} needs CRM2_AUTH_JWT_PRIVATE_KEY_FILE"
            )
        return self
