"""Opening a set's artefacts: the encrypted file's checksum, then decryption and its checksum."""

from __future__ import annotations

import asyncio
from pathlib import Path

from crm2_backup import crypto
from crm2_backup.config import BackupSettings
from crm2_backup.errors import IntegrityFailed
from crm2_backup.models import BackupArtifact, BackupSet
from crm2_backup.service import store


async def open_artifact(
    settings: BackupSettings, key: bytes, row: BackupSet, artifact: BackupArtifact, into: Path
) -> Path:
    """Check ``artifact`` and decrypt it into ``into``; IntegrityFailed names what broke."""
    sealed = store.set_dir(settings, row.location) / artifact.filename
    if not sealed.is_file():
        raise IntegrityFailed(f"{artifact.target}: {artifact.filename} is missing from the set")
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
