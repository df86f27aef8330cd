"""Schedules (once per due time), the worker handlers, retention over a simulated year, and
targets added by another plugin through ``crm2_backup_targets``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backup_kit import API, backup_settings, event_types, run_set
from crm2_backup.cron import Cron, CronError
from crm2_backup.jobs import tick
from crm2_backup.service.retention import Candidate, keep

from crm2_core.api import utcnow
from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import PluginManifest, hookimpl

NOW = datetime(2026, 12, 3, 3, 7, tzinfo=UTC)


def test_cron_finds_the_latest_due_time() -> None:
    assert Cron.parse("0 3 * * *").previous(NOW) == NOW.replace(minute=0)
    assert Cron.parse("*/15 * * * 1-5").previous(
        datetime(2026, 12, 6, 16, 5, tzinfo=UTC)
    ) == datetime(2026, 12, 4, 23, 45, tzinfo=UTC)
    assert Cron.parse("0 0 1 * *").previous(NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    # "²" passes str.isdigit() but not int(); 5,000 digits pass it too but not int() either
    for bad in ("* * *", "61 * * * *", "*/0 * * * *", "a b c d e", "*/\u00b2 * * * *",
                "1-\u00b2 * * * *", "\u00b2 * * * *", "9" * 5000 + " * * * *"):  # fmt: skip
        with pytest.raises(CronError):
            Cron.parse(bad)


def test_a_schedule_that_is_never_due_is_refused_with_why() -> None:
    """Feb 30 or Apr 31 parse as numbers but never come: such a schedule would make no
    backup ever, silently; it stops start-up like any bad setting instead."""
    from crm2_backup.config import BackupSettings
    from pydantic import ValidationError

    for never in ("0 3 30 2 *", "0 3 31 4,6,9,11 *", "0 3 30-31 2 *"):
        with pytest.raises(CronError, match="never due"):
            Cron.parse(never)
    with pytest.raises(ValidationError, match="never due"):
        BackupSettings(schedule="0 3 31 4 *")
    with pytest.raises(ValidationError, match="never due"):
        BackupSettings(verify_schedule="30 4 30 2 *")
    # due sometimes: Feb 29 (leap years), the 31st in a list with a long month, and a
    # restricted weekday (cron: either day field may match)
    assert Cron.parse("0 3 29 2 *").previous(datetime(2028, 3, 1, tzinfo=UTC)) == datetime(
        2028, 2, 29, 3, 0, tzinfo=UTC
    )
    Cron.parse("0 3 31 4,5 *")
    Cron.parse("0 3 30 2 1")
    assert Cron.parse("* * * * *").previous(NOW) == NOW


def test_a_star_step_day_field_is_unrestricted_as_in_vixie_cron() -> None:
    """crontab(5): the two day fields are OR-ed only when both are restricted, i.e. neither
    starts with ``*``. ``*/2`` starts with ``*`` (vixie and cronie flag the field from its
    first character), so ``0 3 */2 * 1`` is odd days that are Mondays, not every odd day
    plus every Monday; ``1-31/2`` (the same days, spelt restricted) is OR-ed."""
    thursday_3rd = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    monday_7th = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    monday_14th = datetime(2026, 12, 14, 3, 0, tzinfo=UTC)

    star_step = Cron.parse("0 3 */2 * 1")
    assert [star_step.matches(t) for t in (thursday_3rd, monday_7th, monday_14th)] == [
        False,
        True,
        False,
    ]
    assert star_step.previous(datetime(2026, 12, 20, tzinfo=UTC)) == monday_7th
    restricted = Cron.parse("0 3 1-31/2 * 1")
    assert [restricted.matches(t) for t in (thursday_3rd, monday_7th, monday_14th)] == [
        True,
        True,
        True,
    ]
    # a star step in the weekday field: the 1st, only when it is a Sunday/Tuesday/…
    weekday_step = Cron.parse("0 3 1 * */2")
    assert weekday_step.matches(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))  # a Tuesday
    assert not weekday_step.matches(datetime(2027, 1, 1, 3, 0, tzinfo=UTC))  # a Friday
    assert not weekday_step.matches(datetime(2026, 12, 6, 3, 0, tzinfo=UTC))  # a Sunday
    # so Feb 30 with a star-step weekday is never due, as with ``*``
    with pytest.raises(CronError, match="never due"):
        Cron.parse("0 3 30 2 */2")


def test_retention_over_a_simulated_year_keeps_exactly_gfs() -> None:
    start = datetime(2026, 1, 1, 3, tzinfo=UTC)
    sets = [Candidate(id=uuid.uuid4(), started_at=start + timedelta(days=d)) for d in range(365)]
    by_id = {c.id: c for c in sets}

    kept = {by_id[i].started_at.date() for i in keep(sets, daily=7, weekly=4, monthly=12)}

    last = sets[-1].started_at.date()  # 2026-12-31, a Thursday
    daily = {last - timedelta(days=d) for d in range(7)}
    # the newest set of each of the 4 newest ISO weeks: the week's Sunday, or the last day
    weekly = {
        last,
        datetime(2026, 12, 27).date(),
        datetime(2026, 12, 20).date(),
        datetime(2026, 12, 13).date(),
    }
    monthly = {(datetime(2026, m + 1, 1) - timedelta(days=1)).date() for m in range(1, 12)} | {last}
    assert kept == daily | weekly | monthly
    # Dec 25-31 daily; weekly adds Dec 20 and 13 (Dec 27 and 31 are daily already);
    # monthly adds the last day of January … November (December's is daily)
    assert len(kept) == 7 + 2 + 11


def test_retention_always_keeps_the_newest_verified_set() -> None:
    old = Candidate(id=uuid.uuid4(), started_at=NOW - timedelta(days=400), verified=True)
    new = Candidate(id=uuid.uuid4(), started_at=NOW)

    assert keep([old, new], daily=1, weekly=0, monthly=0) == {old.id, new.id}


@pytest.mark.crm2_plugins("backup")
async def test_a_due_time_makes_one_set_however_often_the_job_runs(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    app: Crm2TestApp = await crm2_app_factory(
        plugin_settings={
            "backup": backup_settings(tmp_path, schedule="0 3 * * *", verify_schedule="5 3 * * *")
        },
        # the test ticks at NOW itself: the app's scheduler would also tick at the real time,
        # and between 03:00 and 09:00 UTC (the catch-up window) queue a second set
        scheduler_enabled=False,
    )

    first = await tick(app.context, NOW)
    again = await tick(app.context, NOW + timedelta(seconds=30))
    await app.settle_events()

    assert set(first) == {"backup", "drill"} and again == {}
    admin = await app.login("admin")
    sets = (await app.client.get(f"{API}/sets", headers=admin)).json()["items"]
    assert [(s["trigger"], s["status"]) for s in sets] == [("schedule", "completed")]
    types = await event_types(app, requests=True)
    assert types.count("backup.set.requested") == 1 and "backup.set.completed" in types
    # the drill was queued in the same tick as the backup: it ran on whichever set was
    # complete when its handler started, or found none; either way it ran once
    assert types.count("backup.drill.requested") == 1


@pytest.mark.crm2_plugins("backup")
async def test_an_unknown_target_is_a_422_and_makes_no_set(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    app: Crm2TestApp = await crm2_app_factory(
        plugin_settings={"backup": backup_settings(tmp_path, targets="nothing_here")}
    )
    admin = await app.login("admin")

    response = await app.client.post(f"{API}/sets", headers=admin)

    assert response.status_code == 422
    assert response.json()["type"].endswith("backup-unknown-target")
    assert "nothing_here" in response.json()["detail"]
    assert (await app.client.get(f"{API}/sets", headers=admin)).json()["items"] == []


async def test_a_failed_backup_is_announced_for_admins(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    plugin = NotesPlugin(BrokenNotesTarget())
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", "notes"],
        extra_plugins=(plugin,),
        plugin_settings={"backup": backup_settings(tmp_path, targets="notes")},
    )
    admin = await app.login("admin")

    body = await run_set(app, admin, verify=True)

    assert body["status"] == body["state"] == "failed"
    assert "the notes disk is gone" in body["error"]
    assert body["progress"] == {
        "targets": [{"target": "notes", "phase": "failed", "size_bytes": None}],
        "verify": "pending",
    }
    assert await event_types(app) == ["backup.set.failed"]


class NotesTarget:
    """A third party's target: duck-typed, no import of crm2_backup."""

    name = "notes"
    extension = ".txt"

    def __init__(self) -> None:
        self.restored: list[str] = []

    async def dump(self, path: Path) -> Mapping[str, Any]:
        path.write_text("note one\nnote two\n")  # noqa: ASYNC240
        return {"lines": 2}

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        if not dry_run:
            self.restored.append(path.read_text())  # noqa: ASYNC240
        return {"into": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        lines = len(path.read_text().splitlines())  # noqa: ASYNC240
        if lines != facts["lines"]:
            raise ValueError("notes differ")
        return {"lines": lines}


class BrokenNotesTarget(NotesTarget):
    async def dump(self, path: Path) -> Mapping[str, Any]:
        raise OSError("the notes disk is gone")


class NotesPlugin:
    manifest = PluginManifest(name="notes", title="Notes")

    def __init__(self, target: NotesTarget | None = None) -> None:
        self.target = target or NotesTarget()

    @hookimpl(optionalhook=True)
    def crm2_backup_targets(self, context: Any) -> Sequence[Any]:
        return [self.target]


async def test_another_plugin_adds_a_target_through_the_hook(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    from crm2_backup.service.restore import restore

    plugin = NotesPlugin()
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", "notes"],
        extra_plugins=(plugin,),
        plugin_settings={"backup": backup_settings(tmp_path, targets="notes")},
    )
    admin = await app.login("admin")

    body = await run_set(app, admin, verify=True)
    [drill] = (await app.client.get(f"{API}/drills", headers=admin)).json()["items"]
    await restore(app.context, uuid.UUID(body["id"]), "notes", "anywhere")

    assert body["targets"] == ["notes"] and body["state"] == "verified"
    assert body["progress"]["verify"] == "ok" and drill["ok"] is True
    assert drill["results"]["notes"] == {
        "integrity": "ok",
        "drill": "ok",
        "seconds": pytest.approx(0, abs=5),
        "lines": 2,
    }
    assert plugin.target.restored == ["note one\nnote two\n"]


async def test_a_plugin_offering_a_target_starts_without_backup(crm2_app_factory: Any) -> None:
    app: Crm2TestApp = await crm2_app_factory(plugins=["notes"], extra_plugins=(NotesPlugin(),))
    assert app.context.is_enabled("notes") and not app.context.is_enabled("backup")


@pytest.mark.crm2_plugins("backup")
async def test_a_set_left_running_by_a_crashed_process_is_failed_after_the_limit(
    backup: Crm2TestApp,
) -> None:
    from crm2_backup.models import BackupRun
    from crm2_backup.service.backup import new_progress, new_set
    from crm2_backup.service.stale import fail_stale_sets, stale_after

    now = utcnow()
    limit = stale_after(backup.context.plugin_settings("backup"))
    crashed = new_set("manual", None, None, "running", new_progress(["sqlite"]))
    crashed.progress["targets"][0]["phase"] = "dumping"
    crashed.updated_at = now - limit - timedelta(seconds=1)
    never = new_set("schedule", "2026-01-01T03:00Z", None, "queued")
    never.updated_at = crashed.updated_at
    alive = new_set("manual", None, None, "running")
    alive.updated_at = now - limit + timedelta(seconds=30)  # slow, but within the limit
    async with backup.context.session_factory() as session:
        session.add_all([crashed, never, alive])
        session.add(BackupRun(kind="backup", set_id=crashed.id, status="running"))
        await session.commit()

    failed = await fail_stale_sets(backup.context, now)
    again = await fail_stale_sets(backup.context, now + timedelta(seconds=1))

    assert set(failed) == {crashed.id, never.id} and again == []
    admin = await backup.login("admin")
    sets = {
        s["id"]: s for s in (await backup.client.get(f"{API}/sets", headers=admin)).json()["items"]
    }
    assert sets[str(alive.id)]["state"] == "running"
    gone = sets[str(crashed.id)]
    assert gone["state"] == "failed" and gone["done"] is True
    assert gone["error"].startswith("interrupted: no progress for")
    assert gone["progress"]["targets"][0]["phase"] == "failed"
    assert sets[str(never.id)]["error"].startswith("never started")
    runs = (await backup.client.get(f"{API}/runs", headers=admin)).json()["items"]
    assert [(r["status"], r["error"][:11]) for r in runs] == [("failed", "interrupted")]
    assert await event_types(backup) == ["backup.set.failed", "backup.set.failed"]


@pytest.mark.crm2_plugins("backup")
async def test_asking_for_a_backup_while_one_runs_answers_that_one(backup: Crm2TestApp) -> None:
    from crm2_backup.service.backup import new_set

    running = new_set("schedule", "2026-01-01T03:00Z", None, "running")
    async with backup.context.session_factory() as session:
        session.add(running)
        await session.commit()
    admin = await backup.login("admin")

    response = await backup.client.post(f"{API}/sets", headers=admin)

    assert response.status_code == 202
    assert response.json()["id"] == str(running.id) and response.json()["state"] == "running"
    assert response.headers["Location"] == f"{API}/sets/{running.id}"
    assert len((await backup.client.get(f"{API}/sets", headers=admin)).json()["items"]) == 1


@pytest.mark.crm2_plugins("backup")
async def test_a_due_time_waits_while_a_set_is_underway_instead_of_dumping_beside_it(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """``* * * * *`` (or a 03:00 schedule meeting a manual set): one backup at a time, as
    ``POST /sets``; the due time is made once the set underway is done."""
    from crm2_backup.repository import update_set
    from crm2_backup.service.backup import new_set

    app: Crm2TestApp = await crm2_app_factory(
        plugin_settings={"backup": backup_settings(tmp_path, schedule="* * * * *")},
        scheduler_enabled=False,
    )
    running = new_set("manual", None, None, "running")
    async with app.context.session_factory() as session:
        session.add(running)
        await session.commit()

    assert await tick(app.context, NOW) == {}
    assert await tick(app.context, NOW + timedelta(minutes=1)) == {}

    async with app.context.session_factory() as session:
        await update_set(session, running.id, status="failed", error="test: over")
        await session.commit()
    queued = await tick(app.context, NOW + timedelta(minutes=1, seconds=30))
    await app.settle_events()

    assert set(queued) == {"backup"}
    admin = await app.login("admin")
    sets = (await app.client.get(f"{API}/sets", headers=admin)).json()["items"]
    assert sorted((s["trigger"], s["status"]) for s in sets) == [
        ("manual", "failed"),
        ("schedule", "completed"),
    ]
