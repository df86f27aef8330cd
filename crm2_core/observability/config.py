"""Settings of the ``metrics`` (``CRM2_METRICS_*``) and ``tracing`` (``CRM2_TRACING_*``) plugins."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_METRICS_", env_file=".env", extra="ignore")

    enabled: bool = Field(
        False,
        description="serve Prometheus metrics at /metrics (needs the crm2-core[metrics] extra)",
    )
    allow_networks: str = Field(
        "127.0.0.0/8,::1/128",
        description="comma-separated client networks that may read /metrics without a token; "
        "anyone else needs the metrics:read permission (admins have it)",
    )
    worker_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="port of each crm2 worker's metrics endpoint (0 = none); "
        "worker --processes N uses this port and the N-1 after it",
    )
    worker_host: str = Field(
        "127.0.0.1", description="interface the workers' metrics endpoint listens on"
    )

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{part.strip()!r} is not a network (10.0.0.0/8)") from None
        return value

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.allow_networks.split(",")
            if part.strip()
        ]


class TracingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_TRACING_", env_file=".env", extra="ignore")

    enabled: bool = Field(
        False, description="record OpenTelemetry traces (needs the crm2-core[tracing] extra)"
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces URL (http://collector:4318/v1/traces); "
        "unset = kept in memory only (tests)",
    )
    service_name: str = Field("crm2", description="service.name of every span this process sends")
    sample_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="share of new traces recorded (parent-based)"
    )
