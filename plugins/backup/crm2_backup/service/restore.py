"""Restoring one target of a set into a named place, after every check a drill makes."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.errors import SchemaTooNew, SetBusy, TargetFailed, UnknownTarget
from crm2_backup.models import BackupRun
from crm2_backup.repository import artifacts, finish_running_run, get_set, note_late_run
from crm2_backup.service.artifacts import open_artifact
from crm2_backup.service.backup import _error_text
from crm2_backup.service.keys import load_key
from crm2_backup.service.locks import SET_READERS
from crm2_backup.service.schema import known_revisions, unknown_heads
from crm2_backup.service.targets import target as find_target
from crm2_core.api import Crm2Error, take_turns

INTERRUPTED = (
    "interrupted (Ctrl-C, a time limit or a shutdown) before it finished: "
    "the target may be partly restored; check it or restore into a new one"
)


async def restore(
    context: Any, set_id: uuid.UUID, target_name: str, to: str, *, dry_run: bool = False
) -> dict[str, Any]:
    """Restore ``target_name`` of ``set_id`` into ``to``; what the target reports.

    Refuses a set that is not complete, whose artefact's checksum or tag does not
    verify, or whose schema is newer than the installed code. Every failure is a
    :class:`Crm2Error` (an unforeseen one a :class:`TargetFailed`) and ends its run
    ``failed``.
    """
    settings: BackupSettings = context.plugin_settings("backup")
    async with context.session_factory() as session:
        await take_turns(session, SET_READERS)  # retention prunes no set a restore starts on
        row = await get_set(session, set_id)
        if row.status != "completed":
            raise SetBusy(f"set {set_id} is {row.status}, not completed")
        found = [a for a in await artifacts(session, set_id) if a.target == target_name]
        if not found:
            raise UnknownTarget(f"set {set_id} holds no {target_name!r} artefact")
        run = BackupRun(
            kind="restore", set_id=set_id, detail={"target": target_name, "dry_run": dry_run}
        )
        session.add(run)
        await session.commit()
    try:
        newer = unknown_heads(row.manifest.get("alembic_heads", {}), known_revisions(context))
        if newer:
            raise SchemaTooNew(f"revisions this code does not know: {newer}: upgrade crm2 first")
        target = find_target(context, target_name)
        key = load_key(settings)
        with tempfile.TemporaryDirectory(prefix="crm2-restore-") as scratch:
            plain = await open_artifact(settings, key, row, found[0], Path(scratch), context)
            report = dict(await target.restore(plain, to, dry_run))
    except BaseException as exc:  # Ctrl-C and time limits too (CancelledError): never left running
        error = _error_text(exc) if isinstance(exc, Exception) else INTERRUPTED
        # what the target did before it failed (e.g. Redis keys written), when it says
        done = exc.extensions if isinstance(exc, Crm2Error) else {}
        await _finish(context, run, "failed", {**run.detail, **done}, error)
        if isinstance(exc, Exception) and not isinstance(exc, Crm2Error):
            # a target's unforeseen failure: still one clear error (a line, not a traceback)
            raise TargetFailed(f"{target_name}: {error}") from exc
        raise
    await _finish(context, run, "ok", {**run.detail, **report})
    return report


async def _finish(
    context: Any, run: BackupRun, status: str, detail: dict[str, Any], error: str = ""
) -> None:
    async with context.session_factory() as session:
        if not await finish_running_run(session, run.id, status, detail, error):
            # the stale sweep failed it meanwhile (see stale.py): it stays failed, noted
            await note_late_run(session, run.id, status == "ok", error)
        await session.commit()
