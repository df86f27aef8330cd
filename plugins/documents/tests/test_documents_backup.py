"""Every version's file in a backup set, read through its storage backend: local, S3 (moto's
server on 127.0.0.1) and Google Drive (the fake Google), drilled and restored through the
backends. Needs the backup plugin (documents itself imports nothing of it)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("crm2_backup")

from crm2_backup import crypto
from crm2_backup.service.backup import run_backup
from crm2_backup.service.restore import restore
from crm2_backup.service.verify import verify
from crm2_documents.backup_target import DocumentsBackupError
from crm2_documents.models import Version
from crm2_documents.service.transfers import run_transfers
from crm2_documents.storage.base import read_all
from crm2_documents.storage.registry import storage_of
from documents_kit import API, PDF, Docs, seed_default_kinds
from fake_google import FakeGoogle, fake_google, gdrive_settings
from s3_server import make_bucket, s3_server
from sqlalchemy import select
from sqlmodel import col

PART = 5 * 1024 * 1024


async def _connect_drive(docs: Docs, google: FakeGoogle, admin: Any) -> None:
    started = await docs.client.post(f"{API}/oauth/gdrive/start", headers=admin.headers)
    assert started.status_code == 200, started.text
    back = await docs.client.get(google.approve(started.json()["url"]))
    assert back.status_code == 200 and back.json()["connected"] is True, back.text


async def _move(docs: Docs, admin: Any, document_id: str, backend: str) -> None:
    url = f"{API}/documents/{document_id}/versions/1/transfer"
    moved = await docs.client.post(url, json={"backend": backend}, headers=admin.headers)
    assert moved.status_code == 202, moved.text
    assert (await run_transfers(docs.app.context))["stored"] == 1


async def test_files_on_s3_and_drive_are_in_the_set_drilled_and_restored(
    crm2_app_factory: Any, crm2_settings: Any, tmp_path: Path
) -> None:
    if not crm2_settings.database_url.startswith("sqlite"):
        pytest.skip("starts an S3 and a Google server: SQLite only (the target reads no SQL)")
    with s3_server() as endpoint, fake_google() as google:
        root = tmp_path / "files"
        documents = {
            "local_root": str(root),
            "s3_endpoint_url": endpoint,
            "s3_bucket": make_bucket(endpoint),
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "s3_multipart_threshold": PART,
            **gdrive_settings(google),
        }
        backup = {
            "dir": str(tmp_path / "backups"),
            "key": crypto.encode_key(crypto.new_key()),
            "key_file": str(tmp_path / "unused.key"),
            "targets": "documents",
            "schedule": "",
            "verify_schedule": "",
        }
        app = await crm2_app_factory(
            plugins=["documents", "backup"],
            plugin_settings={"documents": documents, "backup": backup},
        )
        await seed_default_kinds(app)
        docs = Docs(app, root)
        admin, agent = await docs.user("admin"), await docs.user("agent")
        await _connect_drive(docs, google, admin)
        contents: dict[str, bytes] = {}
        for backend in ("local", "s3", "gdrive"):
            document = await docs.create(agent)
            data = PDF + f"{backend}-{uuid.uuid4().hex}".encode() * 50
            assert (await docs.upload(agent, document["id"], data)).status_code == 201
            if backend != "local":
                await _move(docs, admin, document["id"], backend)
            contents[backend] = data
        storage = storage_of(docs.app.context)
        placed = {backend: await _key_of(docs, backend) for backend in contents}

        made = await run_backup(docs.app.context)

        assert made is not None and made.status == "completed", made and made.error
        facts = made.manifest["artifacts"][0]["facts"]
        assert facts["files"] == 3 and facts["missing"] == 0
        assert facts["backends"] == {"gdrive": 1, "local": 1, "s3": 1}
        assert facts["bytes"] == sum(len(d) for d in contents.values())
        drill = await verify(docs.app.context, made.id)
        assert drill is not None and drill.ok, drill and drill.error
        assert drill.results["documents"]["backends"] == facts["backends"]

        # the bucket and the Drive files are lost: restore them through their backends
        for backend in ("s3", "gdrive"):
            assert await storage.get(backend).delete(placed[backend])
        dry = await restore(docs.app.context, made.id, "documents", "storage:s3", dry_run=True)
        assert dry == {"would_restore": 1, "into": "storage:s3", "backends": {"s3": 1}}
        report = await restore(docs.app.context, made.id, "documents", "storage")
        assert report["restored"] == 2 and report["identical_already"] == 1
        for backend, data in contents.items():
            assert await read_all(storage.get(backend), placed[backend]) == data
            document_id = placed[backend].split("/")[1]
            got = await docs.client.get(
                f"{API}/documents/{document_id}/download", headers=agent.headers
            )
            assert got.content == data
        # or every file into a folder (a rebuilt deployment's local root)
        folder = tmp_path / "rebuilt"
        into = await restore(docs.app.context, made.id, "documents", str(folder))
        assert into["restored"] == 3
        assert all((folder / placed[b]).read_bytes() == d for b, d in contents.items())
        with pytest.raises(DocumentsBackupError, match="no storage backend"):
            await restore(docs.app.context, made.id, "documents", "storage:ftp")

        # a damaged object on S3 fails the next backup, naming it and its backend
        damaged = contents["s3"].replace(b"s3-", b"S3-")
        await storage.get("s3").put(placed["s3"], _once(damaged))
        with pytest.raises(DocumentsBackupError, match="on 's3' does not match its version"):
            await run_backup(docs.app.context)
        # a file gone from its backend while its version lives fails it too
        await storage.get("s3").put(placed["s3"], _once(contents["s3"]))
        assert await storage.get("gdrive").delete(placed["gdrive"])
        with pytest.raises(DocumentsBackupError, match="missing from the 'gdrive' backend"):
            await run_backup(docs.app.context)


async def _once(data: bytes) -> Any:
    yield data
    await asyncio.sleep(0)


async def _key_of(docs: Docs, backend: str) -> str:
    """The storage key of the one version stored on ``backend``."""
    async with docs.app.context.session_factory() as session:
        rows = await session.execute(
            select(col(Version.storage_key)).where(col(Version.backend) == backend)
        )
        return str(rows.scalar_one())


async def test_a_set_of_the_local_only_format_still_drills_and_restores(
    docs: Docs, tmp_path: Path
) -> None:
    import hashlib
    import io
    import json
    import tarfile

    from crm2_documents.backup_target import DocumentsTarget, _sum

    key, data = f"documents/{uuid.uuid4()}/{uuid.uuid4()}", PDF
    entry = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    artefact = tmp_path / "old.tar"
    with tarfile.open(artefact, "w") as tar:  # as sets made before every backend was read
        for name, body in (
            (key, data),
            ("index.json", json.dumps({"format": "crm2-documents-local-1", "files": [entry]})),
        ):
            raw = body if isinstance(body, bytes) else body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    target = DocumentsTarget(docs.app.context, storage_of(docs.app.context))
    facts = {"files": 1, "bytes": len(data), "sum": _sum([entry])}

    assert (await target.drill(artefact, facts))["backends"] == {"local": 1}
    report = await target.restore(artefact, "storage", dry_run=False)
    assert report["restored"] == 1 and report["backends"] == {"local": 1}
    assert (docs.root / key).read_bytes() == data
    again = await target.restore(artefact, "storage:local", dry_run=False)
    assert again["identical_already"] == 1
    (docs.root / key).write_bytes(data + b"changed")
    with pytest.raises(DocumentsBackupError, match="differs: nothing is overwritten"):
        await target.restore(artefact, "storage", dry_run=False)
    with pytest.raises(DocumentsBackupError, match="the restored copy differs"):
        await target.drill(artefact, {**facts, "bytes": 1})
