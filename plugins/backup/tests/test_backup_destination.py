"""A documents storage backend as the sets' destination (``CRM2_BACKUP_DESTINATION``):
a completed set is copied there, drills and restores read it back when the local
staging copy is gone, retention deletes it there; an unknown name stops start-up."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backup_kit import API, TargetPlugin, backup_settings, run_drill, run_set
from crm2_backup.service.backup import run_backup
from crm2_backup.service.restore import restore
from crm2_backup.service.retention import prune
from crm2_backup.service.stale import fail_stale_sets, stale_after

from crm2_core.api import ConfigurationError, utcnow
from crm2_core.testing import Crm2TestApp


def _stored(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts)


async def test_sets_are_kept_in_a_documents_backend_and_read_back_from_it(
    crm2_app_factory: Any, tmp_path: Path, crm2_database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not crm2_database.url.startswith("sqlite"):
        pytest.skip("the destination is the same on every database: proven on SQLite")
    remote_root = tmp_path / "remote"  # documents' local backend: a second folder
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", "documents"],
        plugin_settings={
            "backup": backup_settings(
                tmp_path,
                targets="sqlite",
                destination="documents:local",
                keep_daily=1,
                keep_weekly=0,
                keep_monthly=0,
            ),
            "documents": {"local_root": str(remote_root)},
        },
    )
    admin = await app.login("admin")

    first = await run_set(app, admin)

    assert first["status"] == "completed", first["error"]
    assert first["manifest"]["destination"] == "documents:local"
    [artifact] = first["artifacts"]
    local = Path(app.context.plugin_settings("backup").dir) / first["location"]
    copied = {p.name: p.read_bytes() for p in _stored(remote_root)}
    assert copied == {p.name: p.read_bytes() for p in local.iterdir()}
    assert set(copied) == {artifact["filename"], "manifest.json"}

    shutil.rmtree(local)  # the staging copy is gone: only the destination holds the set
    drill = await run_drill(app, admin, first["id"])
    assert drill["ok"] is True, drill["error"]
    into = tmp_path / "restored.sqlite3"
    await restore(app.context, uuid.UUID(first["id"]), "sqlite", str(into))
    with sqlite3.connect(into) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not [p for p in _stored(tmp_path) if p.name.startswith("fetched-")]  # removed

    # a damaged copy in the destination fails the drill loudly
    [sealed] = [p for p in _stored(remote_root) if p.name == artifact["filename"]]
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 1
    sealed.write_bytes(bytes(data))
    broken = await run_drill(app, admin, first["id"])
    assert broken["ok"] is False and "SHA-256" in broken["error"]

    second = await run_set(app, admin)
    assert second["status"] == "completed", second["error"]
    assert len(_stored(remote_root)) == 4

    pruned = await prune(app.context)

    assert pruned == [uuid.UUID(first["id"])]
    left = {p.parent.name for p in _stored(remote_root)}
    assert left == {second["location"].lower()}
    gone = await app.client.get(f"{API}/sets/{first['id']}", headers=admin)
    assert gone.json()["status"] == "pruned"

    # a set its destination refuses is failed, not completed
    from crm2_documents.backup_destination import StorageDestination
    from crm2_documents.storage.base import StorageError

    async def refuse(self: Any, name: str, path: Path) -> int:
        raise StorageError("the bucket said no")

    monkeypatch.setattr(StorageDestination, "put", refuse)
    third = await run_set(app, admin)
    assert third["status"] == "failed" and "the bucket said no" in third["error"]


async def test_a_destination_nobody_provides_stops_start_up(
    crm2_app_factory: Any, tmp_path: Path, crm2_database: Any
) -> None:
    if not crm2_database.url.startswith("sqlite"):
        pytest.skip("a settings check: one database is enough")
    with pytest.raises(ConfigurationError, match=r"documents:s3.*documents:local"):
        await crm2_app_factory(
            plugins=["backup", "documents"],
            plugin_settings={
                "backup": backup_settings(tmp_path, destination="documents:s3"),
                "documents": {"local_root": str(tmp_path / "files")},
            },
        )
    with pytest.raises(ConfigurationError, match="CRM2_BACKUP_DESTINATION"):
        await crm2_app_factory(
            plugins=["backup"],
            plugin_settings={"backup": backup_settings(tmp_path, destination="documents:local")},
        )


class TextTarget:
    """A target that dumps one line on any database (duck-typed)."""

    name = "text"
    extension = ".txt"

    async def dump(self, path: Path) -> Mapping[str, Any]:
        path.write_text("text\n")  # noqa: ASYNC240
        return {"lines": 1}

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        return {"into": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"lines": 1}


async def _documents_app(crm2_app_factory: Any, tmp_path: Path, remote_root: Path) -> Crm2TestApp:
    """Sets of one ``text`` target copied to ``documents:local`` (in ``remote_root``)."""
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", "documents", "text"],
        extra_plugins=(TargetPlugin("text", TextTarget()),),
        plugin_settings={
            "backup": backup_settings(tmp_path, targets="text", destination="documents:local"),
            "documents": {"local_root": str(remote_root)},
        },
    )
    return app


async def test_a_set_the_stale_job_fails_mid_upload_leaves_nothing_in_the_destination(
    crm2_app_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep deletes a stale set's local folder; the files already copied to its
    destination go too (a failed set is never drilled, restored or pruned), and so do
    those the stalled run copies after it goes on."""
    remote_root = tmp_path / "remote"
    app = await _documents_app(crm2_app_factory, tmp_path, remote_root)
    from crm2_documents.backup_destination import StorageDestination

    entered, release = asyncio.Event(), asyncio.Event()
    put = StorageDestination.put

    async def stall_before_the_manifest(self: Any, name: str, path: Path) -> int:
        if name.endswith("/manifest.json"):  # the artefact is copied already
            held = tmp_path / "held-manifest.json"  # read before the stall, sent after it
            shutil.copyfile(path, held)
            entered.set()
            await release.wait()
            path = held
        return await put(self, name, path)

    monkeypatch.setattr(StorageDestination, "put", stall_before_the_manifest)
    task = asyncio.create_task(run_backup(app.context))
    await asyncio.wait_for(entered.wait(), 30)
    assert [p.suffix for p in _stored(remote_root)] == [".enc"]

    later = utcnow() + stale_after(app.context.plugin_settings("backup")) + timedelta(seconds=1)
    [set_id] = await fail_stale_sets(app.context, later)

    assert _stored(remote_root) == []
    release.set()
    late = await asyncio.wait_for(task, 30)  # it finishes the upload, after the sweep

    assert late is not None and late.id == set_id and late.status == "failed"
    assert "finished late" in late.error
    assert _stored(remote_root) == []  # nor the manifest it copied after the sweep


async def test_a_set_whose_upload_fails_part_way_leaves_nothing_in_the_destination(
    crm2_app_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote_root = tmp_path / "remote"
    app = await _documents_app(crm2_app_factory, tmp_path, remote_root)
    from crm2_documents.backup_destination import StorageDestination
    from crm2_documents.storage.base import StorageError

    put = StorageDestination.put

    async def refuse_the_manifest(self: Any, name: str, path: Path) -> int:
        if name.endswith("/manifest.json"):
            raise StorageError("the bucket is full")
        return await put(self, name, path)

    monkeypatch.setattr(StorageDestination, "put", refuse_the_manifest)
    with pytest.raises(StorageError):
        await run_backup(app.context)

    assert _stored(remote_root) == []
