"""The local storage backend's files as a backup target (backup's ``crm2_backup_targets`` hook).

Duck-typed to backup's target interface: documents imports nothing of backup,
and where backup is not enabled nobody calls this.

The artefact is a tar: every file the ``local`` backend holds for a version
(``backend = local``, whatever its transfer state), under its storage key, then
``index.json`` listing each key with the version's SHA-256 and size from the
database. Each file is hashed as it is read: a file that no longer matches its
version's SHA-256 (damaged storage) fails the backup, naming it, rather than
being carried into a set as if it were good. A file removed meanwhile (a purge)
is left out and counted. The drill unpacks into a scratch folder and checks
every file against the index; a restore writes the files under a directory (the
local root of a rebuilt deployment), never overwriting a file that differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlmodel import col

from crm2_core.api import Conflict
from crm2_documents.models import Version
from crm2_documents.storage.base import check_key
from crm2_documents.storage.local import LocalBackend

INDEX = "index.json"
FORMAT = "crm2-documents-local-1"
CHUNK = 1 << 20


class DocumentsBackupError(Conflict):
    """A file does not match its version, or the artefact is not what it should be."""

    slug, title = "documents-backup-failed", "The documents' files cannot be backed up or restored"


class _Hashing:
    """A file object that hashes what ``tarfile`` reads from it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.digest = raw, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


def _sum(entries: list[dict[str, Any]]) -> str:
    """An order-free sum of the files (key and SHA-256): the same whatever order they came in."""
    total = 0
    for entry in entries:
        one = hashlib.sha256(f"{entry['key']}\0{entry['sha256']}".encode()).digest()
        total = (total + int.from_bytes(one, "big")) % (1 << 256)
    return f"{total:064x}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DocumentsTarget:
    """Backs up, checks and restores the files of the ``local`` storage backend."""

    name = "documents"
    extension = ".tar"

    def __init__(self, context: Any, backend: LocalBackend) -> None:
        self.context = context
        self.backend = backend

    async def _versions(self) -> list[tuple[str, str, int]]:
        async with self.context.session_factory() as session:
            rows = await session.execute(
                select(col(Version.storage_key), col(Version.sha256), col(Version.size))
                .where(col(Version.backend) == self.backend.name)
                .order_by(col(Version.storage_key))
            )
            return [(str(k), str(s), int(n)) for k, s, n in rows.all()]

    async def dump(self, path: Path) -> Mapping[str, Any]:
        versions = await self._versions()
        return await asyncio.to_thread(self._write, path, versions)

    def _write(self, path: Path, versions: list[tuple[str, str, int]]) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        missing = 0
        with tarfile.open(path, "w") as tar:
            for key, sha256, size in versions:
                file = self.backend.path_of(key)
                try:
                    handle = file.open("rb")
                except FileNotFoundError:
                    missing += 1  # purged since the query
                    continue
                with handle:
                    info = tar.gettarinfo(fileobj=handle, arcname=key)
                    hashing = _Hashing(handle)
                    tar.addfile(info, hashing)
                found = hashing.digest.hexdigest()
                if found != sha256 or info.size != size:
                    raise DocumentsBackupError(
                        f"documents: the stored file {key} does not match its version "
                        f"(SHA-256 {found}, recorded {sha256}; {info.size} bytes, recorded "
                        f"{size}): the storage is damaged, restore that file first"
                    )
                entries.append({"key": key, "sha256": sha256, "size": size})
            index = json.dumps({"format": FORMAT, "files": entries}).encode()
            member = tarfile.TarInfo(INDEX)
            member.size = len(index)
            tar.addfile(member, io.BytesIO(index))
        return {
            "files": len(entries),
            "bytes": sum(e["size"] for e in entries),
            "sum": _sum(entries),
            "missing": missing,
        }

    @staticmethod
    def _index(tar: tarfile.TarFile) -> list[dict[str, Any]]:
        try:
            member = tar.getmember(INDEX)
        except KeyError:
            raise DocumentsBackupError("documents: the artefact has no index") from None
        handle = tar.extractfile(member)
        data = json.loads(handle.read()) if handle else {}
        if data.get("format") != FORMAT:
            raise DocumentsBackupError("documents: not a crm2 documents artefact")
        files: list[dict[str, Any]] = data["files"]
        for entry in files:
            check_key(entry["key"])  # never a path outside the folder restored into
        return files

    def _unpack(self, path: Path, into: Path, overwrite_same_only: bool) -> dict[str, int]:
        """Every indexed file into ``into/<key>``, checked against the index."""
        written = same = 0
        with tarfile.open(path, "r") as tar:
            for entry in self._index(tar):
                source = tar.extractfile(entry["key"])
                if source is None:
                    raise DocumentsBackupError(f"documents: {entry['key']} is not a file")
                out = into / entry["key"]
                if out.exists():
                    if overwrite_same_only and _sha256(out) == entry["sha256"]:
                        same += 1
                        continue
                    raise DocumentsBackupError(
                        f"documents: {out} exists and differs: restore into an empty folder"
                    )
                out.parent.mkdir(parents=True, exist_ok=True)
                temp = out.with_name(out.name + ".restoring")
                digest = hashlib.sha256()
                with temp.open("wb") as sink:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                if digest.hexdigest() != entry["sha256"]:
                    temp.unlink()
                    raise DocumentsBackupError(
                        f"documents: {entry['key']} in the set does not match its SHA-256"
                    )
                temp.replace(out)
                written += 1
        return {"written": written, "same": same}

    def _check(self, path: Path) -> list[dict[str, Any]]:
        with tarfile.open(path, "r") as tar:
            return self._index(tar)

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]:
        """Write the files under directory ``to`` (files already there must be identical)."""
        if not to:
            raise DocumentsBackupError("give the directory to restore the files into")
        entries = await asyncio.to_thread(self._check, path)
        if dry_run:
            return {"would_restore": len(entries), "into": to}
        folder = Path(to)
        done = await asyncio.to_thread(self._unpack, path, folder, True)
        return {"restored": done["written"], "identical_already": done["same"], "into": to}

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]:
        """Unpack into a scratch folder, check every file and the index against the facts."""
        scratch = Path(tempfile.mkdtemp(prefix="crm2-documents-drill-"))
        try:
            done = await asyncio.to_thread(self._unpack, path, scratch, False)
            entries = await asyncio.to_thread(self._check, path)
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
        return {"files": found["files"], "bytes": found["bytes"]}


def backup_targets(context: Any) -> list[Any]:
    """The local backend's files, when this deployment has a local backend."""
    from crm2_documents.storage.registry import storage_of

    return [
        DocumentsTarget(context, backend)
        for backend in storage_of(context).backends.values()
        if isinstance(backend, LocalBackend) and backend.name == "local"
    ]
