"""``GET /api/v1/plugins``: what is installed, listed from what the application was built with."""

from __future__ import annotations

import pytest

from crm2_core.testing import Crm2TestApp


async def test_plugins_lists_the_core_and_auth_as_builtin_and_ok(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    response = await crm2.client.get("/api/v1/plugins", headers=admin)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    rows = {row["name"]: row for row in response.json()}
    assert rows["auth"] == {
        "name": "auth",
        "title": "Authentication and authorization",
        "version": rows["auth"]["version"],
        "enabled": True,
        "builtin": True,
        "depends": ["core"],
        "status": "ok",
    }
    assert rows["core"]["builtin"] is True


async def test_plugins_builds_the_listing_once_per_application(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing is fixed when the application is built: no per-request rebuild."""
    admin = await crm2.login("admin")
    first = await crm2.client.get("/api/v1/plugins", headers=admin)
    calls: list[None] = []
    statuses = crm2.context.plugins.statuses

    def counted() -> object:
        calls.append(None)
        return statuses()

    monkeypatch.setattr(crm2.context.plugins, "statuses", counted)
    second = await crm2.client.get("/api/v1/plugins", headers=admin)

    assert second.content == first.content
    assert calls == []
