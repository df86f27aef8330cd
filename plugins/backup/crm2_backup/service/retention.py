"""Grandfather-father-son retention: the newest set of each of the last N days, M weeks, K months.

Periods count only when they hold a set (as restic's ``--keep-daily``): a
week without backups does not use up a weekly slot. The newest set and the
newest verified set are always kept.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm2_backup.config import BackupSettings
from crm2_backup.events import SetPruned
from crm2_backup.models import BackupRun
from crm2_backup.repository import completed_sets, finish_running_run, note_late_run, update_set
from crm2_backup.service import destinations, store
from crm2_core.api import publish

log = logging.getLogger("crm2.backup")


@dataclass(frozen=True)
class Candidate:
    id: uuid.UUID
    started_at: datetime
    verified: bool = False


def _newest_per_period(
    sets: Sequence[Candidate], period: Callable[[datetime], Hashable], count: int
) -> set[uuid.UUID]:
    kept: set[uuid.UUID] = set()
    seen: list[Hashable] = []
    for candidate in sorted(sets, key=lambda c: c.started_at, reverse=True):
        key = period(candidate.started_at)
        if key in seen:
            continue
        if len(seen) >= count:
            break
        seen.append(key)
        kept.add(candidate.id)
    return kept


def keep(sets: Sequence[Candidate], daily: int, weekly: int, monthly: int) -> set[uuid.UUID]:
    """The ids retention keeps; everything else in ``sets`` is pruned."""
    if not sets:
        return set()
    newest = max(sets, key=lambda c: c.started_at)
    kept = {newest.id}
    verified = [c for c in sets if c.verified]
    if verified:
        kept.add(max(verified, key=lambda c: c.started_at).id)
    kept |= _newest_per_period(sets, lambda t: t.date(), daily)
    kept |= _newest_per_period(sets, lambda t: t.isocalendar()[:2], weekly)
    kept |= _newest_per_period(sets, lambda t: (t.year, t.month), monthly)
    return kept


async def prune(context: Any) -> list[uuid.UUID]:
    """Delete the artefacts of the completed sets retention does not keep; their ids."""
    settings: BackupSettings = context.plugin_settings("backup")
    async with context.session_factory() as session:
        rows = await completed_sets(session)
        run = BackupRun(kind="prune")
        session.add(run)
        await session.commit()
    candidates = [Candidate(r.id, r.started_at, bool(r.verify_ok)) for r in rows]
    kept = keep(candidates, settings.keep_daily, settings.keep_weekly, settings.keep_monthly)
    pruned: list[uuid.UUID] = []
    for row in rows:
        if row.id in kept:
            continue
        try:  # the destination's copy first: a failure leaves the set completed, retried later
            remote = destinations.of_set(context, row)
            if remote is not None:
                await destinations.delete(remote, row.location, destinations.files_of(row))
        except Exception as exc:
            log.warning(
                "backup: set %s kept: its destination copy was not deleted: %s", row.id, exc
            )
            continue
        store.remove(store.set_dir(settings, row.location))
        async with context.session_factory() as session:
            await update_set(session, row.id, status="pruned")
            publish(session, SetPruned(set_id=row.id, started_at=row.started_at), subject=row.id)
            await session.commit()
        pruned.append(row.id)
    async with context.session_factory() as session:
        detail = {"pruned": [str(i) for i in pruned], "kept": len(kept)}
        if not await finish_running_run(session, run.id, "ok", detail):
            await note_late_run(session, run.id, True, "")  # the stale sweep failed it meanwhile
        await session.commit()
    return pruned
