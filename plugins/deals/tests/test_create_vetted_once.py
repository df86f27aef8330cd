"""A create that begins again (its start stopped being open meanwhile) asks
``crm2_deals_validate_change`` once: a plugin counting, charging or notifying on the
hook saw one request as two."""

from __future__ import annotations

from typing import Any

import pytest
from crm2_deals.service import deals as service
from deals_kit import API, Deals, seed_defaults

from crm2_core.testing import Crm2TestApp
from crm2_hookspecs import PluginManifest, hookimpl


class CountsCreates:
    manifest = PluginManifest(name="countscreates", title="Counts (test)", depends=("deals",))

    def __init__(self) -> None:
        self.creates = 0

    @hookimpl
    def crm2_deals_validate_change(self, change: Any) -> str | None:
        if change.action == "create":
            self.creates += 1
        return None


async def test_a_create_that_begins_again_is_validated_once(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CountsCreates()
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["deals", "countscreates"], extra_plugins=(counter,)
    )
    await seed_defaults(app)
    deals = Deals(app)
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)

    real = service._insert_at_start
    calls = []

    async def moved_once(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        if len(calls) == 1:
            return False  # the start was made won meanwhile: the create begins again
        return await real(*args, **kwargs)

    monkeypatch.setattr(service, "_insert_at_start", moved_once)
    body = {"title": "Once", "client_id": client["id"], "value": "1.00", "currency": "EUR"}
    created = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)

    assert created.status_code == 201, created.text
    assert len(calls) == 2  # it did begin again
    assert counter.creates == 1
