"""Retention over HTTP and beside other work: what a prune deletes, and what it announces."""

from __future__ import annotations

import asyncio
import uuid

from backup_kit import API, event_types, run_set
from crm2_backup.models import BackupRun

from crm2_core.testing import Crm2TestApp


async def test_concurrent_prunes_prune_and_announce_each_set_once(backup: Crm2TestApp) -> None:
    admin = await backup.login("admin")
    made = [await run_set(backup, admin) for _ in range(3)]  # today: only the newest is kept

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
