"""The backends of one application: collected once from ``crm2_documents_storage_backends``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm2_core.api import ConfigurationError
from crm2_documents.errors import UnknownBackend
from crm2_documents.storage.base import StorageBackend

HOOK = "crm2_documents_storage_backends"


class Storage:
    """Backends by name, plus which one new files go to and which one uploads land on."""

    def __init__(self, backends: Mapping[str, StorageBackend], target: str, upload: str) -> None:
        self.backends = dict(backends)
        for name in (target, upload):
            if name not in self.backends:
                raise ConfigurationError(
                    f"documents: CRM2_DOCUMENTS_BACKEND / CRM2_DOCUMENTS_UPLOAD_BACKEND name "
                    f"{name!r}, but the configured backends are {sorted(self.backends)}: "
                    "set one of those, or configure that backend (see env.example)"
                )
        self.target = target
        self.upload = upload

    def get(self, name: str) -> StorageBackend:
        try:
            return self.backends[name]
        except KeyError:
            raise UnknownBackend(f"no storage backend {name!r}") from None

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()


def build_storage(context: Any) -> Storage:
    settings = context.plugin_settings("documents")
    found: dict[str, StorageBackend] = {}
    for plugin, backend in context.plugins.collect(HOOK, context=context):
        if not isinstance(backend, StorageBackend):
            raise ConfigurationError(
                f"{plugin}: {HOOK} returned {type(backend).__name__}; return StorageBackend objects"
            )
        if backend.name in found:
            raise ConfigurationError(
                f"{plugin}: a storage backend named {backend.name!r} exists already: rename it"
            )
        found[backend.name] = backend
    return Storage(found, settings.backend, settings.upload_backend or settings.backend)


def storage_of(context: Any) -> Storage:
    storage: Storage = context.get(Storage)
    return storage
