"""Every stored version's file as a backup target (backup's ``crm2_backup_targets`` hook).

Duck-typed to backup's target interface: documents imports nothing of backup,
and where backup is not enabled nobody calls this.

The bytes are read **through the storage backend** each version names (``local``,
``s3``, ``gdrive`` or a third party's), never from a path, so files on an object
store or Drive are in the set like local ones. The artefact is a tar written as
the bytes stream in (memory stays flat): one member per version under its
storage key, then ``index.json`` listing each key with its backend and the
version's SHA-256 and size from the database. Each file is hashed as it is read:
one that does not match its version (damaged storage) fails the backup, naming
it, rather than being carried into a set as if it were good. A file gone from
its backend fails the backup too, unless its version was purged or moved to
another backend meanwhile (then it is read from there).

Restore: ``--to DIR`` writes every file under ``DIR/<key>`` (a rebuilt local
root); ``--to storage`` puts every file back through the backend its version
names (``storage:NAME``: only that backend's files, e.g. a lost bucket). Nothing
is ever overwritten: a file already there must be identical. The drill puts every
file through a scratch ``local`` backend and reads it back against the index.
Sets written before this format (``crm2-documents-local-1``: local files only)
still drill and restore.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlmodel import col

from crm2_core.api import Conflict
from crm2_documents.models import Document, Version
from crm2_documents.storage.base import KeyMissing, StorageBackend, check_key
from crm2_documents.storage.local import INCOMING, LocalBackend
from crm2_documents.storage.registry import Storage, storage_of

INDEX = "index.json"
FORMAT = "crm2-documents-2"
LOCAL_ONLY_FORMAT = "crm2-documents-local-1"  # earlier sets: the local backend's files
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
STORAGE = "storage"


class DocumentsBackupError(Conflict):
    """A file does not match its version, or the artefact is not what it should be."""

    slug, title = "documents-backup-failed", "The documents' files cannot be backed up or restored"


def _sum(entries: list[dict[str, Any]]) -> str:
    """An order-free sum of the files (key and SHA-256): the same whatever order they came in."""
    total = 0
    for entry in entries:
        one = hashlib.sha256(f"{entry['key']}\0{entry['sha256']}".encode()).digest()
        total = (total + int.from_bytes(one, "big")) % (1 << 256)
    return f"{total:064x}"


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["backend"]] = counts.get(entry["backend"], 0) + 1
    return dict(sorted(counts.items()))


class _Gone(Exception):
    """The version's object is not on its backend (``KeyMissing`` on the first read)."""


class DocumentsTarget:
    """Backs up, checks and restores every version's file, whatever backend holds it."""

    name = "documents"
    extension = ".tar"

    def __init__(self, context: Any, storage: Storage) -> None:
        self.context = context
        self.storage = storage

    # -- dump ------------------------------------------------------------------------------
    async def _versions(self) -> list[tuple[uuid.UUID, str, str, str, int]]:
        async with self.context.session_factory() as session:
            rows = await session.execute(
                select(
                    col(Version.id),
                    col(Version.backend),
                    col(Version.storage_key),
                    col(Version.sha256),
                    col(Version.size),
                ).order_by(col(Version.backend), col(Version.storage_key))
            )
            return [(i, str(b), str(k), str(s), int(n)) for i, b, k, s, n in rows.all()]

    async def _where_now(self, version_id: uuid.UUID) -> tuple[str, str] | None:
        """The version's backend and key now; ``None`` when it is purged or being purged."""
        async with self.context.session_factory() as session:
            row = (
                await session.execute(
                    select(col(Version.backend), col(Version.storage_key), col(Document.deleted_at))
                    .join(Document, col(Document.id) == col(Version.document_id))
                    .where(col(Version.id) == version_id)
                )
            ).first()
        if row is None or row[2] is not None:  # purge removes the files, then the rows
            return None
        return str(row[0]), str(row[1])

    async def dump(self, path: Path) -> Mapping[str, Any]:
        entries: list[dict[str, Any]] = []
        missing = 0
        with path.open("wb") as out:
            for version_id, backend, key, sha256, size in await self._versions():
                where: tuple[str, str] | None = (backend, key)
                while where is not None:
                    try:
                        await self._copy(out, where[0], where[1], sha256, size)
                        entries.append(
                            {"key": where[1], "backend": where[0], "sha256": sha256, "size": size}
                        )
                        break
                    except _Gone:
                        now = await self._where_now(version_id)
                        if now == where:
                            raise DocumentsBackupError(
                                f"documents: the file of version {version_id} ({where[1]}) is "
                                f"missing from the {where[0]!r} backend: restore it from an "
                                "earlier set first"
                            ) from None
                        if now is None:
                            missing += 1  # purged since the query
                        where = now  # moved by a transfer meanwhile: read it there
            index = json.dumps({"format": FORMAT, "files": entries}).encode()
            out.write(_header(INDEX, len(index)) + index + _pad(len(index)))
            out.write(b"\0" * (2 * BLOCK))  # end of archive
        return {
            "files": len(entries),
            "bytes": sum(e["size"] for e in entries),
            "sum": _sum(entries),
            "missing": missing,
            "backends": _counts(entries),
        }

    async def _copy(
        self, out: IO[bytes], backend_name: str, key: str, sha256: str, size: int
    ) -> None:
        """One tar member: the header, the bytes as the backend streams them, the padding."""
        if backend_name not in self.storage.backends:
            raise DocumentsBackupError(
                f"documents: {key} is on the {backend_name!r} backend, which this deployment "
                f"does not configure (it has {sorted(self.storage.backends)}): configure it to "
                "back those files up"
            )
        backend = self.storage.get(backend_name)
        start = out.tell()
        out.write(_header(key, size))
        digest, seen = hashlib.sha256(), 0
        try:
            async for chunk in backend.open(key):
                seen += len(chunk)
                if seen > size:
                    break
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        except KeyMissing:
            out.seek(start)
            out.truncate()
            raise _Gone() from None
        except Exception as exc:
            raise DocumentsBackupError(
                f"documents: reading {key} from the {backend_name!r} backend failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        found = digest.hexdigest()
        if seen != size or found != sha256:
            raise DocumentsBackupError(
                f"documents: the stored file {key} on {backend_name!r} does not match its "
                f"version (SHA-256 {found}, recorded {sha256}; {seen}{'+' if seen > size else ''} "
                f"bytes, recorded {size}): the storage is damaged, restore that file first"
            )
        out.write(_pad(size))

    # -- reading an artefact ---------------------------------------------------------------
    @staticmethod
    def _index(tar: tarfile.TarFile) -> list[dict[str, Any]]:
        try:
            member = tar.getmember(INDEX)
        except KeyError:
            raise DocumentsBackupError("documents: the artefact has no index") from None
        handle = tar.extractfile(member)
        data = json.loads(handle.read()) if handle else {}
        if data.get("format") not in (FORMAT, LOCAL_ONLY_FORMAT):
            raise DocumentsBackupError("documents: not a crm2 documents artefact")
        files: list[dict[str, Any]] = data["files"]
        for entry in files:
            check_key(entry["key"])  # never a path outside the folder restored into
            entry.setdefault("backend", "local")
        return files

    def _check(self, path: Path) -> list[dict[str, Any]]:
        with tarfile.open(path, "r") as tar:
            return self._index(tar)

    @staticmethod
    async def _chunks(source: IO[bytes], entry: dict[str, Any]) -> AsyncIterator[bytes]:
        """The member's bytes; raises at the end when they do not match the index (so a
        backend's ``put`` stores nothing)."""
        digest = hashlib.sha256()
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            digest.update(chunk)
            yield chunk
        if digest.hexdigest() != entry["sha256"]:
            raise DocumentsBackupError(
                f"documents: {entry['key']} in the set does not match its SHA-256"
            )

    @staticmethod
    async def _same(backend: StorageBackend, key: str, sha256: str) -> bool:
        digest = hashlib.sha256()
        async for chunk in backend.open(key):
            digest.update(chunk)
        return digest.hexdigest() == sha256

    async def _put_all(
        self,
        path: Path,
        entries: list[dict[str, Any]],
        backend_of: Callable[[dict[str, Any]], StorageBackend],
    ) -> dict[str, int]:
        """Every entry through ``backend_of(entry).put``; one already there must be identical."""
        written = same = 0
        with tarfile.open(path, "r") as tar:
            for entry in entries:
                backend = backend_of(entry)
                if await backend.exists(entry["key"]):
                    if await self._same(backend, entry["key"], entry["sha256"]):
                        same += 1
                        continue
                    raise DocumentsBackupError(
                        f"documents: {entry['key']} exists on {backend.name!r} and differs: "
                        "nothing is overwritten"
                    )
                source = tar.extractfile(entry["key"])
                if source is None:
                    raise DocumentsBackupError(f"documents: {entry['key']} is not a file")
                stored = await backend.put(entry["key"], self._chunks(source, entry))
                if stored != entry["size"]:
                    raise DocumentsBackupError(
                        f"documents: {entry['key']}: {stored} bytes stored, "
                        f"{entry['size']} expected"
                    )
                written += 1
        return {"written": written, "same": same}

    # -- restore and drill -----------------------------------------------------------------
    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        """Into a directory ``to``, or back through the backends (``storage[:NAME]``)."""
        if not to:
            raise DocumentsBackupError(
                "give a directory to restore the files into, or 'storage' (every file through "
                "the backend its version names) or 'storage:NAME' (only that backend's files)"
            )
        entries = await asyncio.to_thread(self._check, path)
        if to == STORAGE or to.startswith(STORAGE + ":"):
            only = to.partition(":")[2] or None
            chosen = [e for e in entries if only is None or e["backend"] == only]
            unknown = sorted({e["backend"] for e in chosen} - set(self.storage.backends))
            if only is not None and only not in self.storage.backends:
                unknown = [only]
            if unknown:
                raise DocumentsBackupError(
                    f"documents: this deployment has no storage backend {unknown} (it has "
                    f"{sorted(self.storage.backends)}): configure it first, or restore into a "
                    "directory"
                )
            if dry_run:
                return {"would_restore": len(chosen), "into": to, "backends": _counts(chosen)}
            done = await self._put_all(path, chosen, lambda e: self.storage.get(e["backend"]))
            return {
                "restored": done["written"],
                "identical_already": done["same"],
                "into": to,
                "backends": _counts(chosen),
            }
        if dry_run:
            return {"would_restore": len(entries), "into": to}
        folder = LocalBackend(Path(to), name="restore")
        had_incoming = (folder.root / INCOMING).exists()  # a live root's uploads in flight
        done = await self._put_all(path, entries, lambda e: folder)
        if not had_incoming:
            await asyncio.to_thread(shutil.rmtree, folder.root / INCOMING, True)
        return {"restored": done["written"], "identical_already": done["same"], "into": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        """Put every file through a scratch local backend, check each and the index's facts."""
        scratch = Path(tempfile.mkdtemp(prefix="crm2-documents-drill-"))
        try:
            entries = await asyncio.to_thread(self._check, path)
            backend = LocalBackend(scratch, name="drill")
            done = await self._put_all(path, entries, lambda e: backend)
            for entry in entries:  # read back through the backend, as a download would
                if not await self._same(backend, entry["key"], entry["sha256"]):
                    raise DocumentsBackupError(f"documents: {entry['key']} differs once restored")
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        found = {
            "files": len(entries),
            "bytes": sum(e["size"] for e in entries),
            "sum": _sum(entries),
        }
        wrong = {k: (facts.get(k), v) for k, v in found.items() if facts.get(k) != v}
        if wrong or done["written"] != len(entries):
            raise DocumentsBackupError(f"documents: the restored copy differs: {wrong}")
        return {"files": found["files"], "bytes": found["bytes"], "backends": _counts(entries)}


def backup_targets(context: Any) -> list[Any]:
    """The files of every configured storage backend, as one target."""
    return [DocumentsTarget(context, storage_of(context))]
