"""The encryption key: from ``CRM2_BACKUP_KEY`` or the key file (created once, mode 0600)."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from crm2_backup import crypto
from crm2_backup.config import BackupSettings
from crm2_backup.errors import KeyMissing

log = logging.getLogger("crm2.backup")


def load_key(settings: BackupSettings, *, create: bool = False) -> bytes:
    """The 32-byte key; never logged. ``create`` writes a new key file when none exists."""
    if settings.key is not None:
        try:
            return crypto.decode_key(settings.key.get_secret_value())
        except ValueError as exc:
            raise KeyMissing(f"CRM2_BACKUP_KEY: {exc}") from None
    path = Path(settings.key_file)
    if not path.exists():
        if not create:
            raise KeyMissing(f"no backup key: {path} does not exist (set CRM2_BACKUP_KEY_FILE)")
        try:
            write_key_file(path, crypto.new_key())
        except FileExistsError:
            pass  # another process's first backup made it meanwhile: use that one
        else:
            log.warning(
                "backup: created a new key file %s; keep a copy apart from the backups", path
            )
    try:
        return crypto.decode_key(path.read_text(encoding="ascii"))
    except (OSError, ValueError) as exc:
        raise KeyMissing(f"{path}: {exc}") from None


def write_key_file(path: Path, key: bytes) -> None:
    """A new key file (mode 0600) that appears whole: written beside it, then linked in.

    ``FileExistsError`` when ``path`` exists (never overwritten): a reader never sees
    it half-written, and of two processes making it at once one key wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(crypto.encode_key(key) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
