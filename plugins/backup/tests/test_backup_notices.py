"""Backup's shipped notification rules: with notifications enabled, a failed backup reaches
every admin's feed; without it, backup starts and nothing reads the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backup_kit import backup_settings, run_set
from test_backup_schedule import BrokenNotesTarget, NotesPlugin

from crm2_core.testing import Crm2TestApp

FEED = "/api/v1/notifications/feed"


async def test_a_failed_backup_reaches_the_admins_feed(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", "notifications", "notes"],
        extra_plugins=(NotesPlugin(BrokenNotesTarget()),),
        plugin_settings={"backup": backup_settings(tmp_path, targets="notes")},
    )
    admin, other_admin, manager = [await app.user(r) for r in ("admin", "admin", "manager")]
    rules = (await app.client.get("/api/v1/notifications/rules", headers=admin.headers)).json()
    shipped = {r["builtin_key"]: r["active"] for r in rules["items"] if r["builtin_key"]}
    backup_rules = {k: v for k, v in shipped.items() if k.startswith("backup:")}
    assert backup_rules == {"backup:backup-failed": True, "backup:drill-failed": True}

    failed = await run_set(app, admin.headers)
    for _ in range(3):  # rule → delivery → in-app notice, each an event of its own
        await app.settle_events(30)

    for who in (admin, other_admin):
        [notice] = (await app.client.get(FEED, headers=who.headers)).json()["items"]
        assert notice["title"] == "Backup failed (manual)"
        assert failed["id"] in notice["body"] and "the notes disk is gone" in notice["body"]
    assert (await app.client.get(FEED, headers=manager.headers)).json()["items"] == []
