"""Purging deleted documents past retention: their files from every backend, then the rows.

Files first: a crash between the two leaves a row whose purge runs again (deleting a
missing key is no error), never a file no row points at. A document with a file on a
backend that is no longer configured cannot be purged: it is left out of every batch
(never retried in a loop, never holding up the others) and reported once per run,
until that backend is configured again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from crm2_core.api import publish, utcnow
from crm2_documents.events import DocumentDeleted
from crm2_documents.repository import documents as repo
from crm2_documents.service.documents import identity
from crm2_documents.storage.registry import storage_of

log = logging.getLogger(__name__)


async def purge_deleted(context: Any, now: datetime | None = None) -> int:
    settings = context.plugin_settings("documents")
    before = (now or utcnow()) - timedelta(days=settings.retention_days)
    storage = storage_of(context)
    purged = 0
    backends = sorted(storage.backends)
    async with context.session_factory() as session:
        documents = await repo.purgeable(session, before, settings.purge_batch, backends)
        files = {d.id: await repo.versions_of(session, d.id) for d in documents}
        blocked, missing = await repo.purge_blocked(session, before, backends)
    if blocked:
        log.warning(
            "documents: %d deleted document(s) past retention cannot be purged: their files "
            "are on storage backend(s) %s, which are not configured (configured: %s). "
            "Configure those backends again and the purge removes them.",
            blocked,
            ", ".join(repr(n) for n in missing),
            ", ".join(backends),
        )
    for document in documents:
        try:
            for version in files[document.id]:
                for name in {version.backend, version.target_backend} - {None}:
                    await storage.get(str(name)).delete(version.storage_key)
        except Exception as exc:
            log.warning("documents: purge of %s postponed: %s", document.id, exc)
            continue
        async with context.session_factory() as session:
            if await repo.purge(session, document.id, before):
                publish(
                    session, DocumentDeleted(purged=True, **identity(document)), subject=document.id
                )
                purged += 1
            await session.commit()
    return purged
