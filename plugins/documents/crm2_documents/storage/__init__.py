"""Storage backends of the documents plugin: the interface, the registry, the shipped ones."""

from __future__ import annotations

from crm2_documents.storage.base import (
    CHUNK_SIZE,
    KEY_PATTERN,
    InvalidKey,
    KeyMissing,
    StorageBackend,
    StorageError,
    StoredObject,
    check_key,
    read_all,
)

__all__ = [
    "CHUNK_SIZE",
    "KEY_PATTERN",
    "InvalidKey",
    "KeyMissing",
    "StorageBackend",
    "StorageError",
    "StoredObject",
    "check_key",
    "read_all",
]
