"""Request and response bodies of the backup API (never the table models themselves)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, computed_field

from crm2_backup.service.clock import trusted_until
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


SetState = Literal[
    "queued", "running", "verifying", "completed", "verified", "verify_failed", "failed", "pruned"
]
TargetPhase = Literal["pending", "dumping", "encrypting", "done", "failed"]
VerifyPhase = Literal["pending", "running", "ok", "failed"]


class TargetProgress(ResponseModel):
    target: str
    phase: TargetPhase
    size_bytes: int | None = Field(None, description="of the encrypted artefact, once done")


class SetProgress(ResponseModel):
    """Where a set being made is: each target's phase, and the drill when one was asked for."""

    targets: list[TargetProgress] = []
    verify: VerifyPhase | None = Field(
        None, description="the drill asked for with ?verify=true; null: none asked for"
    )


class SetPublic(ResponseModel):
    id: uuid.UUID
    status: str = Field(description="queued, running, completed, failed or pruned")
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
    progress: SetProgress = SetProgress()

    @computed_field(  # type: ignore[prop-decorator]
        description="queued → running → completed | verified | verify_failed | failed "
        "(verifying while the drill asked for runs; pruned once retention removed it)"
    )
    @property
    def state(self) -> SetState:
        if self.status != "completed":
            return self.status  # type: ignore[return-value]
        if self.progress.verify in ("pending", "running"):
            return "verifying"
        if self.verify_ok is None:
            return "completed"
        return "verified" if self.verify_ok else "verify_failed"

    @computed_field(  # type: ignore[prop-decorator]
        description="nothing more will happen to this set on its own: stop polling"
    )
    @property
    def done(self) -> bool:
        return self.state not in ("queued", "running", "verifying")

    @computed_field(  # type: ignore[prop-decorator]
        description="dated more than 5 minutes ahead of the server's clock (a clock that ran "
        "ahead, a hand-made row): listed first, as sets are newest first, but never the latest "
        "set (status, RPO, a drill of the latest) and neither counted nor pruned by retention; "
        "fix its started_at or delete it"
    )
    @property
    def future_dated(self) -> bool:
        return self.started_at > trusted_until()


class SetDetail(SetPublic):
    manifest: dict[str, Any]
    artifacts: list[ArtifactPublic]


class RunPublic(ResponseModel):
    """One operation; a drill asked for with ``POST /sets/{id}/verify`` is polled as one."""

    id: uuid.UUID
    kind: str
    set_id: uuid.UUID | None
    status: str = Field(description="queued, running, ok or failed")
    started_at: datetime = Field(description="when it was queued, then when it started")
    finished_at: datetime | None
    detail: dict[str, Any]
    error: str

    @computed_field(  # type: ignore[prop-decorator]
        description="nothing more will happen to this run on its own: stop polling"
    )
    @property
    def done(self) -> bool:
        return self.status not in ("queued", "running")

    @computed_field(  # type: ignore[prop-decorator]
        description="a verify run's restore drill (GET /drills/{drill_id}), once it is recorded"
    )
    @property
    def drill_id(self) -> uuid.UUID | None:
        value = self.detail.get("drill_id")
        try:
            return None if value is None else uuid.UUID(str(value))
        except ValueError:
            return None


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
