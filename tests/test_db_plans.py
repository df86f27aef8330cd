"""``plan_for_growing_tables``: custom plans for one transaction, on PostgreSQL only."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from crm2_core.db.plans import analyze_grown_tables, plan_for_growing_tables


async def test_custom_plans_hold_for_the_transaction_only(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory()
    async with app.context.session_factory() as session:
        await plan_for_growing_tables(session)  # SQLite: nothing to set, no error
        if session.get_bind().dialect.name != "postgresql":
            return
        show = text("SHOW plan_cache_mode")
        assert (await session.execute(show)).scalar() == "force_custom_plan"
        await session.commit()
        # the next transaction (on the same pooled connection) plans as configured
        assert (await session.execute(show)).scalar() == "auto"


async def test_tables_that_doubled_since_their_statistics_are_analyzed(
    crm2_app_factory: Any,
) -> None:
    app = await crm2_app_factory()
    factory = app.context.session_factory
    async with factory() as session:
        postgresql = session.get_bind().dialect.name == "postgresql"
        if postgresql:
            await session.execute(text("CREATE TABLE plans_probe (n int)"))
            await session.execute(text("INSERT INTO plans_probe SELECT generate_series(1, 50)"))
            await session.commit()
    if not postgresql:
        assert await analyze_grown_tables(factory) == []  # SQLite: nothing to do
        return
    try:
        await _stats_flushed(factory)
        assert not any("plans_probe" in t for t in await analyze_grown_tables(factory, least=100))
        async with factory() as session:
            await session.execute(text("INSERT INTO plans_probe SELECT generate_series(1, 500)"))
            await session.execute(text("SELECT pg_stat_force_next_flush()"))
            await session.commit()
        assert await _analyzed_within(factory, seconds=10)
        async with factory() as session:
            analyzed = text("SELECT reltuples FROM pg_class WHERE relname = 'plans_probe'")
            assert (await session.execute(analyzed)).scalar() == 550
        # analyzed now: it has not doubled since
        assert not any("plans_probe" in t for t in await analyze_grown_tables(factory, 100))
    finally:
        async with factory() as session:
            await session.execute(text("DROP TABLE plans_probe"))
            await session.commit()


async def _stats_flushed(factory: Any) -> None:
    """The table counters as written so far (a backend reports them at most once a second)."""
    async with factory() as session:
        await session.execute(text("SELECT pg_stat_force_next_flush()"))
        await session.commit()
    await asyncio.sleep(1.1)


async def _analyzed_within(factory: Any, seconds: float) -> bool:
    """plans_probe analyzed once its counters reach the statistics (a busy machine: later)."""
    for _ in range(int(seconds / 0.5)):
        if any(t.endswith(".plans_probe") for t in await analyze_grown_tables(factory, 100)):
            return True
        await asyncio.sleep(0.5)
    return False
