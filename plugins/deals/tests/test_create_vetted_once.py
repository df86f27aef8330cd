"""A create that begins again (its start stopped being open meanwhile) asks
``crm2_deals_validate_change`` once when what it writes is what was vetted: a plugin
counting, charging or notifying on the hook saw one request as two. When it begins
again in another stage, the hook is asked again: it sees what is finally stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from crm2_deals.repository import pipelines as pipelines_repo
from crm2_deals.repository.pipelines import StageRef, Start
from crm2_deals.service import deals as service
from deals_kit import API, deals_with

from crm2_hookspecs import PluginManifest, hookimpl


class CountsCreates:
    manifest = PluginManifest(name="countscreates", title="Counts (test)", depends=("deals",))

    def __init__(self) -> None:
        self.creates = 0
        self.seen: list[Any] = []

    @hookimpl
    def crm2_deals_validate_change(self, change: Any) -> str | None:
        if change.action == "create":
            self.creates += 1
            self.seen.append(change)
        return None


async def test_a_create_that_begins_again_is_validated_once(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CountsCreates()
    deals, admin, client = await deals_with(crm2_app_factory, counter)

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


async def test_a_create_that_begins_again_elsewhere_is_validated_there(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start was read (open), then made won before the deal was written: the
    create begins again in the next open stage, and the hook sees that stage, the one
    stored (a plugin refusing deals there was never asked)."""
    counter = CountsCreates()
    deals, admin, client = await deals_with(crm2_app_factory, counter)
    if deals.app.context.engine.dialect.name != "postgresql":
        return  # SQLite's writers take turns: the start is read under the write lock
    pipeline = await deals.pipeline(admin.headers)
    first = pipeline["stages"][0]
    retyped = await deals.retype_start(admin.headers, pipeline)
    assert retyped.status_code == 200, retyped.text

    real = pipelines_repo.pipeline_with_first_open_stage
    stale = StageRef(uuid.UUID(first["id"]), uuid.UUID(pipeline["id"]), first["name"], "open")
    reads: list[int] = []

    async def read_before_the_retype(*args: Any, **kwargs: Any) -> Start | None:
        start = await real(*args, **kwargs)
        reads.append(1)
        if len(reads) == 1 and start is not None:  # as read just before the retype
            return start._replace(stage=stale)
        return start

    monkeypatch.setattr(pipelines_repo, "pipeline_with_first_open_stage", read_before_the_retype)
    body = {"title": "Moved", "client_id": client["id"], "value": "1.00", "currency": "EUR"}
    created = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)

    assert created.status_code == 201, created.text
    deal = created.json()
    assert len(reads) >= 2 and deal["stage_id"] != first["id"]  # it began again elsewhere
    assert counter.creates == 2
    last = counter.seen[-1]
    assert last.to_stage["id"] == deal["stage_id"] and last.after["stage_id"] == deal["stage_id"]
    assert str(last.deal_id) == deal["id"] == last.after["id"]
