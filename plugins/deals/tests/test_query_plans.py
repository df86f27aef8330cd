"""List queries use indexes: at 100k deals, PostgreSQL plans no sequential scan of deals_deal.

The SQL explained is what the API really sends: it is captured while the
list endpoint answers, then run again under ``EXPLAIN`` with its parameters.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from crm2_deals.models import Client, Pipeline, Stage
from crm2_deals.seed_load import seed_load
from deals_kit import API, Deals
from factories import rows
from sqlalchemy import event, text

from crm2_core.api import utcnow

DEALS = 100_000


async def captured_sql(deals: Deals, headers: dict[str, str], params: dict[str, Any]) -> list[Any]:
    """``(statement, parameters)`` of every query on deals_deal the list endpoint ran."""
    seen: list[Any] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM deals_deal" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = deals.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        r = await deals.client.get(f"{API}/deals", params=params, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert r.status_code == 200, r.text
    assert seen, f"no query on deals_deal for {params}"
    return [r.json(), seen]


async def plan_of(deals: Deals, statement: str, parameters: Any) -> str:
    async with deals.app.context.engine.connect() as conn:
        result = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(row[0] for row in result)


async def test_main_deal_lists_use_indexes_at_100k_rows(deals: Deals) -> None:
    if deals.app.context.settings.is_sqlite:
        pytest.skip("query plans are asserted on PostgreSQL")
    admin = await deals.user("admin")
    await seed_load(deals.app.context, clients=2_000, deals=DEALS, progress=False, seed=4)
    async with deals.app.context.engine.connect() as conn:
        await conn.execute(text("ANALYZE deals_deal"))
        await conn.execute(text("ANALYZE deals_client"))
        await conn.commit()
    client = (await rows(deals.app, Client))[0]
    pipeline = next(p for p in await rows(deals.app, Pipeline) if p.is_default)
    stage = next(
        s for s in await rows(deals.app, Stage, Stage.pipeline_id == pipeline.id) if s.position == 1
    )
    since = (utcnow() - timedelta(days=3)).isoformat()
    cases: dict[str, dict[str, Any]] = {
        "newest first": {},
        "owner": {"owner": str(client.owner_id)},
        "client": {"client": str(client.id)},
        "pipeline and stage": {"pipeline": str(pipeline.id), "stage": str(stage.id)},
        "pipeline": {"pipeline": str(pipeline.id)},
        "status won": {"status": "won"},
        "status open": {"status": "open"},
        "updated_since": {"updated_since": since},
    }
    plans: dict[str, str] = {}
    for name, params in cases.items():
        page, queries = await captured_sql(deals, admin.headers, {"limit": 50, **params})
        for statement, parameters in queries:
            plans[name] = await plan_of(deals, statement, parameters)
        if name == "owner":
            assert page["next_cursor"], "the owner has more than one page"
            second = {"limit": 50, "cursor": page["next_cursor"], **params}
            _, queries = await captured_sql(deals, admin.headers, second)
            for statement, parameters in queries:
                plans["owner, page 2"] = await plan_of(deals, statement, parameters)
    scans = {name: plan for name, plan in plans.items() if "Seq Scan on deals_deal" in plan}
    assert not scans, "\n\n".join(f"{name}:\n{plan}" for name, plan in scans.items())

    # A later page starts the index scan at the cursor (an Index Cond on the row value)
    # instead of reading and filtering out every row before it: page 2,000 costs what
    # page 2 does.
    first, _ = await captured_sql(deals, admin.headers, {"limit": 50, "status": "open"})
    later = {"limit": 50, "status": "open", "cursor": first["next_cursor"]}
    _, queries = await captured_sql(deals, admin.headers, later)
    plan = await plan_of(deals, *queries[-1])
    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert any("ROW(updated_at, id) <" in line for line in conditions), plan
    assert "Filter" not in plan, plan
