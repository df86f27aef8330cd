"""The payments list uses indexes: at 50k payments PostgreSQL plans no scan and no sort.

Every sort of the list, for a manager (all payments) and an agent (their own), on
the first page and on the page after a cursor. The default, ``-created_at``, needs
``(created_at, id)`` and ``(owner_id, created_at, id)``; ``due_date`` is nullable,
and its NULLs-last order is the index's own, so both directions read the index.

The SQL explained is what the API really sends, captured while the list answers and
run again under ``EXPLAIN`` with its parameters (as deals' ``test_query_plans``).
"""

from __future__ import annotations

from typing import Any

import pytest
from crm2_payments.seed_load import seed_load
from payments_kit import API, Payments
from sqlalchemy import event, text

PAYMENTS = 50_000


async def captured_sql(payments: Payments, headers: dict[str, str], params: dict[str, Any]) -> Any:
    """The page and ``(statement, parameters)`` of the list's query on payments_payment."""
    seen: list[Any] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM payments_payment" in statement and statement.lstrip().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = payments.app.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        r = await payments.client.get(f"{API}/payments", params=params, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert r.status_code == 200, r.text
    assert len(seen) == 1, seen
    return r.json(), seen[0]


async def plan_of(payments: Payments, statement: str, parameters: Any) -> str:
    async with payments.app.context.engine.connect() as conn:
        result = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(row[0] for row in result)


async def test_payment_lists_use_indexes_at_50k_rows(payments: Payments) -> None:
    if payments.app.context.settings.is_sqlite:
        pytest.skip("query plans are asserted on PostgreSQL")
    manager = await payments.user("manager")
    agents = [await payments.user("agent") for _ in range(8)]  # an agent sees an eighth
    await seed_load(payments.app.context, payments=PAYMENTS)
    async with payments.app.context.engine.connect() as conn:
        await conn.execute(text("ANALYZE payments_payment"))
        await conn.commit()

    plans: dict[str, str] = {}
    for who, headers in (("manager", manager.headers), ("agent", agents[0].headers)):
        for sort in ("-created_at", "created_at", "due_date", "-due_date"):
            params: dict[str, Any] = {"limit": 50, "sort": sort}
            page, first = await captured_sql(payments, headers, params)
            assert page["next_cursor"], (who, sort)
            plans[f"{who} {sort}"] = await plan_of(payments, *first)
            # the second page: the keyset predicate must still start at the cursor
            params["cursor"] = page["next_cursor"]
            _, second = await captured_sql(payments, headers, params)
            plans[f"{who} {sort} page 2"] = await plan_of(payments, *second)

    scans = {name: plan for name, plan in plans.items() if "Seq Scan" in plan or "Sort" in plan}
    assert not scans, scans
