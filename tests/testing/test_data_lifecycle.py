"""The testing kit's data lifecycle: rows written by data migrations survive between tests."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from crm2_core.db.engine import create_engine
from crm2_core.settings import Settings
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.lifecycle import migrated_rows, reset_tables


async def _pipelines(app: Crm2TestApp, headers: dict[str, str]) -> list[str]:
    response = await app.client.get("/api/v1/deals/pipelines", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(p["name"] for p in response.json()["items"])


@pytest.mark.crm2_plugins("deals")
async def test_data_migration_rows_are_put_back_after_a_test_changed_them(
    crm2: Crm2TestApp, crm2_settings: Settings
) -> None:
    admin = await crm2.login("admin")
    before = await _pipelines(crm2, admin)
    assert "New business" in before  # the data migration's default pipelines
    async with crm2.context.engine.begin() as conn:
        await conn.execute(text("DELETE FROM deals_lost_reason"))
        await conn.execute(text("UPDATE deals_pipeline SET name = name || ' (renamed)'"))
    assert "New business" not in await _pipelines(crm2, admin)

    engine = create_engine(crm2_settings)
    try:
        await reset_tables(engine, crm2_settings.database_url)  # what the kit does after a test
    finally:
        await engine.dispose()

    assert await _pipelines(crm2, admin) == before
    async with crm2.context.engine.connect() as conn:
        reasons = (await conn.execute(text("SELECT count(*) FROM deals_lost_reason"))).scalar()
        users = (await conn.execute(text("SELECT count(*) FROM auth_user"))).scalar()
    assert reasons and reasons > 0
    assert users == 0  # the test's own rows are gone


@pytest.mark.crm2_plugins("deals")
@pytest.mark.parametrize("turn", [1, 2, 3])
async def test_every_test_starts_with_the_default_pipelines(crm2: Crm2TestApp, turn: int) -> None:
    """Three tests in a row, each of which would have been the 'second test' before."""
    admin = await crm2.login("admin")
    names = await _pipelines(crm2, admin)
    assert "New business" in names, f"turn {turn}: {names}"
    client = await crm2.client.post(
        "/api/v1/deals/clients", json={"kind": "person", "name": "Ada"}, headers=admin
    )
    assert client.status_code == 201, client.text
    deal = await crm2.client.post(
        "/api/v1/deals/deals",
        json={
            "title": "Deal",
            "client_id": client.json()["id"],
            "value": "1.00",
            "currency": "EUR",
        },
        headers=admin,
    )
    assert deal.status_code == 201, deal.text


@pytest.mark.crm2_plugins("deals")
async def test_only_migration_rows_are_remembered(
    crm2: Crm2TestApp, crm2_settings: Settings
) -> None:
    kept: dict[str, Any] = migrated_rows(crm2_settings.database_url)
    assert kept.get("deals_pipeline"), sorted(kept)
    assert not kept.get("deals_deal") and not kept.get("auth_user")
