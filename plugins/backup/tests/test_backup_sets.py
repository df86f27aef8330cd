"""Sets over HTTP on crm2's own database (SQLite or PostgreSQL): run, drill, damage, restore."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from backup_kit import (
    API,
    drop_database_later,
    event_types,
    run_drill,
    run_set,
    sentinel,
    settle,
)
from crm2_backup import errors
from crm2_backup.models import BackupArtifact, BackupSet
from crm2_backup.service.restore import restore
from crm2_backup.targets.postgres import PgAddress

from crm2_core.testing import Crm2TestApp


async def _run(app: Crm2TestApp, admin: dict[str, str]) -> dict[str, Any]:
    return await run_set(app, admin)


def _db_target(app: Crm2TestApp) -> str:
    return "sqlite" if app.context.settings.is_sqlite else "postgres"


async def test_a_set_is_encrypted_and_its_drill_restores_it(backup: Crm2TestApp) -> None:
    secret = sentinel()
    admin = await backup.login("admin")
    await backup.create_user("agent", email=f"{secret}@example.com")

    body = await _run(backup, admin)

    assert body["status"] == body["state"] == "completed"
    [artifact] = body["artifacts"]
    assert artifact["target"] == _db_target(backup)
    assert body["progress"] == {
        "targets": [
            {"target": _db_target(backup), "phase": "done", "size_bytes": artifact["size_bytes"]}
        ],
        "verify": None,
    }
    folder = Path(backup.context.plugin_settings("backup").dir) / str(body["location"])
    sealed = (folder / artifact["filename"]).read_bytes()
    assert secret.encode() not in sealed
    assert any(k.startswith("rows.auth_user") for k in artifact["facts"])
    assert body["manifest"]["alembic_heads"]

    drill = await run_drill(backup, admin, body["id"])

    assert drill["ok"] is True, drill
    assert drill["results"][_db_target(backup)]["drill"] == "ok"
    status = (await backup.client.get(f"{API}/status", headers=admin)).json()
    assert status["latest_verified_set"]["id"] == body["id"]
    assert status["rpo_seconds"] >= 0
    assert await event_types(backup) == ["backup.set.completed", "backup.set.verified"]


async def test_a_flipped_byte_fails_the_drill_and_the_restore(
    backup: Crm2TestApp, tmp_path: Path
) -> None:
    admin = await backup.login("admin")
    body = await _run(backup, admin)
    [artifact] = body["artifacts"]
    folder = Path(backup.context.plugin_settings("backup").dir) / str(body["location"])
    sealed = folder / artifact["filename"]
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0x40
    sealed.write_bytes(bytes(data))

    drill = await run_drill(backup, admin, body["id"])

    assert drill["ok"] is False
    assert artifact["filename"] in drill["error"] and "SHA-256" in drill["error"]
    assert (await event_types(backup))[-1] == "backup.set.verify_failed"
    with pytest.raises(errors.IntegrityFailed):
        await restore(
            backup.context, uuid.UUID(str(body["id"])), _db_target(backup), str(tmp_path / "x.db")
        )


async def test_restore_into_a_named_target_brings_the_rows_back(
    backup: Crm2TestApp, tmp_path: Path
) -> None:
    secret = sentinel()
    admin = await backup.login("admin")
    await backup.create_user("agent", email=f"{secret}@example.com")
    body = await _run(backup, admin)
    set_id = uuid.UUID(str(body["id"]))
    name = _db_target(backup)

    if name == "sqlite":
        to = str(tmp_path / "restored.db")
        dry = await restore(backup.context, set_id, name, to, dry_run=True)
        assert not Path(to).exists() and dry["integrity"] == "ok"  # noqa: ASYNC240
        await restore(backup.context, set_id, name, to)
        with sqlite3.connect(to) as conn:
            emails = [r[0] for r in conn.execute("SELECT email FROM auth_user")]
        assert f"{secret}@example.com" in emails
        with pytest.raises(errors.BadTargetAddress, match="exists"):
            await restore(backup.context, set_id, name, to)
        return

    to = f"crm2_backup_restore_{uuid.uuid4().hex[:10]}"
    source = PgAddress.parse(backup.context.settings.database_url)
    try:
        await restore(backup.context, set_id, name, to)
        conn = await asyncpg.connect(
            host=source.host, port=source.port, user=source.user, database=to
        )
        try:
            emails = [r["email"] for r in await conn.fetch("SELECT email FROM auth_user")]
        finally:
            await conn.close()
        assert f"{secret}@example.com" in emails
        with pytest.raises(errors.BadTargetAddress, match="has tables"):
            await restore(backup.context, set_id, name, to)
        with pytest.raises(errors.BadTargetAddress, match="crm2's own"):
            await restore(backup.context, set_id, name, source.database)
    finally:
        drop_database_later(source, to)


async def test_a_set_newer_than_the_code_is_refused(backup: Crm2TestApp, tmp_path: Path) -> None:
    admin = await backup.login("admin")
    target = _db_target(backup)
    row = BackupSet(
        status="completed",
        location="newer",
        targets=[target],
        # a disabled plugin's branch (its tables are kept while it is off) is not judged
        manifest={
            "alembic_heads": {
                "alembic_version_core": ["f00dfeedbeef"],
                "alembic_version_switchedoff": ["0ff0ff0ff0ff"],
            }
        },
    )
    async with backup.context.session_factory() as session:
        session.add(row)
        await session.flush()
        session.add(
            BackupArtifact(
                set_id=row.id, target=target, filename="x.enc", sha256="0", plain_sha256="0"
            )
        )
        await session.commit()
    set_id = row.id

    with pytest.raises(errors.SchemaTooNew, match="f00dfeedbeef"):
        await restore(
            backup.context, set_id, _db_target(backup), str(tmp_path / "r.db"), dry_run=True
        )
    drill = await run_drill(backup, admin, str(set_id))
    assert drill["ok"] is False and "f00dfeedbeef" in drill["error"]
    assert "0ff0ff0ff0ff" not in drill["error"]


async def test_backups_are_for_admins_only(backup: Crm2TestApp) -> None:
    for role in ("manager",):  # the highest non-admin role; the others hold less
        headers = await backup.login(role)
        assert (await backup.client.get(f"{API}/sets", headers=headers)).status_code == 403
        assert (await backup.client.post(f"{API}/sets", headers=headers)).status_code == 403
        assert (await backup.client.get(f"{API}/status", headers=headers)).status_code == 403
        stream = await backup.client.get("/api/v1/streams/backup", headers=headers)
        assert stream.status_code == 403


async def test_bad_ids_and_filters_are_precise_4xx(backup: Crm2TestApp) -> None:
    admin = await backup.login("admin")
    missing = await backup.client.get(f"{API}/sets/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["type"].endswith("backup-set-not-found")
    assert (await backup.client.get(f"{API}/sets/not-a-uuid", headers=admin)).status_code == 422
    assert (await backup.client.get(f"{API}/sets?status=lost", headers=admin)).status_code == 422
    assert (await backup.client.get(f"{API}/runs?kind=x", headers=admin)).status_code == 422
    assert (
        await backup.client.post(f"{API}/sets/{uuid.uuid4()}/verify", headers=admin)
    ).status_code == 404
    assert (
        await backup.client.get(f"{API}/drills/{uuid.uuid4()}", headers=admin)
    ).status_code == 404
    listed = (await backup.client.get(f"{API}/sets?limit=1", headers=admin)).json()
    assert listed == {"items": [], "next_cursor": None}
    targets = (await backup.client.get(f"{API}/targets", headers=admin)).json()
    assert [t["name"] for t in targets] == [_db_target(backup)]
    await asyncio.sleep(0)


async def test_a_repeated_idempotency_key_makes_one_set(backup: Crm2TestApp) -> None:
    admin = {**(await backup.login("admin")), "Idempotency-Key": "run-once"}

    first = await backup.client.post(f"{API}/sets", headers=admin)
    again = await backup.client.post(f"{API}/sets", headers=admin)
    await settle(backup)

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    listed = (await backup.client.get(f"{API}/sets", headers=admin)).json()["items"]
    assert [s["id"] for s in listed] == [first.json()["id"]]
