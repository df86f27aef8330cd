"""Backups and drills that run in the background: what the schedule queued, ``POST /sets``
and ``POST /sets/{id}/verify``.

A queued set runs in a worker's handler (``backup.set.requested``, under
``CRM2_BACKUP_COMMAND_TIMEOUT_SECONDS``). On SQLite — one process, where a
handler's open transaction would hold the only write lock for the whole backup —
it runs in this process instead: the scheduler runs what it queued itself, and a
request hands its set to the application's ``JobRunner`` once the request's
transaction has committed (as the kit's background CSV imports do).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_backup.config import BackupSettings
from crm2_backup.errors import SetBusy
from crm2_backup.events import DrillRequested, SetRequested
from crm2_backup.models import BackupRun, BackupSet
from crm2_backup.repository import get_set, update_set
from crm2_backup.service.backup import new_progress, new_set, run_backup
from crm2_backup.service.locks import SET_READERS, SET_REQUESTS
from crm2_backup.service.retention import prune
from crm2_backup.service.stale import UNFINISHED, set_underway, stale_after
from crm2_backup.service.targets import chosen_targets
from crm2_backup.service.verify import verify
from crm2_core.api import JobRunner, publish, take_turns, utcnow

log = logging.getLogger("crm2.backup")


def runs_inline(context: Any) -> bool:
    """SQLite: the work runs in this process; elsewhere a worker's handler does it."""
    return str(context.settings.database_url).startswith("sqlite")


async def request_backup_now(
    context: Any, session: AsyncSession, actor_id: uuid.UUID | None, *, and_verify: bool
) -> BackupSet:
    """A queued manual set in the request's transaction; the work starts once it commits.

    The chosen targets are checked first (an unknown name is a 422, no set is made).
    One backup at a time: while a set is queued or running (and not abandoned, see
    ``stale.py``), asking again answers that set instead of starting a second dump.
    """
    names = list(chosen_targets(context))
    settings: BackupSettings = context.plugin_settings("backup")
    # concurrent requests look for a set underway one after another, each seeing what the
    # one before it queued: without it two requests on PostgreSQL both start a set
    await take_turns(session, SET_REQUESTS)
    current = await set_underway(session, settings)
    if current is not None:
        return current
    row = new_set("manual", None, actor_id, "queued", new_progress(names, and_verify))
    session.add(row)
    if runs_inline(context):

        async def work() -> None:
            await run_queued_backup(context, row.id, and_verify=and_verify)

        JobRunner.of(context).after_commit(session, work, name=f"backup set {row.id}")
    else:
        publish(session, SetRequested(set_id=row.id, verify=and_verify), subject=row.id)
    return row


async def run_queued_backup(context: Any, set_id: uuid.UUID, *, and_verify: bool = False) -> None:
    """Make the queued set (then retention for a scheduled one, a drill when asked); never raises.

    The whole of it runs under ``CRM2_BACKUP_COMMAND_TIMEOUT_SECONDS``: a set that
    outlives it is recorded ``failed`` (a handler has the same limit).
    """
    settings: BackupSettings = context.plugin_settings("backup")
    try:
        async with asyncio.timeout(settings.command_timeout_seconds):
            made = await run_backup(context, set_id=set_id)
    except Exception:
        # recorded as a failed set and announced (backup.set.failed); a half-written set
        # is not retried: the next due time makes a new one
        log.exception("backup: queued set %s failed", set_id)
        return
    if made is None or made.status != "completed":  # taken already, or finished too late
        return
    if made.trigger == "schedule":
        await prune(context)
    if and_verify:
        await _drill(context, made.id)


async def _drill(context: Any, set_id: uuid.UUID) -> None:
    await _verify_phase(context, set_id, "running")
    try:
        drill = await verify(context, set_id)
    except Exception:
        log.exception("backup: the drill of set %s could not run", set_id)
        await _verify_phase(context, set_id, "failed")
        return
    await _verify_phase(context, set_id, "ok" if drill is not None and drill.ok else "failed")


async def _verify_phase(context: Any, set_id: uuid.UUID, phase: str) -> None:
    async with context.session_factory() as session:
        row = await get_set(session, set_id)
        await update_set(session, set_id, progress={**(row.progress or {}), "verify": phase})
        await session.commit()


async def request_drill_now(context: Any, session: AsyncSession, set_id: uuid.UUID) -> BackupRun:
    """A queued drill of ``set_id`` (a ``verify`` run) in the request's transaction.

    It runs like a queued set: in a worker's ``run_requested_drill`` handler, or on
    SQLite in this process once the request has committed. One drill of a set at a
    time: while one is queued or running (and not abandoned, see ``stale.py``),
    asking again answers that run. A set that is not ``completed`` is a 409.
    """
    settings: BackupSettings = context.plugin_settings("backup")
    # one drill per set however many ask at once, and none of a set retention is pruning
    await take_turns(session, SET_READERS)
    row = await get_set(session, set_id)
    if row.status != "completed":
        raise SetBusy(f"set {set_id} is {row.status}: only a completed set can be drilled")
    underway = await session.execute(
        select(BackupRun)
        .where(
            col(BackupRun.kind) == "verify",
            col(BackupRun.set_id) == set_id,
            col(BackupRun.status).in_(UNFINISHED),
            col(BackupRun.started_at) >= utcnow() - stale_after(settings),
        )
        .order_by(col(BackupRun.started_at).desc())
        .limit(1)
    )
    current = underway.scalar_one_or_none()
    if current is not None:
        return current
    run = BackupRun(kind="verify", set_id=set_id, status="queued", detail={"trigger": "manual"})
    session.add(run)
    await session.flush()
    if runs_inline(context):

        async def work() -> None:
            await run_queued_drill(context, run.id)

        JobRunner.of(context).after_commit(session, work, name=f"backup drill {run.id}")
    else:
        publish(session, DrillRequested(run_id=run.id, set_id=set_id), subject=run.id)
    return run


async def run_queued_drill(context: Any, run_id: uuid.UUID) -> None:
    """Run the queued drill (scheduled or asked for) under the time limit; never raises."""
    settings: BackupSettings = context.plugin_settings("backup")
    try:
        async with asyncio.timeout(settings.command_timeout_seconds):
            await verify(context, run_id=run_id)
    except Exception:
        log.exception("backup: queued drill %s could not run", run_id)
