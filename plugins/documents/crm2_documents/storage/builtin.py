"""The backends the documents plugin ships, offered through its own hook like anyone's."""

from __future__ import annotations

from typing import Any

from crm2_documents.storage.base import StorageBackend
from crm2_documents.storage.local import LocalBackend


def builtin_backends(context: Any) -> list[StorageBackend]:
    settings = context.plugin_settings("documents")
    backends: list[StorageBackend] = [LocalBackend(settings.local_root)]
    if settings.s3_endpoint_url:
        from crm2_documents.storage.s3 import S3Backend

        backends.append(S3Backend.from_settings(settings))
    if settings.gdrive_client_id:
        from crm2_documents.storage.gdrive import GDriveBackend, StoredGrant

        # without CRM2_DOCUMENTS_GDRIVE_TOKEN_KEY the settings refused to load (config.py)
        backends.append(GDriveBackend(StoredGrant(context), settings))
    return backends
