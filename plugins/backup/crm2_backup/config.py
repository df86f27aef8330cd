"""Backup settings (``CRM2_BACKUP_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm2_backup.cron import Cron, CronError


class BackupSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM2_BACKUP_", env_file=".env", extra="ignore")

    dir: str = Field("backups", description="local directory the backup sets are written to")
    destination: str = Field(
        "local",
        description="where completed sets are kept besides dir (the staging area): local = dir "
        "only; documents:<backend> = also through that documents storage backend (local, s3, "
        "gdrive, a third party's), or another plugin's crm2_backup_destinations name",
    )
    key_file: str = Field(
        "crm2-backup.key",
        description="file holding the 32-byte AES-256-GCM key (base64); keep it apart from the "
        "backups. Created on the first backup when missing",
    )
    key: SecretStr | None = Field(
        None, description="the key itself (base64 of 32 bytes), instead of key_file"
    )
    targets: str = Field(
        "auto",
        description="comma list of targets to back up (postgres, sqlite, redis, rabbitmq, "
        "consul, or another plugin's); auto = every target configured here",
    )
    schedule: str = Field(
        "0 3 * * *", description="cron expression (UTC) of scheduled backups; empty = none"
    )
    verify_schedule: str = Field(
        "30 4 * * *",
        description="cron expression (UTC) of restore drills of the latest set; empty = none",
    )
    check_seconds: int = Field(
        60, ge=5, le=3600, description="how often the scheduler looks for a due backup, seconds"
    )
    keep_daily: int = Field(7, ge=0, le=3660, description="retention: newest set of N days")
    keep_weekly: int = Field(4, ge=0, le=520, description="retention: newest set of N ISO weeks")
    keep_monthly: int = Field(12, ge=0, le=1200, description="retention: newest set of N months")
    chunk_bytes: int = Field(
        1 << 20, ge=4096, le=64 << 20, description="plaintext bytes per encrypted chunk"
    )
    table_checksums: bool = Field(
        True, description="drills compare a checksum of every table, not only its row count"
    )
    pg_dump: str = Field("pg_dump", description="the pg_dump program")
    pg_restore: str = Field("pg_restore", description="the pg_restore program")
    rabbitmqctl: str = Field("rabbitmqctl", description="the rabbitmqctl program")
    rabbitmq_management_url: str = Field(
        "",
        description="deprecated: set CRM2_BROKER_MANAGEMENT_URL (read only while that is empty)",
    )
    rabbitmq_vhost: str = Field(
        "", description="the vhost crm2 uses; empty = the one in CRM2_BROKER_URL"
    )
    redis_mode: Literal["auto", "rdb", "logical"] = Field(
        "auto",
        description="Redis backups: auto = BGSAVE and a copy of the RDB file when its directory "
        "is readable here and redis-server is installed, else the logical dump of crm2's keys; "
        "rdb = only that way; logical = always the logical dump",
    )
    redis_server: str = Field(
        "redis-server",
        description="the redis-server program that loads an RDB copy to check it (scratch, "
        "unix socket only)",
    )
    consul_url: str = Field(
        "", description="Consul HTTP API for KV snapshots (http://host:8500); empty = no Consul"
    )
    consul_token: SecretStr | None = Field(
        None, description="X-Consul-Token for the snapshot API of consul_url (sent to it only)"
    )
    consul_restore_token: SecretStr | None = Field(
        None,
        description="X-Consul-Token for a restore into another Consul than consul_url "
        "(restore --to http://other:8500); empty = none is sent there",
    )
    command_timeout_seconds: int = Field(
        3600, ge=10, le=86400, description="time limit of one dump or restore program run"
    )

    @field_validator("schedule", "verify_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value.strip():
            try:
                Cron.parse(value)
            except CronError as exc:
                raise ValueError(str(exc)) from exc
        return value.strip()

    def target_names(self) -> list[str] | None:
        """The targets asked for, or ``None`` for auto."""
        names = [n.strip() for n in self.targets.split(",") if n.strip()]
        return None if names in ([], ["auto"]) else names
