"""Query plans for statements run against tables that grow while they run.

asyncpg prepares every statement, and after five executions PostgreSQL may switch
a prepared statement to a *generic* plan: one made without the parameters' values,
costed on the statistics of the moment. Made while a table is (nearly) empty — a
fresh or truncated database at the start of a large import — that plan can be a
sequential scan or a hash join that stays chosen while the table grows to tens of
thousands of rows, so each batch costs more than the one before (an import's e-mail
look-up, the handlers' claim). ``plan_for_growing_tables`` asks for a plan per
execution, made with the values, for the rest of the transaction only.

A custom plan still needs statistics: a table never analyzed (new, or truncated)
gets the planner's default selectivities, by which one event type is as selective
as a batch's 200 subjects, so the claim read every event of the type per batch.
Autovacuum analyzes a table a minute or more after it grew, too late for an import
that fills it in seconds: ``analyze_grown_tables`` (called between batches) analyzes
the tables that more than doubled since their last statistics.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def plan_for_growing_tables(session: AsyncSession) -> None:
    """Plan each statement of this transaction for its own values (PostgreSQL; else nothing).

    Call it first in the transaction: ``SET LOCAL`` ends with the transaction, so
    nothing leaks to the pooled connection's next user.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_CUSTOM_PLANS)


# Changed more than they hold (so at least doubled: 1k, 2k, 4k … rows while an
# import fills them), and by at least GROWN_ROWS: a few ANALYZEs of a few ms per
# table for a 50k-row import, none for everyday writes.
GROWN_ROWS = 1_000
_GROWN = text(
    "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema()"
    " AND n_mod_since_analyze > greatest(:least, n_live_tup - n_mod_since_analyze)"
)


async def analyze_grown_tables(
    session_factory: async_sessionmaker[AsyncSession], least: int = GROWN_ROWS
) -> list[str]:
    """``ANALYZE`` each table of the schema that more than doubled since it was last
    analyzed (PostgreSQL; else nothing). Returns their names. A role that may not
    analyze a table (not its owner) leaves it to autovacuum."""
    async with session_factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            return []
        grown = [str(name) for name in (await session.execute(_GROWN, {"least": least})).scalars()]
        await session.rollback()
    analyzed = []
    for table in grown:
        async with session_factory() as session:
            try:
                await session.execute(text(f"ANALYZE {table}"))  # a quoted name, from the catalog
                await session.commit()
                analyzed.append(table)
            except DBAPIError as exc:
                log.info("could not analyze %s (%s); autovacuum will", table, exc.orig)
    return analyzed
