"""Verify = a restore drill: every artefact checked, decrypted and restored into scratch targets."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from crm2_backup.config import BackupSettings
from crm2_backup.errors import SchemaTooNew, SetBusy, SetNotFound
from crm2_backup.events import DrillRequested, SetVerified, SetVerifyFailed
from crm2_backup.models import BackupRun, RestoreDrill
from crm2_backup.repository import (
    artifacts,
    claim_run,
    finish_run,
    finish_running_run,
    get_run,
    get_set,
    latest_completed,
    note_late_run,
    update_set,
)
from crm2_backup.service.artifacts import open_artifact
from crm2_backup.service.backup import Progress, _error_text
from crm2_backup.service.clock import trusted_until
from crm2_backup.service.keys import load_key
from crm2_backup.service.locks import SET_READERS
from crm2_backup.service.schema import known_revisions, unknown_heads
from crm2_backup.service.targets import all_targets
from crm2_core.api import publish, take_turns, utcnow

log = logging.getLogger("crm2.backup")


async def request_drill(context: Any, due_key: str) -> uuid.UUID | None:
    """A queued drill run and its ``backup.drill.requested`` (``None``: already queued)."""
    run = BackupRun(kind="verify", status="queued", due_key=due_key)
    async with context.session_factory() as session:
        session.add(run)
        await session.flush()
        publish(session, DrillRequested(run_id=run.id, due_key=due_key), subject=run.id)
        try:
            await session.commit()
        except IntegrityError:
            return None
    return run.id


async def verify(
    context: Any,
    set_id: uuid.UUID | None = None,
    *,
    run_id: uuid.UUID | None = None,
    progress: Progress | None = None,
) -> RestoreDrill | None:
    """Drill ``set_id`` (default: the latest completed set); the drill, ``ok`` or not.

    With ``run_id`` it runs that queued drill (of its set, else the latest): ``None``
    when it was taken already, or when the stale sweep failed it while it ran.
    """
    settings: BackupSettings = context.plugin_settings("backup")
    async with context.session_factory() as session:
        claimed: BackupRun | None = None
        if run_id is not None:
            claimed = await claim_run(session, run_id)
            if claimed is None:
                return None
            await session.commit()
            set_id = set_id or claimed.set_id
        await take_turns(session, SET_READERS)  # retention prunes no set a drill starts on
        try:
            if set_id is None:
                latest = await latest_completed(session, trusted_until())
                if latest is None:
                    raise SetNotFound("no completed backup set to verify")
                set_id = latest.id
            row = await get_set(session, set_id)
            if row.status != "completed":
                raise SetBusy(f"set {set_id} is {row.status}, not completed")
        except (SetNotFound, SetBusy) as exc:
            if claimed is not None:  # the claimed run ends here, with why
                await finish_run(session, claimed.id, "failed", claimed.detail, exc.detail)
                await session.commit()
            raise
        items = await artifacts(session, set_id)
        if run_id is None:
            run = BackupRun(kind="verify", set_id=set_id, status="running")
            session.add(run)
        else:
            run = await get_run(session, run_id)
            run.set_id = set_id
        await session.commit()
        await session.refresh(run)
    started = utcnow()
    clock = time.monotonic()
    results: dict[str, Any] = {}
    error = ""
    try:
        heads = row.manifest.get("alembic_heads", {})
        newer = unknown_heads(heads, known_revisions(context))
        if newer:
            raise SchemaTooNew(f"revisions this code does not know: {newer}")
        key = load_key(settings)
        targets = all_targets(context)
        with tempfile.TemporaryDirectory(prefix="crm2-drill-") as scratch:
            for artifact in items:
                if progress:
                    progress(artifact.target, "check")
                plain = await open_artifact(settings, key, row, artifact, Path(scratch), context)
                target = targets.get(artifact.target)
                if target is None:
                    results[artifact.target] = {
                        "integrity": "ok",
                        "drill": "target not configured here",
                    }
                    continue
                if progress:
                    progress(artifact.target, "drill")
                one = time.monotonic()
                figures = dict(await target.drill(plain, artifact.facts))
                plain.unlink(missing_ok=True)
                results[artifact.target] = {
                    "integrity": "ok",
                    "drill": "ok",
                    "seconds": round(time.monotonic() - one, 3),
                    **figures,
                }
    except Exception as exc:  # a failed drill is recorded and announced, not raised
        error = _error_text(exc)
        log.error("backup: drill of set %s failed: %s", set_id, error)
    except asyncio.CancelledError:  # the time limit or a shutdown: the run says so
        async with context.session_factory() as session:
            await finish_running_run(
                session,
                run.id,
                "failed",
                run.detail,
                "interrupted: the drill's time limit "
                "(CRM2_BACKUP_COMMAND_TIMEOUT_SECONDS) or a shutdown stopped it",
            )
            await session.commit()
        raise
    finished = utcnow()
    drill = RestoreDrill(
        set_id=set_id,
        ok=not error,
        started_at=started,
        finished_at=finished,
        rto_seconds=round(time.monotonic() - clock, 3),
        rpo_seconds=round((finished - row.started_at).total_seconds(), 3),
        results=results,
        error=error,
    )
    async with context.session_factory() as session:
        detail = {**run.detail, "drill_id": str(drill.id)}
        if not await finish_running_run(
            session, run.id, "ok" if drill.ok else "failed", detail, error
        ):
            # the stale sweep marked this drill failed while it ran (its process looked
            # dead): the late result is noted on the run, which stays failed; no drill row,
            # no change to the set, no event (see stale.py)
            await note_late_run(session, run.id, drill.ok, error)
            await session.commit()
            log.warning("backup: drill run %s finished after it was marked failed", run.id)
            return None
        session.add(drill)
        await session.flush()
        await update_set(session, set_id, verified_at=finished, verify_ok=drill.ok)
        event: Any
        if drill.ok:
            event = SetVerified(
                set_id=set_id,
                drill_id=drill.id,
                rto_seconds=drill.rto_seconds,
                rpo_seconds=drill.rpo_seconds,
            )
        else:
            event = SetVerifyFailed(set_id=set_id, drill_id=drill.id, error=error)
        publish(session, event, subject=set_id)
        await session.commit()
        await session.refresh(drill)
    return drill
