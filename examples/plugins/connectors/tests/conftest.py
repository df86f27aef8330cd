"""Fixtures of the connectors tests; the servers themselves live in connectors_servers.py."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from connectors_servers import ChatServer, WebDavServer, chat_server, webdav_server


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDavServer]:
    """WsgiDAV on 127.0.0.1, one per test module (each test uses keys of its own)."""
    with webdav_server(tmp_path_factory.mktemp("webdav")) as server:
        yield server


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    """A Slack-compatible webhook on 127.0.0.1, fresh for each test."""
    async with chat_server() as server:
        yield server
