"""Real servers on 127.0.0.1 for the connectors tests.

``chat_server``: a Slack-compatible incoming webhook (Starlette routes on the
testing kit's ``local_server``) that records each post and can be told to fail;
``webdav_server``: WsgiDAV, a full WebDAV server (WSGI, so on cheroot in a thread,
not the kit's server), over a temporary folder, with Basic auth.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from crm2_core.testing.servers import local_server

WEBDAV_USER, WEBDAV_PASSWORD = "crm2", "dav-secret-1"


@dataclass
class ChatServer:
    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    answer: int = 200  # the status every post gets
    retry_after: str | None = None

    async def texts(self) -> list[str]:
        """Each post as a reader sees it: ``channel``, then the text with Slack's escapes undone."""
        return [f"{p.get('channel', '')} {html.unescape(str(p.get('text')))}" for p in self.posts]

    async def fail(self) -> None:
        self.answer = 500

    async def handle(self, request: Request) -> PlainTextResponse:
        if self.answer != 200:
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return PlainTextResponse("no_service", status_code=self.answer, headers=headers)
        payload = await request.json()
        payload["delivery"] = request.headers.get("x-crm2-delivery")
        self.posts.append(payload)
        return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def chat_server() -> AsyncIterator[ChatServer]:
    fake = ChatServer()
    async with local_server([Route("/services/T0/B0/x", fake.handle, methods=["POST"])]) as url:
        fake.url = f"{url}/services/T0/B0/x"
        yield fake


@dataclass(frozen=True)
class WebDavServer:
    url: str  # the collection crm2 is given
    root: Path  # the folder WsgiDAV serves it from


@contextlib.contextmanager
def webdav_server(root: Path) -> Iterator[WebDavServer]:
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    (root / "crm2").mkdir(parents=True, exist_ok=True)
    config = {
        "provider_mapping": {"/dav": str(root)},
        "simple_dc": {"user_mapping": {"*": {WEBDAV_USER: {"password": WEBDAV_PASSWORD}}}},
        "http_authenticator": {"accept_basic": True, "accept_digest": False,
                               "default_to_digest": False, "trusted_auth_header": None},
        "verbose": 0,
        "logging": {"enable": False, "enable_loggers": []},
        "dir_browser": {"enable": False},
        "lock_storage": True,
    }  # fmt: skip
    server = wsgi.Server(("127.0.0.1", 0), WsgiDAVApp(config), numthreads=8)
    server.prepare()
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name="webdav", daemon=True)
    thread.start()
    try:
        yield WebDavServer(f"http://127.0.0.1:{port}/dav/crm2/", root / "crm2")
    finally:
        server.stop()
        thread.join(10)
