"""One user or API key holds at most ``CRM2_SSE_MAX_CONNECTIONS_PER_PRINCIPAL`` streams
in a process: each open stream keeps a task, a subscription and a socket for up to an
hour, and nothing else bounded how many one credential could pile up."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from conftest import ProbeFactory, Serve
from sse_helpers import EventStream

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

KEYS = "/api/v1/auth/api-keys"


async def _refusal(sse: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | None:
    """The response refusing a stream; ``None`` when it opens (it is closed at once)."""
    async with sse.stream("GET", url, **kwargs) as response:
        if response.status_code != 200:
            await response.aread()
            return response
        assert (await EventStream(response).next()).event == "connected"
        return None


async def _opens(sse: httpx.AsyncClient, url: str, **kwargs: Any) -> bool:
    return await _refusal(sse, url, **kwargs) is None


async def _stream_token(app: Crm2TestApp, headers: dict[str, str]) -> str:
    response = await app.client.post(
        "/api/v1/streams/token", json={"channel": "probe"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def test_a_principal_past_its_share_of_streams_gets_429(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app(sse_max_connections_per_principal=2)
    server = await serve(app)
    reader = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    first = sse.stream("GET", url, headers=reader)
    # a stream token speaks for the same user: it counts against the same share
    second = sse.stream("GET", url, params={"token": await _stream_token(app, reader)})
    opened = [await first.__aenter__(), await second.__aenter__()]
    try:
        held = [EventStream(response) for response in opened]  # kept: they hold the streams
        for stream in held:
            assert (await stream.next()).event == "connected"
        refused = await _refusal(sse, url, headers=reader)
        assert refused is not None and refused.status_code == 429, refused
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:crm2:problem:too-many-streams"
        assert int(refused.headers["retry-after"]) >= 1
        # the same user's stream tokens are refused too; other principals are not
        token = await _stream_token(app, reader)
        by_token = await _refusal(sse, url, params={"token": token})
        assert by_token is not None and by_token.status_code == 429, by_token
        assert await _opens(sse, url, headers=await app.login("manager"))
        admin = await app.login("admin")
        key = await app.client.post(
            KEYS,
            json={"name": "feed", "role": "admin", "current_password": TEST_PASSWORD},
            headers=admin,
        )
        assert await _opens(sse, url, headers={"Authorization": f"Bearer {key.json()['key']}"})
    finally:
        await second.__aexit__(None, None, None)
    # a closed stream gives its place back
    for _ in range(100):
        if await _opens(sse, url, headers=reader):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the closed stream's place was never given back")
    await first.__aexit__(None, None, None)


async def test_refused_and_closed_streams_take_no_place(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app(sse_max_connections_per_principal=1)
    server = await serve(app)
    reader = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    bad = await sse.get(url, headers={**reader, "Last-Event-ID": "10000000"})
    assert bad.status_code == 400
    for _ in range(3):
        assert await _opens(sse, url, headers=reader)


async def test_a_process_past_its_streams_answers_503_with_retry_after(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    """Many principals, each within its share, used to pile up streams until the process
    ran out of file descriptors: then connections were not even accepted, and a client
    waited instead of being told. ``CRM2_SSE_MAX_CONNECTIONS`` bounds them all together."""
    app = await probe_app(sse_max_connections=2)
    server = await serve(app)
    url = f"{server.url}/api/v1/streams/probe"
    admin, manager = await app.login("admin"), await app.login("manager")
    first = sse.stream("GET", url, headers=admin)
    second = sse.stream("GET", url, headers=manager)
    opened = [await first.__aenter__(), await second.__aenter__()]
    try:
        held = [EventStream(response) for response in opened]  # kept: they hold the streams
        for stream in held:
            assert (await stream.next()).event == "connected"
        key = await app.client.post(
            KEYS,
            json={"name": "feed", "role": "admin", "current_password": TEST_PASSWORD},
            headers=admin,
        )
        refused = await _refusal(sse, url, headers={"Authorization": f"Bearer {key.json()['key']}"})
        assert refused is not None and refused.status_code == 503, refused
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:crm2:problem:streams-full"
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        await second.__aexit__(None, None, None)
    # a closed stream gives its place back, to anyone
    for _ in range(100):
        if await _opens(sse, url, headers=manager):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the closed stream's place was never given back")
    await first.__aexit__(None, None, None)
