"""The OpenAPI document a frontend generates its client from."""

from __future__ import annotations

from crm2_core.testing import Crm2TestApp


async def test_operation_ids_are_short_stable_and_unique(crm2: Crm2TestApp) -> None:
    document = (await crm2.client.get("/openapi.json")).json()
    operations = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(operations) == len(set(operations))
    assert {"auth_login", "auth_refresh", "auth_me", "health_healthz"} <= set(operations)
