"""A right taken away ends the open streams that stood on it, at once, not at their lifetime.

Each test opens a real stream over TCP, changes the principal's rights (deactivation,
demotion, deletion, a role losing the channel's permission, a revoked API key), and
expects the stream to end with ``event: reconnect`` naming why, sending nothing that
was published after the change. The last test makes the change in another process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from conftest import ProbeFactory, Serve
from sse_helpers import EventStream, Message, post_item

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

USERS, ROLES, KEYS = "/api/v1/auth/users", "/api/v1/auth/roles", "/api/v1/auth/api-keys"
CLOSE_WITHIN = 5.0  # seconds: the event's relay and one check, with a loaded machine's margin


async def patch(app: Crm2TestApp, admin: dict[str, str], url: str, body: dict[str, Any]) -> None:
    etag = (await app.client.get(url, headers=admin)).headers["etag"]
    response = await app.client.patch(url, json=body, headers={**admin, "If-Match": etag})
    assert response.status_code == 200, response.text


async def ends_with(
    stream: EventStream, reason: str, app: Crm2TestApp, publisher: dict[str, str]
) -> None:
    """The stream ends with ``reconnect`` / ``reason``; an item published after the change
    (and before the farewell is read) is never sent."""
    await post_item(app, publisher, 99)
    received: list[Message] = await stream.collect(lambda got: False, within=CLOSE_WITHIN)
    assert [m.event for m in received] == ["reconnect"], [m.data for m in received]
    assert received[0].json() == {"reason": reason}


async def open_stream(sse: httpx.AsyncClient, url: str, **kwargs: Any) -> tuple[Any, EventStream]:
    context = sse.stream("GET", url, **kwargs)
    response = await context.__aenter__()
    stream = EventStream(response)
    assert (await stream.next()).event == "connected"
    return context, stream


Change = Callable[[Crm2TestApp, dict[str, str], str], Awaitable[None]]


async def demote(app: Crm2TestApp, admin: dict[str, str], user_id: str) -> None:
    await patch(app, admin, f"{USERS}/{user_id}", {"roles": ["agent"]})


async def deactivate(app: Crm2TestApp, admin: dict[str, str], user_id: str) -> None:
    await patch(app, admin, f"{USERS}/{user_id}", {"is_active": False})


async def delete(app: Crm2TestApp, admin: dict[str, str], user_id: str) -> None:
    response = await app.client.delete(f"{USERS}/{user_id}", headers=admin)
    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    ("credential", "change"),
    [("bearer", demote), ("bearer", delete), ("stream-token", deactivate)],
    ids=["bearer-demoted", "bearer-deleted", "stream-token-deactivated"],
)
async def test_a_users_stream_ends_when_their_account_changes(
    probe_app: ProbeFactory,
    serve: Serve,
    sse: httpx.AsyncClient,
    change: Change,
    credential: str,
) -> None:
    app = await probe_app()
    server = await serve(app)
    admin = await app.login("admin")
    reader = await app.user("admin")
    url = f"{server.url}/api/v1/streams/probe_audit"
    if credential == "bearer":
        kwargs: dict[str, Any] = {"headers": reader.headers}
    else:
        token = await app.client.post(
            "/api/v1/streams/token", json={"channel": "probe_audit"}, headers=reader.headers
        )
        kwargs = {"params": {"token": token.json()["token"]}}
    context, stream = await open_stream(sse, url, **kwargs)
    try:
        await post_item(app, admin, 1)  # delivered while the rights stand
        assert (await stream.next()).json()["data"] == {"n": 1}
        await change(app, admin, str(reader.id))
        await ends_with(stream, "credentials-revoked", app, admin)
    finally:
        await context.__aexit__(None, None, None)


async def test_a_role_losing_the_channels_permission_ends_its_streams_only(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    admin = await app.login("admin")
    body = {"name": "auditor", "permissions": ["probe:audit", "probe:read"]}
    assert (await app.client.post(ROLES, json=body, headers=admin)).status_code == 201
    auditor = await app.login("auditor")
    audit, audit_stream = await open_stream(
        sse, f"{server.url}/api/v1/streams/probe_audit", headers=auditor
    )
    plain, plain_stream = await open_stream(
        sse, f"{server.url}/api/v1/streams/probe", headers=auditor
    )
    try:
        # a change that keeps the permission ends nothing (making the role an administrator
        # takes the admin's own password)
        wider = {
            "permissions": ["probe:audit", "probe:read", "*"],
            "current_password": TEST_PASSWORD,
        }
        await patch(app, admin, f"{ROLES}/auditor", wider)
        await post_item(app, admin, 2)
        assert (await audit_stream.next()).json()["data"] == {"n": 2}
        await patch(app, admin, f"{ROLES}/auditor", {"permissions": ["probe:read"]})
        await ends_with(audit_stream, "forbidden", app, admin)
        # the same role's stream of a channel it still may read goes on, the new item in it
        message = await plain_stream.next()
        assert message.json()["data"]["n"] in (2, 99)
        if message.json()["data"]["n"] == 2:
            assert (await plain_stream.next()).json()["data"] == {"n": 99}
    finally:
        await audit.__aexit__(None, None, None)
        await plain.__aexit__(None, None, None)
    # reconnecting is refused
    response = await app.client.get("/api/v1/streams/probe_audit", headers=auditor)
    assert response.status_code == 403


async def test_a_revoked_api_keys_stream_ends(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    admin = await app.login("admin")
    created = await app.client.post(
        KEYS,
        json={"name": "feed", "role": "admin", "current_password": TEST_PASSWORD},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    other = await app.client.post(
        KEYS,
        json={"name": "other", "role": "admin", "current_password": TEST_PASSWORD},
        headers=admin,
    )
    other_key = {"Authorization": f"Bearer {other.json()['key']}"}
    url = f"{server.url}/api/v1/streams/probe_audit"
    revoked, revoked_stream = await open_stream(sse, url, headers=key)
    kept, kept_stream = await open_stream(sse, url, headers=other_key)
    try:
        deleted = await app.client.delete(f"{KEYS}/{created.json()['id']}", headers=admin)
        assert deleted.status_code == 204, deleted.text
        await ends_with(revoked_stream, "credentials-revoked", app, admin)
        assert (await kept_stream.next()).json()["data"] == {"n": 99}  # the other key's goes on
    finally:
        await revoked.__aexit__(None, None, None)
        await kept.__aexit__(None, None, None)
    response = await app.client.get("/api/v1/streams/probe_audit", headers=key)
    assert response.status_code == 401


async def test_a_change_made_in_another_process_ends_the_stream(
    probe_app: ProbeFactory,
    serve: Serve,
    sse: httpx.AsyncClient,
    crm2_redis_url: tuple[str, str],
) -> None:
    """Two processes on one database and Redis, caches trusted for an hour: only the
    event can tell the serving process."""
    url, prefix = crm2_redis_url
    slow = {"auth": {"credentials_cache_seconds": 3600, "role_cache_seconds": 300}}
    first = await probe_app(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    second = await probe_app(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    server = await serve(second)
    admin = await first.login("admin")
    reader = await first.user("admin")
    created = await first.client.post(
        KEYS, json={"name": "k", "role": "admin", "current_password": TEST_PASSWORD}, headers=admin
    )
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    stream_url = f"{server.url}/api/v1/streams/probe_audit"
    user_ctx, user_stream = await open_stream(sse, stream_url, headers=reader.headers)
    key_ctx, key_stream = await open_stream(sse, stream_url, headers=key)
    try:
        await deactivate(first, admin, str(reader.id))
        revoked = await first.client.delete(f"{KEYS}/{created.json()['id']}", headers=admin)
        assert revoked.status_code == 204
        await asyncio.gather(
            ends_with(user_stream, "credentials-revoked", first, admin),
            ends_with(key_stream, "credentials-revoked", first, admin),
        )
    finally:
        await user_ctx.__aexit__(None, None, None)
        await key_ctx.__aexit__(None, None, None)
