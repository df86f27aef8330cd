"""A destination folder that cannot take the set: the set fails at once, with why.

A set left ``running`` would answer every ``POST /sets`` (one backup at a time) until
the stale job gives up on it, an hour later by default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from backup_kit import API, KEY, app_with_target, backup_settings, event_types, run_set
from click.testing import CliRunner
from crm2_backup import crypto

from crm2_core.testing import TEST_JWT_SECRET, Crm2TestApp, build_cli
from crm2_hookspecs import PluginManifest, hookimpl


async def test_a_backup_folder_that_cannot_be_made_fails_the_set_at_once(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    (tmp_path / "not-a-folder").write_text("a file where the backups folder should be")
    settings = {**backup_settings(tmp_path), "dir": str(tmp_path / "not-a-folder" / "backups")}
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup"], plugin_settings={"backup": settings}
    )
    admin = await app.login("admin")

    body = await run_set(app, admin)

    assert body["status"] == body["state"] == "failed", body
    assert "not-a-folder" in body["error"]
    assert await event_types(app) == ["backup.set.failed"]
    runs = (await app.client.get(f"{API}/runs", headers=admin)).json()["items"]
    assert [r["status"] for r in runs] == ["failed"]
    # the next request is a new set, not the dead one answered again
    again = await app.client.post(f"{API}/sets", headers=admin)
    assert again.status_code == 202 and again.json()["id"] != body["id"]


class ManifestBlocker:
    """A target that dumps fine but leaves the set folder unable to take ``manifest.json``
    (as a full disk or a read-only mount would at the last write)."""

    name = "blocker"
    extension = ".txt"

    def __init__(self, root: Path) -> None:
        self.root = root

    async def dump(self, path: Path) -> Mapping[str, Any]:
        path.write_text("data")  # noqa: ASYNC240
        for folder in self.root.iterdir():
            (folder / "manifest.json.tmp").mkdir()
        return {"lines": 1}

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        return {"into": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        return {}


async def test_a_manifest_that_cannot_be_written_fails_the_set_at_once(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    target = ManifestBlocker(tmp_path / "backups")
    app = await app_with_target(crm2_app_factory, tmp_path, "blocker", target)
    admin = await app.login("admin")

    body = await run_set(app, admin)

    assert body["status"] == body["state"] == "failed", body
    assert "manifest.json" in body["error"]
    assert await event_types(app) == ["backup.set.failed"]
    again = await app.client.post(f"{API}/sets", headers=admin)
    assert again.status_code == 202 and again.json()["id"] != body["id"]


async def test_the_cli_says_a_failed_backup_in_one_line_and_exits_1(
    backup: Crm2TestApp, crm2_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "not-a-folder").write_text("")
    for name, value in {
        "CRM2_DATABASE_URL": crm2_database.url,
        "CRM2_PLUGINS": "backup",
        "CRM2_ENV": "test",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_BACKUP_DIR": str(tmp_path / "not-a-folder" / "backups"),
        "CRM2_BACKUP_KEY": crypto.encode_key(KEY),
        "CRM2_BACKUP_SCHEDULE": "",
        "CRM2_BACKUP_VERIFY_SCHEDULE": "",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM2_REDIS_URL", raising=False)

    result = await asyncio.to_thread(CliRunner().invoke, build_cli(), ["backup", "run"])

    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "not-a-folder" in errors[0], result.output
    assert "Traceback" not in result.output
    admin = await backup.login("admin")
    [made] = (await backup.client.get(f"{API}/sets", headers=admin)).json()["items"]
    assert made["status"] == "failed" and made["error"] in errors[0]


class GoodTarget(ManifestBlocker):
    name = "good"

    async def dump(self, path: Path) -> Mapping[str, Any]:
        path.write_bytes(b"x" * 100_000)  # noqa: ASYNC240
        return {"bytes": 100_000}


class FullDiskTarget(ManifestBlocker):
    name = "full"

    async def dump(self, path: Path) -> Mapping[str, Any]:
        raise OSError(28, "No space left on device")


class TwoTargets:
    manifest = PluginManifest(name="two", title="Two")

    def __init__(self, root: Path) -> None:
        self.targets = [GoodTarget(root), FullDiskTarget(root)]

    @hookimpl(optionalhook=True)
    def crm2_backup_targets(self, context: Any) -> Sequence[Any]:
        return self.targets


async def test_a_set_that_fails_part_way_leaves_no_partial_artefacts_on_disk(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    """A failed set is never restored: what it wrote before failing would only hold the
    space a full disk needs back, and nothing (not retention) ever deletes it."""
    root = tmp_path / "backups"
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", "two"],
        extra_plugins=(TwoTargets(root),),
        plugin_settings={"backup": backup_settings(tmp_path, targets="good,full")},
    )
    admin = await app.login("admin")

    body = await run_set(app, admin)

    assert body["status"] == "failed" and "No space left" in body["error"], body
    assert [t["phase"] for t in body["progress"]["targets"]] == ["done", "failed"]
    assert not (root / body["location"]).exists()
    assert list(root.iterdir()) == []


async def test_the_cli_refuses_a_backup_while_one_is_underway_in_one_line(
    backup: Crm2TestApp, crm2_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler and ``POST /sets`` wait for a set underway; ``crm2 backup run`` too:
    it says which set is busy, exits 1 and makes no second set."""
    from crm2_backup.service.backup import new_set

    running = new_set("schedule", "2026-01-01T03:00Z", None, "running")
    async with backup.context.session_factory() as session:
        session.add(running)
        await session.commit()
    for name, value in {
        "CRM2_DATABASE_URL": crm2_database.url,
        "CRM2_PLUGINS": "backup",
        "CRM2_ENV": "test",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_BACKUP_DIR": str(tmp_path / "backups"),
        "CRM2_BACKUP_KEY": crypto.encode_key(KEY),
        "CRM2_BACKUP_SCHEDULE": "",
        "CRM2_BACKUP_VERIFY_SCHEDULE": "",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM2_REDIS_URL", raising=False)

    result = await asyncio.to_thread(CliRunner().invoke, build_cli(), ["backup", "run"])

    assert result.exit_code == 1, (result.output, result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and str(running.id) in errors[0], result.output
    assert "underway" in errors[0] and "Traceback" not in result.output
    admin = await backup.login("admin")
    sets = (await backup.client.get(f"{API}/sets", headers=admin)).json()["items"]
    assert [s["id"] for s in sets] == [str(running.id)]


def test_backup_run_on_an_unmigrated_database_says_run_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As every other command: one line naming the fix, not the SQL of a missing table."""
    for name, value in {
        "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'crm2.db'}",
        "CRM2_PLUGINS": "backup",
        "CRM2_ENV": "test",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_BACKUP_DIR": str(tmp_path / "backups"),
        "CRM2_BACKUP_KEY": crypto.encode_key(KEY),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM2_REDIS_URL", raising=False)

    result = CliRunner().invoke(build_cli(), ["backup", "run"])

    assert result.exit_code == 1, (result.output, result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: the database ({tmp_path / 'crm2.db'}) is not migrated: run `crm2 migrate` first"
    ], result.output
