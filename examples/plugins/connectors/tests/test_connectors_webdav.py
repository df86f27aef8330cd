"""The ``webdav`` backend against WsgiDAV on 127.0.0.1: documents' backend contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from connectors_servers import WEBDAV_PASSWORD, WEBDAV_USER, WebDavServer
from crm2_documents.storage.base import StorageError
from crm2_documents.testing import BackendContract

from crm2_connectors.webdav import WebDavBackend


class TestWebDavBackend(BackendContract):
    large_size = 3 * 1024 * 1024 + 7  # streamed in chunks; kept small for the suite

    @pytest.fixture
    async def backend(self, dav: WebDavServer) -> AsyncIterator[WebDavBackend]:
        backend = WebDavBackend(dav.url, username=WEBDAV_USER, password=WEBDAV_PASSWORD)
        yield backend
        await backend.aclose()


async def test_wrong_credentials_are_a_storage_error_not_a_silent_miss(dav: WebDavServer) -> None:
    backend = WebDavBackend(dav.url, username=WEBDAV_USER, password="wrong")
    try:
        with pytest.raises(StorageError, match="401"):
            await backend.exists("documents/x/v1")
        with pytest.raises(StorageError, match="401"):
            await backend.status()
    finally:
        await backend.aclose()
