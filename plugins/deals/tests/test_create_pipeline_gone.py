"""A pipeline deleted while a deal is created into it: a problem that names the
pipeline, not the foreign key's generic "a concurrent change" 409.

Deterministic: a validation hook (it runs after the stage is read, before the deal
is written) deletes the pipeline in the create's own transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Deal, Pipeline, Stage
from deals_kit import API, Deals, deals_with
from factories import rows
from sqlalchemy import delete
from sqlmodel import col

from crm2_hookspecs import PluginManifest, hookimpl

GONE = "urn:crm2:problem:deals-pipeline-gone"


class DeletesPipeline:
    manifest = PluginManifest(name="deletespipe", title="Deletes (test)", depends=("deals",))

    def __init__(self) -> None:
        self.pipeline_id: uuid.UUID | None = None

    @hookimpl
    async def crm2_deals_validate_change(self, change: Any, session: Any) -> str | None:
        if change.action == "create" and self.pipeline_id is not None:
            gone = self.pipeline_id
            await session.execute(delete(Stage).where(col(Stage.pipeline_id) == gone))
            await session.execute(delete(Pipeline).where(col(Pipeline.id) == gone))
        return None


async def _setup(crm2_app_factory: Any) -> tuple[Deals, DeletesPipeline, Any, Any, Any]:
    rule = DeletesPipeline()
    deals, admin, client = await deals_with(crm2_app_factory, rule)
    body = {"name": "Doomed", "stages": [{"name": "Open", "probability": 10, "kind": "open"}]}
    made = await deals.client.post(f"{API}/pipelines", json=body, headers=admin.headers)
    assert made.status_code == 201, made.text
    rule.pipeline_id = uuid.UUID(made.json()["id"])
    return deals, rule, admin, client, made.json()


def _names_the_pipeline(response: Any, pipeline_id: uuid.UUID) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == GONE, problem
    assert str(pipeline_id) in problem["detail"], problem


async def test_a_pipeline_deleted_during_a_create_into_its_stage_is_named(
    crm2_app_factory: Any,
) -> None:
    deals, rule, admin, client, pipeline = await _setup(crm2_app_factory)
    assert rule.pipeline_id is not None
    body = {"title": "Late", "client_id": client["id"], "stage_id": pipeline["stages"][0]["id"]}
    answer = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    _names_the_pipeline(answer, rule.pipeline_id)
    assert await rows(deals.app, Deal) == []


async def test_a_pipeline_deleted_during_a_create_at_its_start_is_named(
    crm2_app_factory: Any,
) -> None:
    deals, rule, admin, client, pipeline = await _setup(crm2_app_factory)
    assert rule.pipeline_id is not None
    body = {"title": "Late", "client_id": client["id"], "pipeline_id": pipeline["id"]}
    answer = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    assert answer.status_code in (404, 409), answer.text
    if answer.status_code == 409:
        _names_the_pipeline(answer, rule.pipeline_id)
    else:
        assert str(rule.pipeline_id) in answer.json()["detail"], answer.text
    assert await rows(deals.app, Deal) == []
