"""A long export stops when its caller loses a right mid-way (served on a real socket:
the client sees the transfer cut off, not a shorter file that looks complete)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from crm2_deals.service import clients as clients_service
from deals_kit import API, Deals, User

from crm2_core.testing.sse import serving

PAGE = 2
CLIENTS = 7


async def _user_disabled(deals: Deals, admin: User, user: User) -> None:
    path = f"/api/v1/auth/users/{user.id}"
    etag = (await deals.client.get(path, headers=admin.headers)).headers["ETag"]
    response = await deals.client.patch(
        path, json={"is_active": False}, headers={**admin.headers, "If-Match": etag}
    )
    assert response.status_code == 200, response.text


async def _export_taken_away(deals: Deals, admin: User, user: User) -> None:
    path = "/api/v1/auth/roles/manager"
    role = await deals.client.get(path, headers=admin.headers)
    kept = [p for p in role.json()["permissions"] if p != "deals:export"]
    response = await deals.client.patch(
        path,
        json={"permissions": kept},
        headers={**admin.headers, "If-Match": role.headers["ETag"]},
    )
    assert response.status_code == 200, response.text


async def _nothing(deals: Deals, admin: User, user: User) -> None:
    return None


Change = Callable[[Deals, User, User], Awaitable[None]]


@pytest.mark.parametrize(
    ("change", "cut"),
    [(_user_disabled, True), (_export_taken_away, True), (_nothing, False)],
    ids=["user-disabled", "permission-removed", "unchanged"],
)
async def test_an_export_stops_at_the_page_after_a_right_is_removed(
    deals: Deals, monkeypatch: Any, change: Change, cut: bool
) -> None:
    admin = await deals.user("admin")
    manager = await deals.user("manager")
    for i in range(CLIENTS):
        await deals.create_client(admin.headers, name=f"Client {i}")
    monkeypatch.setattr(clients_service, "EXPORT_PAGE_SIZE", PAGE)
    # The check before the second page waits until the test has changed the manager's
    # rights (outside any session: on SQLite a held transaction would keep the change out).
    changed = asyncio.Event()
    authenticator = deals.app.context.authenticator
    recheck = authenticator.recheck
    checks = 0

    async def paused(principal: Any) -> Any:
        nonlocal checks
        checks += 1
        if checks == 2:
            await asyncio.wait_for(changed.wait(), 10)
        return await recheck(principal)

    monkeypatch.setattr(authenticator, "recheck", paused)
    received = b""
    async with serving(deals.app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        url_path = f"{API}/clients/export?sort=name"
        async with http.stream("GET", url_path, headers=manager.headers) as response:
            assert response.status_code == 200
            chunks = response.aiter_raw()
            while received.count(b"\n") < 1 + PAGE:  # the header and the first page
                received += await anext(chunks)
            await change(deals, admin, manager)
            changed.set()
            if cut:
                with pytest.raises(httpx.RemoteProtocolError):
                    async for chunk in chunks:
                        received += chunk
            else:
                async for chunk in chunks:
                    received += chunk
    lines = received.decode().splitlines()
    assert len(lines) == (1 + PAGE if cut else 1 + CLIENTS)
