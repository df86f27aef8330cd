"""A background import batch PostgreSQL aborts as a deadlock (or serialization failure)
is written again; one aborted again and again ends the job ``failed`` saying so, not
"an internal error".

The abort is PostgreSQL's own ``40P01``, raised (by a validation hook, in the batch's
transaction) while the batch hands a client over. PostgreSQL only: SQLite raises no
such error.
"""

from __future__ import annotations

from typing import Any

import pytest
from crm2_deals.models import Client, Deal
from deals_kit import API, Deals, deals_with
from factories import get_row, make_client, make_deal
from sqlalchemy import text

from crm2_hookspecs import PluginManifest, hookimpl

DEADLOCK = text(
    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected (test)' USING ERRCODE = '40P01'; END $$"
)


class AbortsWrites:
    """Aborts the batch's transaction at the hand-over of a deal, ``aborts`` times after
    the job's check pass (its first call)."""

    manifest = PluginManifest(name="abortswrites", title="Aborts (test)", depends=("deals",))

    def __init__(self, aborts: int) -> None:
        self.calls, self.aborts = 0, aborts

    @hookimpl
    async def crm2_deals_validate_change(self, change: Any, session: Any) -> str | None:
        self.calls += 1
        if 1 < self.calls <= 1 + self.aborts:
            await session.execute(DEADLOCK)
        return None


async def _job(crm2_app_factory: Any, aborts: int) -> tuple[dict[str, Any], Deals, Any, Any]:
    rule = AbortsWrites(aborts)
    deals, admin, _ = await deals_with(crm2_app_factory, rule)
    if deals.app.context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite raises no deadlock or serialization failure")
    agent, heir = await deals.user("agent"), await deals.user("agent")
    client = await make_client(deals.app, agent.id, tax_id="T-1")
    deal = await make_deal(deals.app, client)
    content = f"name,tax_id,owner_email\nHanded,T-1,{heir.email}\n".encode()
    files = {"file": ("clients.csv", content, "text/csv")}
    accepted = await deals.client.post(
        f"{API}/clients/import", params={"background": "true"}, files=files,
        headers=admin.headers,
    )  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    await deals.app.settle_jobs()
    answer = await deals.client.get(accepted.headers["location"], headers=admin.headers)
    assert answer.status_code == 200, answer.text
    return answer.json(), deals, (client.id, deal.id), heir


async def test_a_batch_aborted_as_a_deadlock_is_written_again(crm2_app_factory: Any) -> None:
    job, deals, (client_id, deal_id), heir = await _job(crm2_app_factory, aborts=1)
    assert (job["status"], job["updated"], job["processed"]) == ("done", 1, 1), job
    assert (await get_row(deals.app, Client, client_id)).owner_id == heir.id
    assert (await get_row(deals.app, Deal, deal_id)).owner_id == heir.id


async def test_a_batch_aborted_again_and_again_fails_the_job_saying_why(
    crm2_app_factory: Any,
) -> None:
    job, deals, (client_id, _), heir = await _job(crm2_app_factory, aborts=100)
    assert job["status"] == "failed", job
    assert "concurrent changes" in job["detail"] and "internal" not in job["detail"], job
    assert job["updated"] == 0, job
    assert (await get_row(deals.app, Client, client_id)).owner_id != heir.id
