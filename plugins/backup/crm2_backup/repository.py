"""Every query of the backup plugin."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_backup.errors import DrillNotFound, RunNotFound, SetNotFound
from crm2_backup.models import BackupArtifact, BackupRun, BackupSet, RestoreDrill
from crm2_core.api import OrderKey, PageParams, eq, paginate, utcnow, where_all


def _newest(model: Any) -> list[OrderKey]:
    return [OrderKey(model.started_at, descending=True), OrderKey(model.id, descending=True)]


async def get_set(session: AsyncSession, set_id: uuid.UUID) -> BackupSet:
    row = await session.get(BackupSet, set_id, populate_existing=True)
    if row is None:
        raise SetNotFound(f"no backup set {set_id}")
    return row


async def artifacts(session: AsyncSession, set_id: uuid.UUID) -> list[BackupArtifact]:
    rows = await session.execute(
        select(BackupArtifact)
        .where(col(BackupArtifact.set_id) == set_id)
        .order_by(col(BackupArtifact.target))
    )
    return list(rows.scalars())


async def page_sets(
    session: AsyncSession, page: PageParams, status: str | None
) -> tuple[list[BackupSet], str | None]:
    stmt: Select[Any] = where_all(select(BackupSet), eq(col(BackupSet.status), status))
    return await paginate(session, stmt, _newest(BackupSet), page)


async def page_runs(
    session: AsyncSession, page: PageParams, kind: str | None
) -> tuple[list[BackupRun], str | None]:
    stmt: Select[Any] = where_all(select(BackupRun), eq(col(BackupRun.kind), kind))
    return await paginate(session, stmt, _newest(BackupRun), page)


async def page_drills(
    session: AsyncSession, page: PageParams, set_id: uuid.UUID | None
) -> tuple[list[RestoreDrill], str | None]:
    stmt: Select[Any] = where_all(select(RestoreDrill), eq(col(RestoreDrill.set_id), set_id))
    return await paginate(session, stmt, _newest(RestoreDrill), page)


async def get_drill(session: AsyncSession, drill_id: uuid.UUID) -> RestoreDrill:
    row = await session.get(RestoreDrill, drill_id)
    if row is None:
        raise DrillNotFound(f"no restore drill {drill_id}")
    return row


async def completed_sets(session: AsyncSession) -> list[BackupSet]:
    rows = await session.execute(
        select(BackupSet)
        .where(col(BackupSet.status) == "completed")
        .order_by(col(BackupSet.started_at).desc())
    )
    return list(rows.scalars())


async def sets_being_read(session: AsyncSession) -> set[uuid.UUID]:
    """The sets a queued or running drill or restore reads."""
    rows = await session.execute(
        select(col(BackupRun.set_id)).where(
            col(BackupRun.kind).in_(("verify", "restore")),
            col(BackupRun.status).in_(("queued", "running")),
        )
    )
    return {set_id for set_id in rows.scalars() if set_id is not None}


async def latest_completed(
    session: AsyncSession, not_after: datetime | None = None
) -> BackupSet | None:
    """The newest completed set started at or before ``not_after`` (a future-dated one is
    not the latest: see ``service/clock.py``)."""
    stmt = select(BackupSet).where(col(BackupSet.status) == "completed")
    if not_after is not None:
        stmt = stmt.where(col(BackupSet.started_at) <= not_after)
    row = await session.execute(
        stmt.order_by(col(BackupSet.started_at).desc(), col(BackupSet.id).desc()).limit(1)
    )
    return row.scalar_one_or_none()


async def latest_verified(
    session: AsyncSession, not_after: datetime | None = None
) -> BackupSet | None:
    stmt = select(BackupSet).where(
        col(BackupSet.status) == "completed", col(BackupSet.verify_ok).is_(True)
    )
    if not_after is not None:
        stmt = stmt.where(col(BackupSet.started_at) <= not_after)
    row = await session.execute(
        stmt.order_by(col(BackupSet.started_at).desc(), col(BackupSet.id).desc()).limit(1)
    )
    return row.scalar_one_or_none()


async def latest_drill(session: AsyncSession) -> RestoreDrill | None:
    row = await session.execute(
        select(RestoreDrill)
        .order_by(col(RestoreDrill.started_at).desc(), col(RestoreDrill.id).desc())
        .limit(1)
    )
    return row.scalar_one_or_none()


async def set_due_key_taken(session: AsyncSession, due_key: str) -> bool:
    row = await session.execute(select(col(BackupSet.id)).where(col(BackupSet.due_key) == due_key))
    return row.first() is not None


async def drill_due_key_taken(session: AsyncSession, due_key: str) -> bool:
    row = await session.execute(select(col(BackupRun.id)).where(col(BackupRun.due_key) == due_key))
    return row.first() is not None


async def claim_set(session: AsyncSession, set_id: uuid.UUID) -> bool:
    """queued → running, once: a redelivered request finds it taken."""
    result = await session.execute(
        update(BackupSet)
        .where(col(BackupSet.id) == set_id, col(BackupSet.status) == "queued")
        .values(
            status="running",
            started_at=utcnow(),
            updated_at=utcnow(),
            version=col(BackupSet.version) + 1,
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def claim_run(session: AsyncSession, run_id: uuid.UUID) -> BackupRun | None:
    result = await session.execute(
        update(BackupRun)
        .where(col(BackupRun.id) == run_id, col(BackupRun.status) == "queued")
        .values(status="running", started_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return await session.get(BackupRun, run_id, populate_existing=True)


async def finish_run(
    session: AsyncSession, run_id: uuid.UUID, status: str, detail: dict[str, Any], error: str = ""
) -> None:
    await session.execute(
        update(BackupRun)
        .where(col(BackupRun.id) == run_id)
        .values(status=status, finished_at=utcnow(), detail=detail, error=error[:4000])
    )


async def finish_running_run(
    session: AsyncSession, run_id: uuid.UUID, status: str, detail: dict[str, Any], error: str = ""
) -> bool:
    """running → ``status``, once: ``False`` when the run is no longer running (stale-swept)."""
    result = await session.execute(
        update(BackupRun)
        .where(col(BackupRun.id) == run_id, col(BackupRun.status) == "running")
        .values(status=status, finished_at=utcnow(), detail=detail, error=error[:4000])
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def note_late_run(session: AsyncSession, run_id: uuid.UUID, ok: bool, error: str) -> None:
    """A run the stale sweep failed finished after all: say so on it; it stays ``failed``."""
    run = await get_run(session, run_id)
    late = f"finished late at {utcnow().isoformat()} ({'ok' if ok else 'failed'})"
    await session.execute(
        update(BackupRun)
        .where(col(BackupRun.id) == run_id)
        .values(
            detail={**run.detail, "late": {"ok": ok, "error": error[:1000]}},
            error=f"{run.error}; {late} after it had been marked failed: not counted"[:4000],
        )
    )


async def update_set(
    session: AsyncSession, set_id: uuid.UUID, *, only_if: str | None = None, **values: Any
) -> bool:
    """Write ``values`` (only while the set's status is ``only_if``, when given): written?"""
    stmt = update(BackupSet).where(col(BackupSet.id) == set_id)
    if only_if is not None:
        stmt = stmt.where(col(BackupSet.status) == only_if)
    result = await session.execute(
        stmt.values(**values, updated_at=utcnow(), version=col(BackupSet.version) + 1)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def backup_run_id(session: AsyncSession, set_id: uuid.UUID) -> uuid.UUID:
    found = await session.execute(
        select(col(BackupRun.id)).where(
            col(BackupRun.set_id) == set_id, col(BackupRun.kind) == "backup"
        )
    )
    run_id: uuid.UUID = found.scalar_one()
    return run_id


async def get_run(session: AsyncSession, run_id: uuid.UUID) -> BackupRun:
    row = await session.get(BackupRun, run_id, populate_existing=True)
    if row is None:
        raise RunNotFound(f"no backup run {run_id}")
    return row
