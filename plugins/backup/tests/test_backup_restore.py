"""``restore()``: every run it starts ends recorded, whatever stops it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import uuid
from collections.abc import Mapping
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backup_kit import API, app_with_target, drop_database_later, event_types, run_set
from crm2_backup import errors
from crm2_backup.models import BackupRun
from crm2_backup.service.restore import restore
from crm2_backup.service.stale import fail_stale_runs, stale_after
from crm2_backup.targets.postgres import PgAddress

from crm2_core.api import utcnow
from crm2_core.testing import Crm2TestApp


class SlowRestoreTarget:
    """A target whose restore runs until it is stopped (a long pg_restore), or fails with
    ``failure`` (duck-typed)."""

    name = "slow"
    extension = ".txt"

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.failure: Exception | None = None

    async def dump(self, path: Path) -> Mapping[str, Any]:
        path.write_text("x\n")  # noqa: ASYNC240
        return {"lines": 1}

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        self.entered.set()
        if self.failure is not None:
            raise self.failure
        await asyncio.sleep(3600)
        return {}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"lines": 1}


@pytest.fixture
async def slow(crm2_app_factory: Any, tmp_path: Path) -> tuple[Crm2TestApp, SlowRestoreTarget]:
    target = SlowRestoreTarget()
    return await app_with_target(crm2_app_factory, tmp_path, "slow", target), target


async def _restore_runs(app: Crm2TestApp, admin: dict[str, str]) -> list[dict[str, Any]]:
    listed = await app.client.get(f"{API}/runs", params={"kind": "restore"}, headers=admin)
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_an_interrupted_restore_is_failed_and_says_the_target_may_be_partly_restored(
    slow: tuple[Crm2TestApp, SlowRestoreTarget],
) -> None:
    app, target = slow
    admin = await app.login("admin")
    made = await run_set(app, admin)
    task = asyncio.create_task(restore(app.context, uuid.UUID(made["id"]), "slow", "somewhere"))
    await asyncio.wait_for(target.entered.wait(), 10)

    task.cancel()  # what asyncio.run does on Ctrl-C, or a time limit around the call
    with pytest.raises(asyncio.CancelledError):
        await task

    [run] = await _restore_runs(app, admin)
    assert run["status"] == "failed" and run["done"] is True
    assert run["error"].startswith("interrupted") and "partly restored" in run["error"]


async def test_restore_and_prune_runs_a_dead_process_left_running_are_failed_by_the_stale_job(
    slow: tuple[Crm2TestApp, SlowRestoreTarget],
) -> None:
    app, _ = slow
    admin = await app.login("admin")
    restoring = BackupRun(kind="restore", detail={"target": "slow", "dry_run": False})
    pruning = BackupRun(kind="prune")
    async with app.context.session_factory() as session:
        session.add_all([restoring, pruning])
        await session.commit()
    later = utcnow() + stale_after(app.context.plugin_settings("backup")) + timedelta(seconds=1)

    swept = await fail_stale_runs(app.context, later)
    again = await fail_stale_runs(app.context, later)

    assert sorted(swept) == sorted([restoring.id, pruning.id]) and again == []
    [run] = await _restore_runs(app, admin)
    assert run["status"] == "failed" and "partly restored" in run["error"]
    pruned = (await app.client.get(f"{API}/runs/{pruning.id}", headers=admin)).json()
    assert pruned["status"] == "failed" and pruned["error"].startswith("interrupted")
    assert await event_types(app) == []  # no drill failed: nothing to announce


async def test_a_postgres_restore_aimed_at_another_port_creates_nothing_on_crm2s_server(
    backup: Crm2TestApp,
) -> None:
    if backup.context.settings.is_sqlite:
        pytest.skip("a PostgreSQL restore")
    admin = await backup.login("admin")
    made = await run_set(backup, admin)
    source = PgAddress.parse(backup.context.settings.database_url)
    name = f"crm2_backup_port_{uuid.uuid4().hex[:10]}"
    conn = await source.connect()
    try:
        with pytest.raises(errors.TargetFailed, match="cannot connect"):  # nothing on port 1
            await restore(
                backup.context,
                uuid.UUID(made["id"]),
                "postgres",
                f"postgresql://{source.user}@{source.host}:1/{name}",
            )
        created = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        assert created is None
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@pytest.mark.parametrize("to", ["template1", "postgres", "{url}/template1"])
async def test_a_postgres_restore_into_a_template_or_the_maintenance_database_is_refused(
    backup: Crm2TestApp, to: str
) -> None:
    """template1 is empty of tables, so it passed the "must be empty" check: crm2's tables
    restored there would be copied into every database created afterwards (and every
    later restore and drill, whose new database would then "have tables", would fail)."""
    if backup.context.settings.is_sqlite:
        pytest.skip("a PostgreSQL restore")
    admin = await backup.login("admin")
    made = await run_set(backup, admin)
    source = PgAddress.parse(backup.context.settings.database_url)
    to = to.format(url=f"postgresql://{source.user}@{source.host}:{source.port}")

    with pytest.raises(errors.BadTargetAddress, match=r"template|maintenance"):
        # a dry run only: the test never writes into the shared server's template1
        await restore(backup.context, uuid.UUID(made["id"]), "postgres", to, dry_run=True)

    [run] = await _restore_runs(backup, admin)
    assert run["status"] == "failed"


async def test_an_unforeseen_target_failure_is_a_target_failed_and_a_failed_run(
    slow: tuple[Crm2TestApp, SlowRestoreTarget],
) -> None:
    app, target = slow
    admin = await app.login("admin")
    made = await run_set(app, admin)
    target.failure = OSError("disk full")

    with pytest.raises(errors.TargetFailed, match="slow: OSError: disk full"):
        await restore(app.context, uuid.UUID(made["id"]), "slow", "somewhere")

    [run] = await _restore_runs(app, admin)
    assert run["status"] == "failed" and run["error"] == "OSError: disk full"


@pytest.mark.parametrize("dry_run", [True, False])
async def test_a_sqlite_restore_into_a_missing_folder_is_a_bad_target(
    backup: Crm2TestApp, tmp_path: Path, dry_run: bool
) -> None:
    if not backup.context.settings.is_sqlite:
        pytest.skip("a SQLite restore")
    admin = await backup.login("admin")
    made = await run_set(backup, admin)
    to = tmp_path / "no" / "such" / "restored.db"

    with pytest.raises(errors.BadTargetAddress, match="no directory"):
        await restore(backup.context, uuid.UUID(made["id"]), "sqlite", str(to), dry_run=dry_run)

    [run] = await _restore_runs(backup, admin)
    assert run["status"] == "failed" and not to.parent.exists()


async def test_two_restores_into_one_new_postgres_database_one_wins_the_other_is_refused(
    backup: Crm2TestApp,
) -> None:
    if backup.context.settings.is_sqlite:
        pytest.skip("a PostgreSQL restore")
    admin = await backup.login("admin")
    made = await run_set(backup, admin)
    source = PgAddress.parse(backup.context.settings.database_url)
    name = f"crm2_backup_twice_{uuid.uuid4().hex[:10]}"
    try:
        results = await asyncio.gather(
            *(restore(backup.context, uuid.UUID(made["id"]), "postgres", name) for _ in range(2)),
            return_exceptions=True,
        )

        [won] = [r for r in results if isinstance(r, dict)]
        [refused] = [r for r in results if not isinstance(r, dict)]
        assert won["restored_into"] == name
        # "created meanwhile" in the usual race; a pg_restore failure if the loser came later
        assert isinstance(refused, (errors.BadTargetAddress, errors.TargetFailed)), refused
        assert "Violation" not in str(refused.detail), refused.detail
        runs = await _restore_runs(backup, admin)
        assert sorted(r["status"] for r in runs) == ["failed", "ok"]
    finally:
        drop_database_later(source, name)


async def test_a_failed_restore_run_records_what_its_target_wrote_before_failing(
    slow: tuple[Crm2TestApp, SlowRestoreTarget],
) -> None:
    app, target = slow
    admin = await app.login("admin")
    made = await run_set(app, admin)
    target.failure = errors.TargetFailed("half way: 3 keys written", restored=3)

    with pytest.raises(errors.TargetFailed, match="half way"):
        await restore(app.context, uuid.UUID(made["id"]), "slow", "somewhere")

    [run] = await _restore_runs(app, admin)
    assert run["status"] == "failed" and "3 keys written" in run["error"]
    assert run["detail"] == {"target": "slow", "dry_run": False, "restored": 3}


async def test_two_restores_into_one_new_sqlite_file_one_wins_the_other_is_refused(
    backup: Crm2TestApp, tmp_path: Path
) -> None:
    if not backup.context.settings.is_sqlite:
        pytest.skip("a SQLite restore")
    admin = await backup.login("admin")
    made = await run_set(backup, admin)
    to = tmp_path / "restored.db"

    results = await asyncio.gather(
        *(restore(backup.context, uuid.UUID(made["id"]), "sqlite", str(to)) for _ in range(2)),
        return_exceptions=True,
    )

    [won] = [r for r in results if isinstance(r, dict)]
    [refused] = [r for r in results if not isinstance(r, dict)]
    assert won["written"] == str(to)
    assert isinstance(refused, errors.BadTargetAddress), refused
    assert "exists" in str(refused.detail)
    with closing(sqlite3.connect(to)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    left = [p.name for p in tmp_path.iterdir() if "restored" in p.name]  # noqa: ASYNC240
    assert left == ["restored.db"]  # no partial copy beside it
    runs = await _restore_runs(backup, admin)
    assert sorted(r["status"] for r in runs) == ["failed", "ok"]


async def test_a_restored_sqlite_file_is_readable_by_its_owner_only(
    backup: Crm2TestApp, tmp_path: Path
) -> None:
    """The restored file holds every row (password hashes, customers' data): it appears
    mode 0600 whatever the umask, as the key file does, not 0644 for every local user."""
    if not backup.context.settings.is_sqlite:
        pytest.skip("a SQLite restore")
    admin = await backup.login("admin")
    made = await run_set(backup, admin)
    to = tmp_path / "restored.db"

    await restore(backup.context, uuid.UUID(made["id"]), "sqlite", str(to))

    assert to.stat().st_mode & 0o777 == 0o600, oct(to.stat().st_mode)


class ProgramRestoreTarget(SlowRestoreTarget):
    """A restore that runs a program through the built-in targets' ``run_program`` (as
    pg_restore, rabbitmqctl do), writing its pid first and running until stopped."""

    name = "program"

    def __init__(self, pid_file: Path) -> None:
        super().__init__()
        self.pid_file = pid_file

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        from crm2_backup.targets.base import run_program

        script = (
            "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
        )
        task = asyncio.ensure_future(
            run_program([sys.executable, "-c", script, str(self.pid_file)], timeout=120)
        )
        while not self.pid_file.exists() or not self.pid_file.read_text():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.entered.set()
        await task
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_an_interrupted_restore_stops_the_program_it_ran(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """A time limit or a shutdown that stops a restore (or a backup) stops its pg_restore
    (pg_dump, rabbitmqctl) too: left running, it would go on writing into the target the
    run already reported interrupted."""
    target = ProgramRestoreTarget(tmp_path / "program.pid")
    app = await app_with_target(crm2_app_factory, tmp_path, "program", target)
    admin = await app.login("admin")
    made = await run_set(app, admin)
    task = asyncio.create_task(restore(app.context, uuid.UUID(made["id"]), "program", "there"))
    await asyncio.wait_for(target.entered.wait(), 20)
    pid = int(target.pid_file.read_text())
    try:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert not _alive(pid), "the restore's program outlived it"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
