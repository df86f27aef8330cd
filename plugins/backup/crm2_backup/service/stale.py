"""Sets and drills a crashed process left behind: ``queued`` or ``running`` (or a drill
``verifying``) with no progress for longer than any live run could take, marked ``failed``
with why.

A live run moves its set's ``updated_at`` at every target's phase and is bounded by
``CRM2_BACKUP_COMMAND_TIMEOUT_SECONDS`` (a handler's and a background job's time
limit, and each dump program's): a set that has not moved for that long plus
:data:`GRACE` belongs to no running process. The scheduled ``stale`` job runs this
every ``CRM2_BACKUP_CHECK_SECONDS`` in any process; the conditional update makes
two processes sweeping together fail a set once. A drill (a ``verify`` run, queued by
the schedule or ``POST /sets/{id}/verify``) is bounded by the same limit from the time it
was queued or claimed: one older than the limit is failed the same way, with a failed
drill row and ``backup.set.verify_failed`` when it names its set. A restore or a prune
run left ``running`` by a process that stopped (a crash, a kill) is failed the same way,
with no event: a restore's reason says its target may be partly restored.

A run that was only slow, not dead, and finishes after the sweep does not flip its set
or drill back: the conditional writes at the end of a backup and of a drill find it no
longer ``running`` and record the late finish on the failed row instead (``backup.py``,
``verify.py``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from crm2_backup.config import BackupSettings
from crm2_backup.errors import SetNotRestorable
from crm2_backup.events import SetFailed, SetVerifyFailed
from crm2_backup.models import BackupRun, BackupSet, RestoreDrill
from crm2_backup.repository import finish_run
from crm2_backup.service import destinations, store
from crm2_core.api import publish, utcnow

log = logging.getLogger("crm2.backup")
GRACE = timedelta(minutes=5)
UNFINISHED = ("queued", "running")


def stale_after(settings: BackupSettings) -> timedelta:
    return timedelta(seconds=settings.command_timeout_seconds) + GRACE


async def set_underway(session: Any, settings: BackupSettings) -> BackupSet | None:
    """The newest set queued or running and not abandoned: while there is one, no other
    starts (``POST /sets`` answers it, the schedule waits for it). Call it under
    ``take_turns(session, SET_REQUESTS)``."""
    underway = await session.execute(
        select(BackupSet)
        .where(
            col(BackupSet.status).in_(UNFINISHED),
            col(BackupSet.updated_at) >= utcnow() - stale_after(settings),
        )
        .order_by(col(BackupSet.started_at).desc())
        .limit(1)
    )
    row: BackupSet | None = underway.scalar_one_or_none()
    return row


def _reason(status: str, quiet: timedelta) -> str:
    minutes = int(quiet.total_seconds() // 60)
    if status == "queued":
        return (
            f"never started: no process took the queued set within {minutes} min "
            "(is a worker running? `crm2 worker`)"
        )
    return (
        f"interrupted: no progress for {minutes} min; the process making the set "
        "stopped (a crash or a restart) before it finished"
    )


def _failed_progress(progress: dict[str, Any]) -> dict[str, Any]:
    targets = [
        {**t, "phase": "failed"} if t.get("phase") in ("dumping", "encrypting") else t
        for t in progress.get("targets", [])
    ]
    verify = progress.get("verify")
    return {**progress, "targets": targets, "verify": "failed" if verify else verify}


async def fail_stale_sets(context: Any, now: datetime | None = None) -> list[uuid.UUID]:
    """Mark every abandoned set ``failed`` (announcing ``backup.set.failed``); their ids."""
    settings: BackupSettings = context.plugin_settings("backup")
    now = now or utcnow()
    limit = stale_after(settings)
    cutoff = now - limit
    failed: list[uuid.UUID] = []
    swept: list[BackupSet] = []
    async with context.session_factory() as session:
        rows = await session.execute(
            select(BackupSet).where(
                col(BackupSet.status).in_(UNFINISHED), col(BackupSet.updated_at) < cutoff
            )
        )
        for row in list(rows.scalars()):
            reason = _reason(row.status, now - row.updated_at)
            done = await session.execute(
                update(BackupSet)
                .where(
                    col(BackupSet.id) == row.id,
                    col(BackupSet.status).in_(UNFINISHED),
                    col(BackupSet.updated_at) < cutoff,
                )
                .values(
                    status="failed",
                    finished_at=now,
                    error=reason,
                    progress=_failed_progress(row.progress or {}),
                    updated_at=now,
                    version=col(BackupSet.version) + 1,
                )
            )
            if done.rowcount != 1:
                continue  # another process swept it, or it moved just now
            runs = await session.execute(
                select(col(BackupRun.id)).where(
                    col(BackupRun.set_id) == row.id,
                    col(BackupRun.kind) == "backup",
                    col(BackupRun.status) == "running",
                )
            )
            for run_id in runs.scalars():
                await finish_run(session, run_id, "failed", {"stale": True}, reason)
            publish(
                session, SetFailed(set_id=row.id, trigger=row.trigger, error=reason), subject=row.id
            )
            log.error("backup: set %s marked failed: %s", row.id, reason)
            failed.append(row.id)
            swept.append(row)
        # a drill asked for with ?verify=true whose process went away: the set itself is
        # fine (completed), the drill's phase says it never finished
        verifying = await session.execute(
            select(BackupSet).where(
                col(BackupSet.status) == "completed",
                col(BackupSet.updated_at) < cutoff,
                col(BackupSet.updated_at) >= cutoff - timedelta(days=2),
            )
        )
        for row in list(verifying.scalars()):
            if (row.progress or {}).get("verify") in ("pending", "running"):
                await session.execute(
                    update(BackupSet)
                    .where(col(BackupSet.id) == row.id, col(BackupSet.updated_at) < cutoff)
                    .values(progress={**row.progress, "verify": "failed"}, updated_at=now)
                )
        await session.commit()
    # as a failing set's (backup.py): a failed set is never drilled or restored, and its
    # partial artefacts would hold space nothing (not retention) frees. A run that was only
    # stalled finds its folder gone and ends failed too (it could not be trusted anyway).
    # What an upload had already copied to the set's destination goes as well (its row
    # records the manifest before the first copy); a run that copies more after this
    # deletes those itself when it ends (backup.py)
    for row in swept:
        try:
            store.remove(store.set_dir(settings, row.location))
        except SetNotRestorable as exc:  # a hand-made row pointing outside CRM2_BACKUP_DIR
            log.warning("backup: files of a stale set not deleted: %s", exc.detail)
        await destinations.discard(context, row)
    return failed


def _run_reason(kind: str, status: str, quiet: timedelta) -> str:
    minutes = int(quiet.total_seconds() // 60)
    if status == "queued":
        return (
            f"never started: no process took the queued drill within {minutes} min "
            "(is a worker running? `crm2 worker`)"
        )
    what = {"verify": "drill", "restore": "restore", "prune": "prune"}[kind]
    reason = (
        f"interrupted: the {what} ran {minutes} min, past its time limit; the process running "
        "it stopped (a crash or a restart) before it finished"
    )
    if kind == "restore":
        reason += ": the target may be partly restored; check it or restore into a new one"
    return reason


async def fail_stale_runs(context: Any, now: datetime | None = None) -> list[uuid.UUID]:
    """Drills, restores and prunes queued or running past the limit: failed (a drill with a
    failed drill row); their run ids."""
    now = now or utcnow()
    cutoff = now - stale_after(context.plugin_settings("backup"))
    async with context.session_factory() as session:
        failed = await _fail_stale_runs(session, now, cutoff)
        await session.commit()
    return failed


async def _fail_stale_runs(session: Any, now: datetime, cutoff: datetime) -> list[uuid.UUID]:
    rows = await session.execute(
        select(BackupRun).where(
            col(BackupRun.kind).in_(("verify", "restore", "prune")),
            col(BackupRun.status).in_(UNFINISHED),
            col(BackupRun.started_at) < cutoff,
        )
    )
    failed: list[uuid.UUID] = []
    for run in list(rows.scalars()):
        reason = _run_reason(run.kind, run.status, now - run.started_at)
        detail = dict(run.detail)
        drill: RestoreDrill | None = None
        set_row = None
        if run.kind == "verify" and run.set_id is not None:
            set_row = await session.get(BackupSet, run.set_id)
        if set_row is not None:
            drill = RestoreDrill(
                set_id=set_row.id,
                ok=False,
                started_at=run.started_at,
                finished_at=now,
                rpo_seconds=round((now - set_row.started_at).total_seconds(), 3),
                results={"stale": True},
                error=reason,
            )
            detail["drill_id"] = str(drill.id)
        done = await session.execute(
            update(BackupRun)
            .where(
                col(BackupRun.id) == run.id,
                col(BackupRun.status) == run.status,
                col(BackupRun.started_at) < cutoff,
            )
            .values(status="failed", finished_at=now, error=reason, detail=detail)
        )
        if done.rowcount != 1:
            continue  # another process swept it, or it was claimed just now
        if drill is not None:
            # the set is not judged (verify_ok stays): its drill did not run, it did not fail
            session.add(drill)
            publish(
                session,
                SetVerifyFailed(set_id=drill.set_id, drill_id=drill.id, error=reason),
                subject=drill.set_id,
            )
        log.error("backup: %s run %s marked failed: %s", run.kind, run.id, reason)
        failed.append(run.id)
    return failed
