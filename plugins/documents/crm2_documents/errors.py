"""Documents errors, each with its HTTP status."""

from __future__ import annotations

from crm2_core.api import (
    Conflict,
    Crm2Error,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)


class DocumentNotFound(NotFound):
    slug, title = "documents-document-not-found", "Document not found"


class VersionNotFound(NotFound):
    slug, title = "documents-version-not-found", "Document version not found"


class KindNotFound(NotFound):
    slug, title = "documents-kind-not-found", "Document kind not found"


class InvalidKind(Unprocessable):
    slug, title = "documents-invalid-kind", "The document kind is unknown or inactive"


class InvalidUpload(Unprocessable):
    slug, title = "documents-invalid-upload", "The upload is not a usable multipart file"


class LinkCycle(Unprocessable):
    slug, title = "documents-link-cycle", "The link would make a cycle of documents"


class LinkChainTooLong(Unprocessable):
    slug, title = "documents-link-chain-too-long", "The chain of linked documents is too long"


class PartHeadersTooLarge(Crm2Error):
    status, slug, title = (
        413,
        "documents-part-headers-too-large",
        "A multipart part has too many or too long headers",
    )


class KindInactive(Conflict):
    slug, title = "documents-kind-inactive", "The document's kind is inactive"


class KindExists(Conflict):
    slug, title = "documents-kind-exists", "A document kind with this key exists"


class DuplicateContent(Conflict):
    slug, title = "documents-duplicate-content", "The same file is already attached to the record"


class NotRestorable(Conflict):
    slug, title = "documents-not-restorable", "The document is not deleted"


class FileNotReady(Conflict):
    slug, title = "documents-file-not-ready", "The version's file is not stored (yet)"


class TransferFailedState(Conflict):
    slug, title = "documents-transfer-failed", "The version's move to another backend failed"


class FileMissing(NotFound):
    slug, title = "documents-file-missing", "The version's file is missing from its storage backend"


class StorageUnavailable(ServiceUnavailable):
    slug, title = "documents-storage-unavailable", "The storage backend failed; try again later"


class UnknownBackend(Unprocessable):
    slug, title = "documents-unknown-backend", "No storage backend of that name is configured"


class BadSignature(Forbidden):
    slug, title = "documents-bad-signature", "The signed URL is invalid or expired"


class FileTooLarge(Crm2Error):
    status, slug, title = 413, "documents-file-too-large", "The file exceeds the upload limit"


class ContentRefused(Crm2Error):
    status, slug, title = 415, "documents-content-refused", "This file's content is not accepted"


class RangeNotSatisfiable(Crm2Error):
    status, slug, title = 416, "documents-range-not-satisfiable", "The range is outside the file"
