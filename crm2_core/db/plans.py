"""Query plans for statements run against tables that grow while they run.

asyncpg prepares every statement, and after five executions PostgreSQL may switch
a prepared statement to a *generic* plan: one made without the parameters' values,
costed on the statistics of the moment. Made while a table is (nearly) empty — a
fresh or truncated database at the start of a large import — that plan can be a
sequential scan or a hash join that stays chosen while the table grows to tens of
thousands of rows, so each batch costs more than the one before (an import's e-mail
look-up, the handlers' claim). ``plan_for_growing_tables`` asks for a plan per
execution, made with the values, for the rest of the transaction only.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def plan_for_growing_tables(session: AsyncSession) -> None:
    """Plan each statement of this transaction for its own values (PostgreSQL; else nothing).

    Call it first in the transaction: ``SET LOCAL`` ends with the transaction, so
    nothing leaks to the pooled connection's next user.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_CUSTOM_PLANS)
