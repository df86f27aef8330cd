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

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import publish, utcnow
from crm2_documents.events import DocumentDeleted
from crm2_documents.repository import documents as repo
from crm2_documents.service.documents import identity
from crm2_documents.storage.registry import storage_of

log = logging.getLogger(__name__)


def _retention_cutoff(context: Any, now: datetime | None) -> datetime:
    """Documents deleted before this are past retention: the purge's to take."""
    days = context.plugin_settings("documents").retention_days
    return (now or utcnow()) - timedelta(days=days)


async def blocked_purges(
    session: AsyncSession, context: Any, now: datetime | None = None
) -> dict[str, int]:
    """Per storage backend that is not configured: how many deleted documents past
    retention wait on it (their files cannot be removed, so the purge leaves them)."""
    backends = sorted(storage_of(context).backends)
    return await repo.purge_blocked(session, _retention_cutoff(context, now), backends)


async def purge_deleted(context: Any, now: datetime | None = None) -> int:
    settings = context.plugin_settings("documents")
    before = _retention_cutoff(context, now)
    storage = storage_of(context)
    purged = 0
    backends = sorted(storage.backends)
    async with context.session_factory() as session:
        documents = await repo.purgeable(session, before, settings.purge_batch, backends)
        files = {d.id: await repo.versions_of(session, d.id) for d in documents}
        blocked = await repo.purge_blocked(session, before, backends)
    if blocked:
        log.warning(
            "documents: deleted documents past retention cannot be purged: their files are "
            "on storage backends that are not configured (%s; configured: %s). Configure "
            "those backends again and the purge removes them.",
            ", ".join(f"{n} on {name!r}" for name, n in sorted(blocked.items())),
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
