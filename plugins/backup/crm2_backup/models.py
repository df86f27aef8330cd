"""The backup plugin's tables (``backup_*``): sets, their artefacts, runs and restore drills."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Text
from sqlmodel import Field, SQLModel

from crm2_core.api import UtcDateTime, new_id, utcnow

INFO = {"plugin": "backup"}
SET_STATUSES = ("queued", "running", "completed", "failed", "pruned")
RUN_KINDS = ("backup", "verify", "restore", "prune")


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Column(UtcDateTime(), nullable=nullable, index=index)


class BackupSet(SQLModel, table=True):
    """One backup: a folder of encrypted artefacts and a manifest.

    ``due_key`` is the scheduled due time a set was made for (unique), so that a
    schedule runs once per due time however many processes look.
    """

    __tablename__ = "backup_set"
    __table_args__ = (Index(None, "started_at", "id"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    status: str = Field(default="running", max_length=16, index=True)
    trigger: str = Field(default="manual", max_length=16)
    due_key: str | None = Field(default=None, max_length=40, unique=True)
    location: str = Field(max_length=500)
    targets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    size_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    manifest: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # what a poller sees while the set is made: {"targets": [{"target", "phase",
    # "size_bytes"}], "verify": None | "pending" | "running" | "ok" | "failed"}
    progress: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    verified_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    verify_ok: bool | None = None
    created_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("auth_user.id", ondelete="SET NULL"))
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class BackupArtifact(SQLModel, table=True):
    """One target's encrypted artefact in a set, with the checksums that prove it unchanged."""

    __tablename__ = "backup_artifact"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    set_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("backup_set.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    target: str = Field(max_length=64)
    filename: str = Field(max_length=200)
    size_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)  # of the encrypted file
    plain_size_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    plain_sha256: str = Field(max_length=64)  # of the plaintext, checked after decrypting
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class BackupRun(SQLModel, table=True):
    """One operation (backup, verify, restore, prune): who, when, how it ended."""

    __tablename__ = "backup_run"
    __table_args__ = (Index(None, "started_at", "id"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(max_length=16)
    set_id: uuid.UUID | None = Field(default=None, index=True)
    # a scheduled drill's due time (unique: one drill per due time across processes)
    due_key: str | None = Field(default=None, max_length=40, unique=True)
    status: str = Field(default="running", max_length=16)
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str = Field(default="", sa_column=Column(Text, nullable=False))


class RestoreDrill(SQLModel, table=True):
    """A set restored into scratch targets and compared.

    RTO is the drill's duration, RPO the age of the set when it was proven.
    """

    __tablename__ = "backup_drill"
    __table_args__ = (Index(None, "started_at", "id"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    set_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("backup_set.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    ok: bool = False
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    rto_seconds: float = 0.0
    rpo_seconds: float = 0.0
    results: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str = Field(default="", sa_column=Column(Text, nullable=False))


MODELS: list[type[SQLModel]] = [BackupSet, BackupArtifact, BackupRun, RestoreDrill]
