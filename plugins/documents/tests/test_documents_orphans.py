"""Files no version names (a process died between storing a file and committing its row)
are swept once they are older than a grace period; everything else stays."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from crm2_documents.jobs import scheduled_jobs
from crm2_documents.service.orphans import sweep_orphans
from documents_kit import PDF, Docs, make_docs


def _plant(root: Path, key: str, age_seconds: float) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4\nleft behind\n")
    old = time.time() - age_seconds
    os.utime(path, (old, old))
    return path


async def test_an_orphan_file_older_than_the_grace_period_is_swept(
    crm2_app_factory: Any, tmp_path: Path
) -> None:
    docs: Docs = await make_docs(crm2_app_factory, tmp_path / "files", orphan_grace_seconds=3600)
    agent = await docs.user("agent")
    document = await docs.create(agent)
    assert (await docs.upload(agent, document["id"], PDF)).status_code == 201
    [kept] = docs.stored_files()
    os.utime(kept, (time.time() - 86_400, time.time() - 86_400))  # old, but a version's
    crashed = _plant(docs.root, f"documents/{document['id']}/{uuid.uuid4()}", 7200)
    record = f"records/deals.client/{uuid.uuid4()}"
    linked = _plant(docs.root, f"{record}/{uuid.uuid4()}/{uuid.uuid4()}", 7200)
    in_flight = _plant(docs.root, f"documents/{uuid.uuid4()}/{uuid.uuid4()}", 60)
    backup = _plant(docs.root, "backups/set-1/manifest.json", 7200)  # not a document's file
    assert await sweep_orphans(docs.app.context) == 2
    assert not crashed.exists() and not linked.exists()
    assert kept.exists() and in_flight.exists() and backup.exists()
    download = await docs.client.get(
        f"/api/v1/documents/documents/{document['id']}/download", headers=agent.headers
    )
    assert download.status_code == 200 and download.content == PDF
    assert await sweep_orphans(docs.app.context) == 0  # nothing more


async def test_the_orphan_sweep_is_a_scheduled_job(docs: Docs) -> None:
    jobs = {job.name: job for job in scheduled_jobs(docs.app.context)}
    assert "orphans" in jobs
    assert jobs["orphans"].interval_seconds == 86_400
