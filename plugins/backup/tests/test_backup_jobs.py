"""Drills as background jobs (202 + a run to poll), and the rule for jobs the stale sweep
failed: a late finish is recorded on the failed row, never flipped back to a success."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backup_kit import (
    API,
    app_with_target,
    event_types,
    run_drill,
    run_set,
    settle,
)
from crm2_backup.errors import BackupUnderway, SetAbandoned
from crm2_backup.models import BackupRun, BackupSet, RestoreDrill
from crm2_backup.service.backup import new_set, run_backup
from crm2_backup.service.stale import fail_stale_runs, fail_stale_sets, stale_after
from crm2_backup.service.verify import verify
from sqlalchemy import select

from crm2_core.api import utcnow
from crm2_core.testing import Crm2TestApp


class GatedTarget:
    """A target whose dump or drill waits until the test lets it go (duck-typed)."""

    name = "gated"
    extension = ".txt"

    def __init__(self) -> None:
        self.gate_dump = False
        self.gate_drill = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def _wait(self) -> None:
        self.entered.set()
        await self.release.wait()

    async def dump(self, path: Path) -> Mapping[str, Any]:
        if self.gate_dump:
            await self._wait()
        path.write_text("gated\n")  # noqa: ASYNC240
        return {"lines": 1}

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        return {"into": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.gate_drill:
            await self._wait()
        return {"lines": len(path.read_text().splitlines())}  # noqa: ASYNC240


@pytest.fixture
async def gated(crm2_app_factory: Any, tmp_path: Path) -> tuple[Crm2TestApp, GatedTarget]:
    target = GatedTarget()
    return await app_with_target(crm2_app_factory, tmp_path, "gated", target), target


def _after_the_limit(app: Crm2TestApp) -> Any:
    return utcnow() + stale_after(app.context.plugin_settings("backup")) + timedelta(seconds=1)


async def test_a_drill_is_a_run_to_poll_and_asking_twice_answers_the_same_run(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    app, _ = gated
    admin = await app.login("admin")
    made = await run_set(app, admin)
    queued = BackupRun(kind="verify", set_id=uuid.UUID(made["id"]), status="queued")
    async with app.context.session_factory() as session:
        session.add(queued)
        await session.commit()

    again = await app.client.post(f"{API}/sets/{made['id']}/verify", headers=admin)

    assert again.status_code == 202 and again.json()["id"] == str(queued.id)
    assert again.headers["Location"] == f"{API}/runs/{queued.id}"
    polled = await app.client.get(f"{API}/runs/{queued.id}", headers=admin)
    assert polled.json()["done"] is False and polled.headers["Retry-After"] == "2"
    async with app.context.session_factory() as session:  # that one is gone now
        await session.delete(await session.get(BackupRun, queued.id))
        await session.commit()
    drill = await run_drill(app, admin, made["id"])
    assert drill["ok"] is True and drill["results"]["gated"]["lines"] == 1
    sets = (await app.client.get(f"{API}/sets/{made['id']}", headers=admin)).json()
    assert sets["state"] == "verified"
    assert await event_types(app) == ["backup.set.completed", "backup.set.verified"]


async def test_only_a_completed_set_is_drilled_and_unknown_runs_are_404(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    app, _ = gated
    admin = await app.login("admin")
    failed = BackupSet(status="failed", location="failed-set", error="boom")
    async with app.context.session_factory() as session:
        session.add(failed)
        await session.commit()

    refused = await app.client.post(f"{API}/sets/{failed.id}/verify", headers=admin)

    assert refused.status_code == 409
    assert refused.json()["type"].endswith("backup-set-busy")
    missing = await app.client.get(f"{API}/runs/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404 and missing.json()["type"].endswith("backup-run-not-found")
    assert (await app.client.get(f"{API}/runs/nope", headers=admin)).status_code == 422
    assert (await app.client.get(f"{API}/runs", headers=admin)).json()["items"] == []


async def test_a_drill_nobody_runs_is_failed_by_the_stale_job(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    app, _ = gated
    admin = await app.login("admin")
    made = await run_set(app, admin)
    orphan = BackupRun(kind="verify", set_id=uuid.UUID(made["id"]), status="running")
    async with app.context.session_factory() as session:
        session.add(orphan)
        await session.commit()

    swept = await fail_stale_runs(app.context, _after_the_limit(app))
    again = await fail_stale_runs(app.context, _after_the_limit(app))

    assert swept == [orphan.id] and again == []
    run = (await app.client.get(f"{API}/runs/{orphan.id}", headers=admin)).json()
    assert run["status"] == "failed" and run["done"] is True
    assert run["error"].startswith("interrupted: the drill ran")
    drill = (await app.client.get(f"{API}/drills/{run['drill_id']}", headers=admin)).json()
    assert drill["ok"] is False and drill["error"] == run["error"]
    body = (await app.client.get(f"{API}/sets/{made['id']}", headers=admin)).json()
    assert body["state"] == "completed"  # the set is not judged by a drill that never ran
    assert (await event_types(app))[-1] == "backup.set.verify_failed"


async def test_a_set_marked_stale_that_then_goes_on_stays_failed_and_leaves_no_files(
    gated: tuple[Crm2TestApp, GatedTarget], tmp_path: Path
) -> None:
    """The sweep deletes a stale set's folder (as a failing set's); a run that was only
    stalled then cannot write into it: it stops with one clear error, the set keeps the
    sweep's reason and is announced failed once, never completed."""
    app, target = gated
    target.gate_dump = True
    task = asyncio.create_task(run_backup(app.context))
    await asyncio.wait_for(target.entered.wait(), 30)
    async with app.context.session_factory() as session:
        [row] = (await session.execute(select(BackupSet))).scalars().all()
    folder = tmp_path / "backups" / row.location
    assert folder.is_dir()

    assert await fail_stale_sets(app.context, _after_the_limit(app)) == [row.id]
    assert not folder.exists()
    target.release.set()
    with pytest.raises(SetAbandoned, match="marked failed by the stale job"):
        await asyncio.wait_for(task, 30)

    assert not folder.exists()
    admin = await app.login("admin")
    body = (await app.client.get(f"{API}/sets/{row.id}", headers=admin)).json()
    assert body["state"] == "failed" and body["done"] is True and body["artifacts"] == []
    assert body["error"].startswith("interrupted: no progress for")
    assert body["progress"]["targets"][0]["phase"] == "failed"
    [run] = (await app.client.get(f"{API}/runs", headers=admin)).json()["items"]
    assert run["status"] == "failed" and run["error"].startswith("interrupted: no progress")
    assert run["detail"]["late"]["ok"] is False and "finished late" in run["error"]
    assert await event_types(app) == ["backup.set.failed"]  # announced once, never completed


async def test_a_drill_marked_stale_that_then_finishes_stays_failed(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    app, target = gated
    admin = await app.login("admin")
    made = await run_set(app, admin)
    target.gate_drill = True
    task = asyncio.create_task(verify(app.context, uuid.UUID(made["id"])))
    await asyncio.wait_for(target.entered.wait(), 30)

    [run_id] = await fail_stale_runs(app.context, _after_the_limit(app))
    target.release.set()

    assert await asyncio.wait_for(task, 30) is None
    run = (await app.client.get(f"{API}/runs/{run_id}", headers=admin)).json()
    assert run["status"] == "failed" and run["detail"]["late"]["ok"] is True
    assert "finished late at" in run["error"] and "not counted" in run["error"]
    async with app.context.session_factory() as session:
        drills = (await session.execute(select(RestoreDrill))).scalars().all()
    assert [d.ok for d in drills] == [False]  # only the stale sweep's record
    body = (await app.client.get(f"{API}/sets/{made['id']}", headers=admin)).json()
    assert body["verify_ok"] is None and body["state"] == "completed"
    assert await event_types(app) == ["backup.set.completed", "backup.set.verify_failed"]


async def test_a_queued_drill_of_a_set_pruned_meanwhile_fails_with_why(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    from crm2_backup.service.queued import run_queued_drill

    app, _ = gated
    pruned = BackupSet(status="pruned", location="gone")
    queued = BackupRun(kind="verify", set_id=pruned.id, status="queued", detail={"trigger": "x"})
    async with app.context.session_factory() as session:
        session.add_all([pruned, queued])
        await session.commit()

    await run_queued_drill(app.context, queued.id)

    admin = await app.login("admin")
    run = (await app.client.get(f"{API}/runs/{queued.id}", headers=admin)).json()
    assert run["status"] == "failed" and run["done"] is True and run["drill_id"] is None
    assert "is pruned, not completed" in run["error"] and run["detail"] == {"trigger": "x"}


async def test_retention_keeps_a_set_while_a_drill_reads_it(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    app, target = gated
    admin = await app.login("admin")
    older = await run_set(app, admin)
    newer = await run_set(app, admin)  # retention (7 daily) keeps only this one today
    target.gate_drill = True
    asked = await app.client.post(f"{API}/sets/{older['id']}/verify", headers=admin)
    await asyncio.wait_for(target.entered.wait(), 30)

    pruned = await app.client.post(f"{API}/prune", headers=admin)
    target.release.set()
    await settle(app)

    assert pruned.json() == {"pruned": []}
    run = (await app.client.get(asked.headers["Location"], headers=admin)).json()
    assert run["status"] == "ok", run
    sets = (await app.client.get(f"{API}/sets", headers=admin)).json()["items"]
    assert [(s["id"], s["status"], s["verify_ok"]) for s in sets] == [
        (newer["id"], "completed", None),
        (older["id"], "completed", True),
    ]
    assert "backup.set.verify_failed" not in await event_types(app)


async def test_concurrent_requests_start_one_set_and_one_drill(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    app, target = gated
    admin = await app.login("admin")
    made = await run_set(app, admin)
    target.gate_dump = target.gate_drill = True

    drills = await asyncio.gather(
        *(app.client.post(f"{API}/sets/{made['id']}/verify", headers=admin) for _ in range(6))
    )
    sets = await asyncio.gather(*(app.client.post(f"{API}/sets", headers=admin) for _ in range(6)))

    assert [r.status_code for r in drills + sets] == [202] * 12
    assert len({r.json()["id"] for r in drills}) == 1
    assert len({r.json()["id"] for r in sets}) == 1
    target.release.set()
    await settle(app)
    async with app.context.session_factory() as session:
        runs = (await session.execute(select(BackupRun.kind))).scalars().all()
        made_sets = (await session.execute(select(BackupSet.id))).scalars().all()
    assert sorted(runs).count("verify") == 1 and len(made_sets) == 2


async def test_a_second_backup_run_while_one_dumps_is_refused_not_run_beside_it(
    gated: tuple[Crm2TestApp, GatedTarget],
) -> None:
    """``crm2 backup run`` (``run_backup`` without a queued set) obeys the one-set-at-a-time
    rule of ``POST /sets`` and the schedule: a second run while one dumps makes no set."""
    app, target = gated
    target.gate_dump = True
    first = asyncio.create_task(run_backup(app.context))
    await asyncio.wait_for(target.entered.wait(), 30)
    async with app.context.session_factory() as session:
        [underway] = (await session.execute(select(BackupSet.id))).scalars().all()

    with pytest.raises(BackupUnderway, match=str(underway)):
        await asyncio.wait_for(run_backup(app.context), 30)

    target.release.set()
    made = await asyncio.wait_for(first, 30)
    assert made is not None and made.status == "completed"
    async with app.context.session_factory() as session:
        assert (await session.execute(select(BackupSet.id))).scalars().all() == [underway]
    again = await run_backup(app.context)  # once it is done, the next one runs
    assert again is not None and again.status == "completed"


async def test_a_set_the_stale_job_fails_has_its_partial_files_deleted(
    gated: tuple[Crm2TestApp, GatedTarget], tmp_path: Path
) -> None:
    """As a failing set's files are: a failed set is never drilled or restored, and nothing
    (not retention, which prunes completed sets) would ever free that space."""
    app, _ = gated
    now = utcnow()
    limit = stale_after(app.context.plugin_settings("backup"))
    crashed = new_set("manual", None, None, "running")
    crashed.updated_at = now - limit - timedelta(seconds=1)
    alive = new_set("manual", None, None, "running")
    alive.updated_at = now - limit + timedelta(seconds=30)  # slow, but within the limit
    root = tmp_path / "backups"
    for row in (crashed, alive):
        (root / row.location).mkdir(parents=True)
        (root / row.location / "postgres.pgdump.enc").write_bytes(b"partial")
    async with app.context.session_factory() as session:
        session.add_all([crashed, alive])
        await session.commit()

    assert await fail_stale_sets(app.context, now) == [crashed.id]

    assert not (root / crashed.location).exists()
    assert (root / alive.location / "postgres.pgdump.enc").exists()
