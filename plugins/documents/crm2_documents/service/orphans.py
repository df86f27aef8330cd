"""Sweeping orphan files: objects under a document key that no version names.

An upload stores its file, then the request commits the version. A failed commit
removes the file (``versions.discard_unless_committed``), but a process that dies
between the two leaves a file no row points at; so does a transfer that dies between
its copy and the source's removal. The sweep lists each backend's document keys and
removes those older than ``CRM2_DOCUMENTS_ORPHAN_GRACE_SECONDS`` that no version
names on that backend (as where it is, or where it is going). The grace keeps the
uploads still in flight; a backend that cannot list its keys is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from crm2_core.api import utcnow
from crm2_documents.repository import documents as repo
from crm2_documents.storage.base import StorageBackend, StoredObject
from crm2_documents.storage.registry import storage_of

log = logging.getLogger(__name__)

# the key prefixes versions are stored under (``versions.storage_key``); anything else in
# a backend (backup sets under ``backups/``, a third party's files) is not the sweep's
PREFIXES = ("documents/", "records/")
BATCH = 500


async def sweep_orphans(context: Any, now: datetime | None = None) -> int:
    """Remove the orphan files of every backend that lists its keys; how many went."""
    settings = context.plugin_settings("documents")
    before = (now or utcnow()) - timedelta(seconds=settings.orphan_grace_seconds)
    removed = 0
    for backend in storage_of(context).backends.values():
        try:
            removed += await _sweep(context, backend, before)
        except NotImplementedError:
            log.debug("documents: the %r backend cannot list its keys: not swept", backend.name)
        except Exception as exc:  # one backend down stops neither the others nor the job
            log.warning(
                "documents: orphan sweep of %r stopped: %s: %s",
                backend.name,
                type(exc).__name__,
                exc,
            )
    return removed


async def _sweep(context: Any, backend: StorageBackend, before: datetime) -> int:
    removed = 0
    for prefix in PREFIXES:
        batch: list[StoredObject] = []
        async for found in backend.objects(prefix):
            if found.modified_at < before:
                batch.append(found)
            if len(batch) >= BATCH:
                removed += await _remove_unnamed(context, backend, batch)
                batch = []
        if batch:
            removed += await _remove_unnamed(context, backend, batch)
    return removed


async def _remove_unnamed(
    context: Any, backend: StorageBackend, batch: Sequence[StoredObject]
) -> int:
    async with context.session_factory() as session:
        named = await repo.keys_named(session, backend.name, [o.key for o in batch])
    removed = 0
    for orphan in batch:
        if orphan.key in named:
            continue
        if await backend.delete(orphan.key):
            log.warning(
                "documents: removed the orphan file %s from %r (no version names it; stored %s)",
                orphan.key,
                backend.name,
                orphan.modified_at.isoformat(),
            )
            removed += 1
    return removed
