"""Opening a set's artefacts: the encrypted file's checksum, then decryption and its checksum."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crm2_backup import crypto
from crm2_backup.config import BackupSettings
from crm2_backup.errors import IntegrityFailed
from crm2_backup.models import BackupArtifact, BackupSet
from crm2_backup.service import destinations, store


async def _sealed(
    context: Any, settings: BackupSettings, row: BackupSet, artifact: BackupArtifact, into: Path
) -> tuple[Path, bool]:
    """The encrypted file: the local copy, else fetched from the set's destination into ``into``
    (``True``: a fetched copy, to delete once read)."""
    local = store.set_dir(settings, row.location) / artifact.filename
    if local.is_file():
        return local, False
    remote = None if context is None else destinations.of_set(context, row)
    if remote is None:
        raise IntegrityFailed(f"{artifact.target}: {artifact.filename} is missing from the set")
    fetched = into / f"fetched-{artifact.filename}"
    try:
        await destinations.fetch(remote, row.location, artifact.filename, fetched)
    except FileNotFoundError:
        raise IntegrityFailed(
            f"{artifact.target}: {artifact.filename} is missing from the set, here and in "
            f"its destination {remote.name!r}"
        ) from None
    return fetched, True


async def open_artifact(
    settings: BackupSettings,
    key: bytes,
    row: BackupSet,
    artifact: BackupArtifact,
    into: Path,
    context: Any = None,
) -> Path:
    """Check ``artifact`` and decrypt it into ``into``; IntegrityFailed names what broke.

    With ``context``, a file gone from the local folder is read from the destination
    the set was copied to (its manifest's ``destination``).
    """
    sealed, fetched = await _sealed(context, settings, row, artifact, into)
    try:
        return await _open(key, sealed, artifact, into)
    finally:
        if fetched:
            sealed.unlink(missing_ok=True)


async def _open(key: bytes, sealed: Path, artifact: BackupArtifact, into: Path) -> Path:
    sha = await asyncio.to_thread(crypto.sha256_file, sealed)
    if sha != artifact.sha256:
        raise IntegrityFailed(
            f"{artifact.target}: {artifact.filename} has SHA-256 {sha}, the manifest says "
            f"{artifact.sha256}"
        )
    plain = into / artifact.filename.removesuffix(".enc")
    try:
        size, plain_sha = await asyncio.to_thread(crypto.decrypt_file, key, sealed, plain)
    except crypto.DecryptError as exc:
        raise IntegrityFailed(f"{artifact.target}: {exc}") from None
    if (size, plain_sha) != (artifact.plain_size_bytes, artifact.plain_sha256):
        raise IntegrityFailed(f"{artifact.target}: the decrypted artefact's checksum differs")
    return plain
