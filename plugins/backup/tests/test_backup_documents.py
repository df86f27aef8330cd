"""The documents plugin's local files as a backup target, registered through backup's
``crm2_backup_targets`` hook (documents imports nothing of backup): backed up, drilled
(every file against its version's SHA-256), restored; a damaged file fails the backup."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import Any

from backup_kit import API, backup_settings, run_drill, run_set, sentinel
from crm2_backup.service.restore import restore
from sqlalchemy import select

from crm2_core.testing import Crm2TestApp

DOCS = "/api/v1/documents"


async def _seed_kinds(app: Crm2TestApp) -> None:
    import crm2_documents
    from crm2_documents.models import Kind

    folder = Path(crm2_documents.__file__).parent / "migrations" / "versions"
    spec = importlib.util.spec_from_file_location(
        "documents_default_kinds", next(folder.glob("*_documents_default_kinds.py"))
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    async with app.context.session_factory() as session:
        have = set((await session.execute(select(Kind.key))).scalars())
        session.add_all([Kind(**k) for k in module.DEFAULT_KINDS if k["key"] not in have])
        await session.commit()


async def test_documents_files_are_backed_up_drilled_and_restored(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["backup", "documents"],
        plugin_settings={
            # documents only: the database's dump is proven elsewhere, and costs seconds
            "backup": backup_settings(tmp_path, targets="documents"),
            "documents": {"local_root": str(root)},
        },
    )
    await _seed_kinds(app)
    admin = await app.login("admin")
    secret = sentinel().encode()
    doc = await app.client.post(
        f"{DOCS}/documents", json={"title": "Contract", "kind": "other"}, headers=admin
    )
    assert doc.status_code == 201, doc.text
    content = b"%PDF-1.4\n" + secret + b"\n%%EOF\n"
    version = await app.client.post(
        f"{DOCS}/documents/{doc.json()['id']}/versions",
        files={"file": ("c.pdf", content, "application/pdf")},
        headers=admin,
    )
    assert version.status_code == 201, version.text
    [stored] = [p for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts]
    targets = (await app.client.get(f"{API}/targets", headers=admin)).json()
    assert {"name": "documents", "plugin": "documents", "chosen": True} in targets

    body = await run_set(app, admin)

    assert body["status"] == "completed", body["error"]
    [artifact] = body["artifacts"]
    assert artifact["target"] == "documents"
    assert artifact["facts"]["files"] == 1 and artifact["facts"]["bytes"] == len(content)
    folder = Path(app.context.plugin_settings("backup").dir) / body["location"]
    assert secret not in (folder / artifact["filename"]).read_bytes()
    drill = await run_drill(app, admin, body["id"])
    assert drill["ok"] is True, drill["error"]
    assert drill["results"]["documents"]["files"] == 1
    into = tmp_path / "restored"
    report = await restore(app.context, uuid.UUID(body["id"]), "documents", str(into))
    assert report["restored"] == 1
    assert (into / stored.relative_to(root)).read_bytes() == content

    stored.write_bytes(content.replace(secret, b"x" * len(secret)))  # the storage is damaged
    damaged = await run_set(app, admin)

    assert damaged["status"] == "failed"
    assert "does not match its version" in damaged["error"]
    assert str(stored.relative_to(root)) in damaged["error"]
