"""The events the documents plugin emits: its public, versioned contract.

Subject: the document's id. Every event carries ``owner_id`` (whose the
document is for visibility) so that the ``documents`` stream decides who may
see it without a database read. File contents never travel in events.
"""

from __future__ import annotations

import uuid

from crm2_core.api import EventData


class _DocumentEvent(EventData):
    title: str
    kind: str
    owner_id: uuid.UUID | None
    link_kind: str | None
    link_id: str | None


class DocumentCreated(_DocumentEvent, type="documents.document.created", version=1):
    """A document (its metadata) was created."""

    creator_id: uuid.UUID | None


class DocumentUpdated(_DocumentEvent, type="documents.document.updated", version=1):
    """A document's metadata changed; ``changed`` names the fields."""

    changed: list[str]


class VersionAdded(_DocumentEvent, type="documents.document.version_added", version=1):
    """A file was uploaded as the document's newest version."""

    number: int
    size: int
    sha256: str
    content_type: str
    backend: str
    state: str  # stored | transferring


class DocumentDeleted(_DocumentEvent, type="documents.document.deleted", version=1):
    """A document was deleted (soft: restorable until ``purge_after``), or purged."""

    purged: bool


class DocumentRestored(_DocumentEvent, type="documents.document.restored", version=1):
    """A deleted document was restored before its purge."""


class TransferDone(_DocumentEvent, type="documents.document.transfer_done", version=1):
    """A version's file reached its target backend."""

    number: int
    backend: str


class TransferFailed(_DocumentEvent, type="documents.document.transfer_failed", version=1):
    """A version's file could not be moved to its target backend after every attempt."""

    number: int
    target_backend: str
    error: str


EVENT_TYPES: list[type[EventData]] = [
    DocumentCreated,
    DocumentUpdated,
    VersionAdded,
    DocumentDeleted,
    DocumentRestored,
    TransferDone,
    TransferFailed,
]
