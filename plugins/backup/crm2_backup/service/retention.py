"""Grandfather-father-son retention: the newest set of each of the last N days, M weeks, K months.

Periods count only when they hold a set (as restic's ``--keep-daily``): a
week without backups does not use up a weekly slot. The newest set and the
newest verified set are always kept, and so is a set a drill or a restore is reading.
A set dated in the future (``service/clock.py``) is neither counted nor pruned.

A prune first marks the sets it drops ``pruned``, under the lock a drill or restore
takes to start on a set: a set being read is kept, and one being pruned can no longer be
drilled or restored. Then it deletes their files. A set whose destination copy could not
be deleted goes back to ``completed`` (retried next time); ``backup.set.pruned`` is sent
once the files are gone. Two prunes at once mark (and announce) each set once.
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
from crm2_backup.models import BackupRun, BackupSet
from crm2_backup.repository import (
    completed_sets,
    finish_running_run,
    note_late_run,
    sets_being_read,
    update_set,
)
from crm2_backup.service import destinations, store
from crm2_backup.service.clock import set_aside_future
from crm2_backup.service.locks import SET_READERS
from crm2_core.api import publish, take_turns

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


async def _mark_pruned(context: Any, settings: BackupSettings) -> tuple[list[BackupSet], int]:
    """The sets retention drops, now ``pruned`` by this call (none twice); how many it keeps."""
    async with context.session_factory() as session:
        await take_turns(session, SET_READERS)
        rows = await completed_sets(session)
        # a set dated ahead of this clock would take the newest slots: set aside, kept
        trusted, future = set_aside_future(rows)
        candidates = [Candidate(r.id, r.started_at, bool(r.verify_ok)) for r in trusted]
        kept = keep(candidates, settings.keep_daily, settings.keep_weekly, settings.keep_monthly)
        kept |= {r.id for r in future}
        kept |= await sets_being_read(session)
        dropped = []
        for row in rows:
            # only_if: a prune that ran meanwhile took it already
            if row.id not in kept and await update_set(
                session, row.id, only_if="completed", status="pruned"
            ):
                dropped.append(row)
        await session.commit()
    return dropped, sum(1 for row in rows if row.id in kept)


async def prune(context: Any) -> list[uuid.UUID]:
    """Delete the artefacts of the completed sets retention does not keep; their ids."""
    settings: BackupSettings = context.plugin_settings("backup")
    async with context.session_factory() as session:
        run = BackupRun(kind="prune")
        session.add(run)
        await session.commit()
    dropped, kept = await _mark_pruned(context, settings)
    pruned: list[uuid.UUID] = []
    for row in dropped:
        try:  # the destination's copy first: a failure leaves the set completed, retried later
            remote = destinations.of_set(context, row)
            if remote is not None:
                await destinations.delete(remote, row.location, destinations.files_of(row))
        except Exception as exc:
            log.warning(
                "backup: set %s kept: its destination copy was not deleted: %s", row.id, exc
            )
            async with context.session_factory() as session:
                await update_set(session, row.id, only_if="pruned", status="completed")
                await session.commit()
            continue
        store.remove(store.set_dir(settings, row.location))
        async with context.session_factory() as session:
            publish(session, SetPruned(set_id=row.id, started_at=row.started_at), subject=row.id)
            await session.commit()
        pruned.append(row.id)
    async with context.session_factory() as session:
        detail = {"pruned": [str(i) for i in pruned], "kept": kept + len(dropped) - len(pruned)}
        if not await finish_running_run(session, run.id, "ok", detail):
            await note_late_run(session, run.id, True, "")  # the stale sweep failed it meanwhile
        await session.commit()
    return pruned
