"""Every storage backend as a place backup sets are kept (backup's ``crm2_backup_destinations``).

Duck-typed to backup's destination interface: documents imports nothing of backup,
and where backup is not enabled nobody calls this. ``CRM2_BACKUP_DESTINATION=
documents:<backend>`` (``documents:local``, ``documents:s3``, ``documents:gdrive``,
a third party's) copies each completed set's encrypted files and manifest through
that backend, under ``backups/<set location>/<file>`` (lower-cased: storage keys
are). The files are already encrypted by backup; the backend sees nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from crm2_documents.storage.base import KeyMissing, StorageBackend, check_key
from crm2_documents.storage.registry import storage_of

PREFIX = "backups"
CHUNK = 1 << 20


def _key(name: str) -> str:
    return check_key(f"{PREFIX}/{name.lower()}")


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk


class StorageDestination:
    """Backup files kept through one storage backend (``documents:<backend name>``)."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self.name = f"documents:{backend.name}"

    async def put(self, name: str, path: Path) -> int:
        return await self.backend.put(_key(name), _chunks(path))

    async def get(self, name: str, path: Path) -> None:
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as out:
                async for chunk in self.backend.open(_key(name)):
                    await asyncio.to_thread(out.write, chunk)
        except KeyMissing:
            partial.unlink(missing_ok=True)
            raise FileNotFoundError(f"{self.name}: no {name}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)

    async def delete(self, name: str) -> bool:
        return await self.backend.delete(_key(name))


def backup_destinations(context: Any) -> list[StorageDestination]:
    return [StorageDestination(b) for b in storage_of(context).backends.values()]
