"""The events the backup plugin emits: its public, versioned contract.

Subject: the set's id. notifications' default rules may turn ``failed`` and
``verify_failed`` into incident notices for admins (by type name; backup
imports nothing of notifications).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from crm2_core.api import EventData


class SetRequested(EventData, type="backup.set.requested", version=1):
    """The schedule or ``POST /sets`` asked for a backup; a worker's handler makes it.

    ``due_key``: the scheduled due time (``None`` for a manual set); ``verify``: drill
    the new set right after.
    """

    set_id: uuid.UUID
    due_key: str | None = None
    verify: bool = False


class DrillRequested(EventData, type="backup.drill.requested", version=1):
    """A restore drill was queued; a worker's handler runs it.

    The schedule's (``due_key``: the due time; the latest set) or ``POST
    /sets/{id}/verify``'s (``due_key`` ``None``; ``set_id``: the set to drill).
    """

    run_id: uuid.UUID
    due_key: str | None = None
    set_id: uuid.UUID | None = None


class SetCompleted(EventData, type="backup.set.completed", version=1):
    """A backup set was written; every artefact is encrypted and checksummed."""

    set_id: uuid.UUID
    trigger: str
    targets: list[str]
    size_bytes: int
    seconds: float


class SetFailed(EventData, type="backup.set.failed", version=1):
    """A backup did not complete: an incident for admins."""

    set_id: uuid.UUID
    trigger: str
    error: str
    severity: str = "critical"


class SetVerified(EventData, type="backup.set.verified", version=1):
    """A restore drill restored the set into scratch targets and found it identical."""

    set_id: uuid.UUID
    drill_id: uuid.UUID
    rto_seconds: float
    rpo_seconds: float


class SetVerifyFailed(EventData, type="backup.set.verify_failed", version=1):
    """A restore drill failed: the set cannot be trusted. An incident for admins."""

    set_id: uuid.UUID
    drill_id: uuid.UUID
    error: str
    severity: str = "critical"


class SetPruned(EventData, type="backup.set.pruned", version=1):
    """Retention removed a set's artefacts."""

    set_id: uuid.UUID
    started_at: datetime


EVENT_TYPES: list[type[EventData]] = [
    SetRequested,
    DrillRequested,
    SetCompleted,
    SetFailed,
    SetVerified,
    SetVerifyFailed,
    SetPruned,
]
