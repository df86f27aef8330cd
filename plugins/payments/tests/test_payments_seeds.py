"""``crm2 seed demo``: schedules, payments, commissions and one reconciliation for the demo
policies; without deals, payments entered by hand. A second run adds nothing."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from crm2_payments.models import Commission, Payment, Schedule, Statement, StatementLine
from payments_kit import Payments
from sqlalchemy import event, func, select


async def seed_demo(app: Any) -> None:
    """What ``crm2 seed demo`` does: every enabled plugin's seed, in dependency order."""
    for _plugin, result in app.context.plugins.call("crm2_seed", name="demo", context=app.context):
        if inspect.isawaitable(result):
            await result


async def counts(app: Any) -> dict[str, int]:
    async with app.context.session_factory() as session:
        return {
            model.__name__: (
                await session.execute(select(func.count()).select_from(model))
            ).scalar_one()
            for model in (Schedule, Payment, Commission, Statement, StatementLine)
        }


async def test_demo_policies_get_schedules_payments_and_a_reconciliation(
    crm2_app_factory: Any, crm2_settings: Any
) -> None:
    if not crm2_settings.database_url.startswith("sqlite"):
        # deals' own demo seed is most of this test's time (~50 s on PostgreSQL on the shared
        # machine); payments' seed runs on PostgreSQL in the test below
        pytest.skip("deals' demo data: SQLite only, to keep the suite in its time budget")
    app = await crm2_app_factory(plugins=["deals", "payments"])
    admin = await app.user("admin")
    pipelines = await app.client.get("/api/v1/deals/pipelines", headers=admin.headers)
    if not pipelines.json()["items"]:  # the test kit empties the data migration's rows
        stages = [
            {"name": "New", "probability": 10},
            {"name": "Offer", "probability": 50},
            {"name": "Won", "probability": 100, "kind": "won"},
            {"name": "Lost", "probability": 0, "kind": "lost"},
        ]
        body = {"name": "Sales", "is_default": True, "stages": stages}
        made = await app.client.post("/api/v1/deals/pipelines", json=body, headers=admin.headers)
        assert made.status_code == 201, made.text
    await seed_demo(app)
    first = await counts(app)
    assert first["Schedule"] > 10 and first["Payment"] >= first["Schedule"]
    assert first["Commission"] > 0
    assert first["Statement"] == 1 and first["StatementLine"] == 3
    async with app.context.session_factory() as session:
        matched = (
            select(func.count()).select_from(StatementLine).where(StatementLine.status == "matched")
        )
        assert (await session.execute(matched)).scalar_one() == 2
        paid = select(func.count()).select_from(Payment).where(Payment.status == "paid")
        assert (await session.execute(paid)).scalar_one() > 0
    await seed_demo(app)
    assert await counts(app) == first


async def test_demo_without_deals_gives_agents_payments(payments: Payments) -> None:
    agent = await payments.user("agent")
    await seed_demo(payments.app)
    mine = await payments.client.get("/api/v1/payments/payments", headers=agent.headers)
    assert len(mine.json()["items"]) == 3
    await seed_demo(payments.app)
    assert (await counts(payments.app))["Payment"] == 3


async def test_the_load_data_set_is_listed_and_exported(payments: Payments) -> None:
    from crm2_payments.seed_load import seed_load

    manager = await payments.user("manager")
    await payments.user("agent")
    assert await seed_load(payments.app.context, payments=1_200) == {"payments": 1_200}
    page = await payments.client.get(
        "/api/v1/payments/payments?limit=100&currency=EUR", headers=manager.headers
    )
    assert len(page.json()["items"]) == 100 and page.json()["next_cursor"]
    export = await payments.client.get(
        "/api/v1/payments/payments/export.csv", headers=manager.headers
    )
    assert export.text.count("\n") == 1_201  # the header and every row, over two pages


async def test_the_load_data_set_is_written_in_one_statement_per_chunk(
    payments: Payments,
) -> None:
    """The ORM's bulk insert split each chunk wherever a row's None values differed (one row
    in three is paid): thousands of round trips per 5,000 rows, minutes for the 50k rows of
    the query-plans test under load. One executemany per chunk now."""
    from crm2_payments.seed_load import CHUNK, seed_load

    await payments.user("agent")
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("INSERT INTO payments_payment"):
            inserts.append(statement)

    engine = payments.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        written = await seed_load(payments.app.context, payments=CHUNK + 10)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert written == {"payments": CHUNK + 10} and len(inserts) == 2, len(inserts)
    async with payments.app.context.session_factory() as session:
        paid = select(func.count()).where(Payment.paid_at.is_not(None))  # type: ignore[union-attr]
        assert (await session.execute(paid)).scalar_one() == (CHUNK + 10 + 2) // 3
