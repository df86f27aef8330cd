"""A right taken away while a stream is being opened ends that stream too.

The route authenticates, then reads the log (``hub.ready``, the Last-Event-ID check)
and only then subscribes to the hub. A change to the reader's rights heard in that
window used to find no subscription to mark for a check, so the stream opened on the
rights as they were and ran on them to its lifetime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from conftest import ProbeFactory, Serve
from sse_helpers import EventStream, post_item
from test_streams_revocation import ROLES, USERS, patch

from crm2_core.testing import Crm2TestApp

Change = Callable[[Crm2TestApp, dict[str, str], str], Awaitable[None]]


async def deactivate(app: Crm2TestApp, admin: dict[str, str], user_id: str) -> None:
    await patch(app, admin, f"{USERS}/{user_id}", {"is_active": False})


async def drop_permission(app: Crm2TestApp, admin: dict[str, str], user_id: str) -> None:
    await patch(app, admin, f"{ROLES}/auditor", {"permissions": ["probe:read"]})


@pytest.mark.parametrize(
    ("change", "reason"),
    [(deactivate, "credentials-revoked"), (drop_permission, "forbidden")],
    ids=["deactivated", "permission-removed"],
)
async def test_a_change_heard_while_the_stream_opens_ends_it(
    probe_app: ProbeFactory,
    serve: Serve,
    sse: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    change: Change,
    reason: str,
) -> None:
    app = await probe_app()
    server = await serve(app)
    admin = await app.login("admin")
    body = {"name": "auditor", "permissions": ["probe:audit", "probe:read"]}
    assert (await app.client.post(ROLES, json=body, headers=admin)).status_code == 201
    reader = await app.user("auditor")
    hub = app.context.streams.hub
    ready = hub.ready
    changed: list[bool] = []

    async def ready_then_change() -> None:
        # the reader is authenticated already; the change is relayed and heard by the
        # hub before the connection subscribes
        await ready()
        if not changed:
            changed.append(True)
            await change(app, admin, str(reader.id))
            await app.settle_events()

    monkeypatch.setattr(hub, "ready", ready_then_change)
    url = f"{server.url}/api/v1/streams/probe_audit"
    async with sse.stream("GET", url, headers=reader.headers) as response:
        if response.status_code == 200:
            stream = EventStream(response)
            assert (await stream.next()).event == "connected"
            await post_item(app, admin, 1)  # published after the change: never sent
            first = await stream.next_event(within=5.0)
            assert first.event == "reconnect", first.data
            assert first.json() == {"reason": reason}
        else:
            assert response.status_code in (401, 403)
    assert changed
