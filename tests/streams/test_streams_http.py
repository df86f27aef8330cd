"""GET /api/v1/streams/{channel}: messages, authentication, authorization, lifetime."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import ProbeFactory, Serve
from sse_helpers import EventStream, event_ids, post_item

from crm2_core.testing.app import TEST_PASSWORD


async def _stream_token(client: httpx.AsyncClient, headers: dict[str, str], channel: str) -> str:
    response = await client.post(
        "/api/v1/streams/token", json={"channel": channel}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 60
    return str(body["token"])


async def test_stream_sends_position_type_and_envelope(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    async with sse.stream("GET", url, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = EventStream(response)
        hello = await stream.next()
        assert hello.event == "connected" and hello.retry == 3000
        assert hello.json() == {"position": int(hello.id or -1), "heartbeat_seconds": 15}
        event_id = await post_item(app, headers, 7)
        message = await stream.next()
    envelope = message.json()
    assert message.event == "probe.item.created"
    assert message.id == str(envelope["position"]) and int(message.id) > int(hello.id or 0)
    assert envelope["id"] == str(event_id) and envelope["type"] == "probe.item.created"
    assert envelope["version"] == 1 and envelope["data"] == {"n": 7}
    assert envelope["actor"]["kind"] == "user"


async def test_stream_without_credentials_is_401(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    response = await app.client.get("/api/v1/streams/probe")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_stream_without_the_channel_permission_is_403(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    headers = await app.login("agent")  # probe:audit is granted to admins only
    response = await app.client.get("/api/v1/streams/probe_audit", headers=headers)
    assert response.status_code == 403
    assert "probe:audit" in response.json()["detail"]


async def test_user_without_roles_is_refused_the_stream(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    await app.create_user(email=email)
    login = await app.client.post(
        "/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    response = await app.client.get("/api/v1/streams/probe", headers=headers)
    assert response.status_code == 403


async def test_unknown_channel_is_404(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    headers = await app.login("admin")
    response = await app.client.get("/api/v1/streams/nope", headers=headers)
    assert response.status_code == 404
    assert response.json()["type"] == "urn:crm2:problem:unknown-stream-channel"


async def test_malformed_last_event_id_is_400(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    headers = {**await app.login("admin"), "Last-Event-ID": "yesterday"}
    response = await app.client.get("/api/v1/streams/probe", headers=headers)
    assert response.status_code == 400


async def test_stream_token_needs_the_channel_permission(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    headers = await app.login("agent")
    response = await app.client.post(
        "/api/v1/streams/token", json={"channel": "probe_audit"}, headers=headers
    )
    assert response.status_code == 403


async def test_a_stream_token_is_never_cached_nor_kept_under_an_idempotency_key(
    probe_app: ProbeFactory,
) -> None:
    app = await probe_app()
    headers = {**await app.login("admin"), "Idempotency-Key": "stream-token-1"}
    body = {"channel": "probe_audit"}
    first = await app.client.post("/api/v1/streams/token", json=body, headers=headers)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    again = await app.client.post("/api/v1/streams/token", json=body, headers=headers)
    assert again.status_code == 409, again.text
    assert first.json()["token"] not in again.text


async def test_stream_token_opens_its_channel(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("agent")
    token = await _stream_token(app.client, headers, "probe")
    url = f"{server.url}/api/v1/streams/probe"
    async with sse.stream("GET", url, params={"token": token}) as response:
        stream = EventStream(response)
        assert (await stream.next()).event == "connected"
        event_id = await post_item(app, headers, 2)
        message = await stream.next()
    assert message.json()["id"] == str(event_id)


async def test_stream_token_of_a_revoked_api_key_is_401(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    admin = await app.login("admin")
    created = await app.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "feed", "role": "admin", "current_password": TEST_PASSWORD},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    token = await _stream_token(app.client, key, "probe_audit")
    revoked = await app.client.delete(
        f"/api/v1/auth/api-keys/{created.json()['id']}", headers=admin
    )
    assert revoked.status_code == 204, revoked.text

    url = f"{server.url}/api/v1/streams/probe_audit"
    async with sse.stream("GET", url, params={"token": token}) as response:
        assert response.status_code == 401


async def test_stream_token_is_bound_to_its_channel(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    headers = await app.login("admin")  # may read both channels
    token = await _stream_token(app.client, headers, "probe")
    response = await app.client.get("/api/v1/streams/probe_audit", params={"token": token})
    assert response.status_code == 401
    assert "channel" in response.json()["detail"]


async def test_stream_token_is_not_an_access_token(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    headers = await app.login("admin")
    token = await _stream_token(app.client, headers, "probe")
    response = await app.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_access_token_is_not_a_stream_token(probe_app: ProbeFactory) -> None:
    app = await probe_app()
    headers = await app.login("admin")
    access = headers["Authorization"].removeprefix("Bearer ")
    response = await app.client.get("/api/v1/streams/probe", params={"token": access})
    assert response.status_code == 401


async def test_agent_receives_only_the_events_it_may_see(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    admin = await app.login("admin")
    agent = await app.login("agent")
    url = f"{server.url}/api/v1/streams/probe"
    async with (
        sse.stream("GET", url, headers=admin) as admin_response,
        sse.stream("GET", url, headers=agent) as agent_response,
    ):
        admin_stream, agent_stream = EventStream(admin_response), EventStream(agent_response)
        for stream in (admin_stream, agent_stream):
            assert (await stream.next()).event == "connected"
        sent = [await post_item(app, admin, n) for n in range(1, 7)]
        seen_by_admin, seen_by_agent = await asyncio.gather(
            admin_stream.collect(lambda got: len(got) == 6),
            agent_stream.collect(lambda got: got[-1].json()["data"]["n"] == 6),
        )
    assert event_ids(seen_by_admin) == sent
    assert [m.json()["data"]["n"] for m in seen_by_agent] == [2, 4, 6]


async def test_heartbeat_comments_keep_the_stream_alive(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app(sse_heartbeat_seconds=0.2)
    server = await serve(app)
    headers = await app.login("viewer")
    pings = 0
    async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
        stream = EventStream(r)
        while pings < 3:
            message = await stream.next(within=2)
            pings += sum(c.startswith("ping") for c in message.comments)
    assert pings == 3


async def test_connected_message_tells_the_heartbeat_interval(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    """A client that hears nothing for a few intervals knows its connection is dead
    (a network gone without a reset) and reconnects: it needs the interval to tell."""
    app = await probe_app(sse_heartbeat_seconds=0.2)
    server = await serve(app)
    headers = await app.login("viewer")
    async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
        hello = await EventStream(r).next()
    assert hello.event == "connected"
    assert hello.json()["heartbeat_seconds"] == 0.2


async def test_connection_lifetime_is_capped_with_a_retry_hint(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app(sse_max_connection_seconds=0.5)
    server = await serve(app)
    headers = await app.login("viewer")
    async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
        received = await EventStream(r).collect(lambda got: False, within=5)
    hello, last = received  # the stream ended by itself
    assert hello.event == "connected"
    assert last.event == "reconnect" and last.json() == {"reason": "lifetime"}
    assert last.retry == 3000 and last.id is None


async def test_shutdown_ends_open_streams(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("viewer")
    async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
        stream = EventStream(r)
        assert (await stream.next()).event == "connected"
        await app.context.streams.close()
        received = await stream.collect(lambda got: False, within=5)
    assert [m.json() for m in received] == [{"reason": "shutdown"}]


async def test_asyncapi_document_lists_events_and_stream_channels(
    probe_app: ProbeFactory,
) -> None:
    app = await probe_app()
    response = await app.client.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    assert "probe.item.created.v1" in document["components"]["messages"]
    stream = document["channels"]["stream.probe"]
    assert stream["address"] == "/api/v1/streams/probe"
    assert "probe.item.created.v1" in stream["messages"]


async def test_stream_opened_with_an_access_token_ends_when_the_token_expires(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    """Issue 9: a stream does not outlive the access token that opened it."""
    app = await probe_app()
    server = await serve(app)
    signed_in = (await app.login("viewer"))["Authorization"].split(" ", 1)[1]
    tokens = app.context.auth.tokens
    claims = tokens.decode_access(signed_in)
    short = tokens.encode(str(claims.subject), "access", 2, roles=sorted(claims.roles),
                          cv=claims.credentials_version)  # fmt: skip
    headers = {"Authorization": f"Bearer {short}"}
    started = asyncio.get_running_loop().time()
    async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
        assert r.status_code == 200
        received = await EventStream(r).collect(lambda got: False, within=10)
    elapsed = asyncio.get_running_loop().time() - started
    hello, last = received  # the stream ended by itself, at the token's exp
    assert hello.event == "connected"
    assert last.event == "reconnect" and last.json() == {"reason": "token-expired"}
    assert 0.5 < elapsed < 8


async def test_a_stream_opened_with_an_expiring_api_key_ends_when_the_key_expires(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Directly or through a stream token made with it: the stream ends at the key's expiry
    (its requests would be 401 from then on), not at the connection's lifetime."""
    # a key lives at least a minute; this one must end within the test
    monkeypatch.setattr("crm2_core.auth.service.MIN_KEY_LIFETIME", timedelta(0))
    app = await probe_app()
    server = await serve(app)
    admin = await app.login("admin")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    created = await app.client.post(
        "/api/v1/auth/api-keys",
        json={
            "name": "feed",
            "role": "viewer",
            "expires_at": expires.isoformat(),
            "current_password": TEST_PASSWORD,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    token = await app.client.post("/api/v1/streams/token", json={"channel": "probe"}, headers=key)
    assert token.status_code == 200, token.text
    url = f"{server.url}/api/v1/streams/probe"

    async def until_the_end(**request: Any) -> list[Any]:
        async with sse.stream("GET", url, **request) as r:
            assert r.status_code == 200
            return await EventStream(r).collect(lambda got: False, within=12)

    direct, tokened = await asyncio.gather(
        until_the_end(headers=key), until_the_end(params={"token": token.json()["token"]})
    )
    for received in (direct, tokened):
        assert received[0].event == "connected"
        assert received[-1].event == "reconnect"
        assert received[-1].json() == {"reason": "token-expired"}
    assert datetime.now(UTC) < expires + timedelta(seconds=8)


async def test_head_of_a_stream_answers_its_headers_at_once(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    # HEAD runs as the GET (http/middleware.py's HeadMiddleware): the stream's headers,
    # no events, and the connection is not held open.
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    async with asyncio.timeout(5):
        head = await sse.head(url, headers=headers)
        health = await sse.head(f"{server.url}/healthz")
        refused = await sse.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")
    assert health.status_code == 200 and health.content == b""
    assert int(health.headers["content-length"]) > 0
    assert refused.status_code == 401
