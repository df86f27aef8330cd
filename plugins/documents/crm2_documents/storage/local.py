"""The ``local`` backend: files under one root directory.

Keys are confined to the root (checked by pattern, then again on the resolved
path). A write goes to a temporary file in ``<root>/.incoming`` on the same
filesystem, is flushed to disk, then renamed over the key (``os.replace`` is
atomic), and the key's directory is flushed too, so the rename survives a power
cut: a crash mid-upload leaves only a temporary file, never a half file under a
real key. Temporary files older than a day are swept at start-up.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Generator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from crm2_documents.storage.base import (
    CHUNK_SIZE,
    InvalidKey,
    KeyMissing,
    StorageBackend,
    StoredObject,
    check_key,
)

INCOMING = ".incoming"
STALE_SECONDS = 86_400


class LocalBackend(StorageBackend):
    def __init__(self, root: str | Path, name: str = "local") -> None:
        self.name = name
        self.root = Path(root).resolve()

    def path_of(self, key: str) -> Path:
        """The file of ``key``, refusing anything that would leave the root."""
        check_key(key)
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise InvalidKey(f"key {key!r} leaves the storage root")
        return path

    def _incoming(self) -> Path:
        folder = self.root / INCOMING
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self.path_of(key)
        temp = self._incoming() / f"{uuid.uuid4().hex}.part"
        size = 0
        try:
            with open(temp, "xb") as out:  # noqa: ASYNC230 - page-cache writes; fsync runs in a thread
                async for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                await anyio.to_thread.run_sync(os.fsync, out.fileno())
            _replace_into(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        # the rename is durable only once its directory is on disk: else a power cut after
        # the version committed could bring back the old directory, without the file
        await anyio.to_thread.run_sync(_fsync_directory, target.parent)
        return size

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        try:
            handle = open(path, "rb")  # noqa: ASYNC230, SIM115 - closed below
        except FileNotFoundError as exc:
            raise KeyMissing(key) from exc
        with handle:
            handle.seek(start)
            remaining = None if end is None else max(end - start, 0)
            while remaining is None or remaining > 0:
                size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = handle.read(size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> bool:
        path = self.path_of(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._prune(path.parent)
        return True

    def _prune(self, folder: Path) -> None:
        """Remove ``folder`` and its parents while they are empty, never the root.

        Races are expected: another delete may have removed one already, and a put may
        have just made one or put a file in it; either stops here (the put makes its
        folder again if one is removed under it: ``_replace_into``)."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # ENOTEMPTY/EEXIST: in use; ENOENT: already gone
                return
            folder = folder.parent

    async def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    async def objects(self, prefix: str) -> AsyncIterator[StoredObject]:
        """The files under the root whose key starts with ``prefix`` (temporary ones aside).

        Streamed: the tree is walked in a worker thread a batch of entries at a time, so
        memory stays bounded however many files the backend holds."""
        top = prefix.split("/", 1)[0]
        if not top or top.startswith("."):
            return
        walk = _files_under(self.root / top)
        try:
            while batch := await anyio.to_thread.run_sync(_next_batch, walk):
                for path, modified in batch:
                    key = path.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        yield StoredObject(key, datetime.fromtimestamp(modified, UTC))
        finally:
            walk.close()  # closes the directories still open when the caller stops early

    async def status(self) -> Mapping[str, Any]:
        usage = os.statvfs(self.root) if self.root.exists() else None
        free = usage.f_bavail * usage.f_frsize if usage else None
        return {"root_exists": self.root.exists(), "free_bytes": free}

    def sweep_incoming(self, older_than: float = STALE_SECONDS) -> int:
        """Remove temporary files a crashed process left behind; how many went."""
        folder = self.root / INCOMING
        if not folder.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        for part in folder.glob("*.part"):
            if part.stat().st_mtime < cutoff:
                part.unlink(missing_ok=True)
                removed += 1
        return removed


LIST_BATCH = 256


def _replace_into(temp: Path, target: Path, attempts: int = 5) -> None:
    """Rename ``temp`` over ``target``, making its folders first; a concurrent delete
    may remove an emptied folder between the mkdir and the rename, so try again."""
    for attempt in range(attempts):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(temp, target)
            return
        except FileNotFoundError:
            if attempt == attempts - 1 or not temp.exists():
                raise


def _fsync_directory(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _files_under(folder: Path) -> Generator[tuple[Path, float]]:
    """Every regular file below ``folder`` with its modification time, depth first: one
    open directory per level, never the whole tree in memory (symlinks are not followed)."""
    try:
        top = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    stack = [top]
    try:
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop().close()
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(os.scandir(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    yield Path(entry.path), entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:  # removed meanwhile
                continue
    finally:
        for handle in stack:
            handle.close()


def _next_batch(walk: Iterator[tuple[Path, float]]) -> list[tuple[Path, float]]:
    return list(itertools.islice(walk, LIST_BATCH))
