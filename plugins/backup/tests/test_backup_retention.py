"""Retention over HTTP and beside other work: what a prune deletes, and what it announces."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backup_kit import API, backup_settings, event_types, run_set
from crm2_backup.models import BackupRun, BackupSet
from crm2_backup.service.backup import new_set
from crm2_backup.service.verify import verify

from crm2_core.api import utcnow
from crm2_core.testing import Crm2TestApp


async def test_concurrent_prunes_prune_and_announce_each_set_once(backup: Crm2TestApp) -> None:
    admin = await backup.login("admin")
    # three completed sets of today (rows: what retention reads), only the newest is kept
    now = utcnow()
    rows = [new_set("manual", None, None, "completed") for _ in range(3)]
    for age, row in zip((3, 2, 1), rows, strict=True):
        row.started_at = row.finished_at = now - timedelta(milliseconds=age)
    async with backup.context.session_factory() as session:
        session.add_all(rows)
        await session.commit()
    made = [{"id": str(row.id)} for row in rows]

    answers = await asyncio.gather(
        *(backup.client.post(f"{API}/prune", headers=admin) for _ in range(4))
    )

    assert [a.status_code for a in answers] == [200] * 4
    pruned = [i for a in answers for i in a.json()["pruned"]]
    assert sorted(pruned) == sorted(s["id"] for s in made[:2])
    assert (await event_types(backup)).count("backup.set.pruned") == 2


async def test_retention_keeps_a_set_while_a_restore_reads_it(backup: Crm2TestApp) -> None:
    admin = await backup.login("admin")
    older = await run_set(backup, admin)
    await run_set(backup, admin)
    restoring = BackupRun(kind="restore", set_id=uuid.UUID(older["id"]))
    async with backup.context.session_factory() as session:
        session.add(restoring)
        await session.commit()

    during = await backup.client.post(f"{API}/prune", headers=admin)

    assert during.json() == {"pruned": []}
    body = (await backup.client.get(f"{API}/sets/{older['id']}", headers=admin)).json()
    assert body["status"] == "completed"


async def test_a_future_dated_set_is_not_the_latest_and_lets_retention_prune_no_newer_set(
    crm2_app_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A set stamped in the future (a process with its clock ahead, a hand-made row) would
    stay "latest" for ever and take the newest day's slot: retention would prune the sets
    that are really the newest. It is set aside, kept and named in the log instead."""
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup"],
        plugin_settings={
            "backup": backup_settings(tmp_path, keep_daily=1, keep_weekly=0, keep_monthly=0)
        },
    )
    now = utcnow()

    def completed(at: datetime) -> BackupSet:
        row = new_set("manual", None, None, "completed")
        row.started_at, row.finished_at = at, at
        return row

    older, newer = completed(now - timedelta(hours=2)), completed(now - timedelta(hours=1))
    future = completed(now + timedelta(days=30))
    async with app.context.session_factory() as session:
        session.add_all([older, newer, future])
        await session.commit()
    admin = await app.login("admin")

    with caplog.at_level(logging.WARNING, logger="crm2.backup"):
        status = (await app.client.get(f"{API}/status", headers=admin)).json()
        drill = await verify(app.context)  # the latest set, by default
        pruned = (await app.client.post(f"{API}/prune", headers=admin)).json()["pruned"]

    assert status["latest_set"]["id"] == str(newer.id)
    assert drill is not None and drill.set_id == newer.id
    assert pruned == [str(older.id)]
    body = (await app.client.get(f"{API}/sets/{future.id}", headers=admin)).json()
    assert body["status"] == "completed"  # kept: only its clock is suspect
    assert f"set {future.id}" in caplog.text and "in the future" in caplog.text


async def test_the_sets_list_flags_a_future_dated_set_it_cannot_order_as_the_newest(
    backup: Crm2TestApp,
) -> None:
    """The list is ordered by ``started_at``, so a set dated ahead of the clock comes first:
    it says it is future-dated (never the latest) instead of passing for the newest."""
    now = utcnow()
    made = new_set("manual", None, None, "completed")
    ahead = new_set("manual", None, None, "completed")
    made.started_at = now - timedelta(hours=1)
    ahead.started_at = now + timedelta(days=30)
    async with backup.context.session_factory() as session:
        session.add_all([made, ahead])
        await session.commit()
    admin = await backup.login("admin")

    listed = (await backup.client.get(f"{API}/sets", headers=admin)).json()["items"]
    one = (await backup.client.get(f"{API}/sets/{ahead.id}", headers=admin)).json()
    status = (await backup.client.get(f"{API}/status", headers=admin)).json()

    assert [(s["id"], s["future_dated"]) for s in listed] == [
        (str(ahead.id), True),
        (str(made.id), False),
    ]
    assert one["future_dated"] is True
    assert status["latest_set"]["id"] == str(made.id)
    assert status["latest_set"]["future_dated"] is False
