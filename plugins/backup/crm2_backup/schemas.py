"""Request and response bodies of the backup API (never the table models themselves)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from crm2_core.api import ResponseModel

SetStatus = Literal["queued", "running", "completed", "failed", "pruned"]
RunKind = Literal["backup", "verify", "restore", "prune"]


class ArtifactPublic(ResponseModel):
    target: str
    filename: str
    size_bytes: int
    sha256: str
    plain_size_bytes: int
    plain_sha256: str
    facts: dict[str, Any]
    started_at: datetime
    finished_at: datetime


class SetPublic(ResponseModel):
    id: uuid.UUID
    status: str
    trigger: str
    location: str
    targets: list[str]
    started_at: datetime
    finished_at: datetime | None
    size_bytes: int
    error: str
    verified_at: datetime | None
    verify_ok: bool | None
    version: int


class SetDetail(SetPublic):
    manifest: dict[str, Any]
    artifacts: list[ArtifactPublic]


class RunPublic(ResponseModel):
    id: uuid.UUID
    kind: str
    set_id: uuid.UUID | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    detail: dict[str, Any]
    error: str


class DrillPublic(ResponseModel):
    id: uuid.UUID
    set_id: uuid.UUID
    ok: bool
    started_at: datetime
    finished_at: datetime
    rto_seconds: float
    rpo_seconds: float
    results: dict[str, Any]
    error: str


class TargetPublic(ResponseModel):
    name: str
    plugin: str
    chosen: bool


class StatusPublic(ResponseModel):
    """The figures an operator watches."""

    latest_set: SetPublic | None
    latest_verified_set: SetPublic | None
    rpo_seconds: float | None  # age of the newest verified set
    last_drill: DrillPublic | None
    schedule: str
    verify_schedule: str


class PrunePublic(ResponseModel):
    pruned: list[uuid.UUID]
