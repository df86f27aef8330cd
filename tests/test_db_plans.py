"""``plan_for_growing_tables``: custom plans for one transaction, on PostgreSQL only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from crm2_core.db.plans import plan_for_growing_tables


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
