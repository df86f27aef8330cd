"""A path that only matches with or without its trailing slash is a 307 to the other one,
whose ``Location`` is relative: the path bytes as the client sent them and its query,
never a host or scheme read from the request (``Host`` is the client's to choose)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from starlette.types import Message

from crm2_core.http import route_index
from crm2_core.http.app import create_app
from crm2_core.settings import Settings
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_JWT_SECRET


def _scope(raw_path: bytes, query: bytes = b"", *, root_path: str = "") -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it: ``path`` decoded, ``raw_path`` as sent."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "root_path": root_path,
        "query_string": query,
        "headers": [(b"host", b"evil.example"), (b"x-forwarded-proto", b"https")],
        "client": ("203.0.113.9", 4711),
        "server": ("crm2.test", 80),
    }


async def _call(app: Any, scope: dict[str, Any]) -> tuple[int, dict[bytes, bytes]]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"])


async def test_a_trailing_slash_redirect_is_relative_whatever_the_host_header(
    crm2: Crm2TestApp,
) -> None:
    status, headers = await _call(crm2.app, _scope(b"/api/v1/auth/me/", b"a=1&b=%2F"))
    assert status == 307
    assert headers[b"location"] == b"/api/v1/auth/me?a=1&b=%2F"


async def test_the_redirect_keeps_the_path_bytes_as_sent(crm2: Crm2TestApp) -> None:
    # %2523 is a literal "%23" in the role name: decoded once and written back unencoded
    # it would become "#", cutting the path short in the client's next request.
    status, headers = await _call(crm2.app, _scope(b"/api/v1/auth/roles/a%2523b%20c/"))
    assert status == 307
    assert headers[b"location"] == b"/api/v1/auth/roles/a%2523b%20c"
    status, headers = await _call(crm2.app, _scope(b"/api/v1/auth/roles/%C3%A9/"))
    assert headers[b"location"] == b"/api/v1/auth/roles/%C3%A9"


async def test_the_redirect_keeps_the_root_path(crm2: Crm2TestApp) -> None:
    scope = _scope(b"/crm/api/v1/auth/me/", root_path="/crm")
    status, headers = await _call(crm2.app, scope)
    assert status == 307
    assert headers[b"location"] == b"/crm/api/v1/auth/me"


async def test_a_redirect_never_names_another_host(crm2: Crm2TestApp) -> None:
    # A path the client sent with several leading slashes must not come back as a
    # network-path reference ("//host/…"), which a browser would follow off-site.
    scope = _scope(b"//api/v1/auth/me/", root_path="/")  # routed as /api/v1/auth/me/
    status, headers = await _call(crm2.app, scope)
    assert status == 307
    assert not headers[b"location"].startswith(b"//")
    assert headers[b"location"].endswith(b"/api/v1/auth/me")


async def test_a_redirect_falls_back_to_the_decoded_path_when_raw_path_disagrees(
    crm2: Crm2TestApp,
) -> None:
    scope = _scope(b"/api/v1/auth/roles/x%2523/")
    del scope["raw_path"]  # optional in ASGI
    status, headers = await _call(crm2.app, scope)
    assert status == 307
    assert headers[b"location"] == b"/api/v1/auth/roles/x%2523"
    scope = _scope(b"/api/v1/auth/me%2F")  # the slash is in the encoded bytes only
    status, headers = await _call(crm2.app, scope)
    assert status == 307
    assert headers[b"location"] == b"/api/v1/auth/me"


async def test_without_the_index_there_is_no_redirect_naming_the_host(
    crm2_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(route_index, "_DIGEST", "0" * 64)  # as after a FastAPI upgrade
    app = create_app(crm2_settings, plugin_settings={"auth": {"jwt_secret": TEST_JWT_SECRET}})
    status, headers = await _call(app.router, _scope(b"/api/v1/auth/me/"))
    assert status == 404
    assert b"location" not in headers
