"""A client deleted while a deal is created on it: a problem that names the client,
not the foreign key's generic "a concurrent change" 409 (as ``deals-pipeline-gone``
names a pipeline).

Deterministic: a validation hook (it runs after the client is read, before the deal
is written) deletes the client in the create's own transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Client, Deal
from deals_kit import API, Deals, deals_with
from factories import rows
from sqlalchemy import delete
from sqlmodel import col

from crm2_hookspecs import PluginManifest, hookimpl

GONE = "urn:crm2:problem:deals-client-gone"


class DeletesClient:
    manifest = PluginManifest(name="deletesclient", title="Deletes (test)", depends=("deals",))

    def __init__(self) -> None:
        self.client_id: uuid.UUID | None = None

    @hookimpl
    async def crm2_deals_validate_change(self, change: Any, session: Any) -> str | None:
        if change.action == "create" and self.client_id is not None:
            await session.execute(delete(Client).where(col(Client.id) == self.client_id))
        return None


async def _setup(crm2_app_factory: Any) -> tuple[Deals, DeletesClient, Any]:
    rule = DeletesClient()
    deals, admin, client = await deals_with(crm2_app_factory, rule)
    rule.client_id = uuid.UUID(client["id"])
    return deals, rule, admin


async def test_a_client_deleted_during_a_create_into_a_stage_is_named(
    crm2_app_factory: Any,
) -> None:
    deals, rule, admin = await _setup(crm2_app_factory)
    pipeline = await deals.pipeline(admin.headers)
    stage = deals.stage(pipeline, "Qualified")
    body = {"title": "Late", "client_id": str(rule.client_id), "stage_id": stage["id"]}
    answer = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == GONE, problem
    assert str(rule.client_id) in problem["detail"], problem
    assert problem["client"] == {"id": str(rule.client_id)}, problem
    assert await rows(deals.app, Deal) == []


async def test_a_client_deleted_during_a_create_at_the_start_is_named(
    crm2_app_factory: Any,
) -> None:
    """Without a stage the create reads the client again under its lock (PostgreSQL:
    then 404 naming it) or writes and fails on the key (409 naming it)."""
    deals, rule, admin = await _setup(crm2_app_factory)
    body = {"title": "Late", "client_id": str(rule.client_id)}
    answer = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    assert answer.status_code in (404, 409), answer.text
    problem = answer.json()
    assert problem["type"] in (GONE, "urn:crm2:problem:deals-client-not-found"), problem
    assert str(rule.client_id) in problem["detail"], problem
    assert await rows(deals.app, Deal) == []
