"""``crm2 seed NAME``: every plugin's part of a data set, in one transaction.

Each plugin's part opens its own sessions and commits them (a part is written as
any other code writes). Run as they are, a failure half-way through left what the
earlier parts and commits had written: half a data set, which a second run then
skipped as "already loaded". Here every session of the run is bound to one
connection inside one transaction, and a session's commit only releases a
savepoint: the set lands whole at the end, or not at all.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import async_sessionmaker

from crm2_core.context import AppContext
from crm2_core.db.engine import app_session_class


@asynccontextmanager
async def one_transaction(context: AppContext) -> AsyncIterator[AppContext]:
    """A copy of ``context`` whose sessions all share one transaction, committed on a
    clean exit and rolled back when the block raises.

    A copy, with a session class of its own: the application's relay and other
    background work keep their own connections (one connection serves one operation at
    a time), and no "after commit" listener runs for a commit that is only a savepoint.
    Events written meanwhile wait in the outbox until the relay's next pass.
    """
    async with context.engine.connect() as connection, connection.begin():
        session_class = app_session_class()
        yield dataclasses.replace(
            context,
            session_factory=async_sessionmaker(
                connection,
                expire_on_commit=False,
                autoflush=False,
                sync_session_class=session_class,
                join_transaction_mode="create_savepoint",
            ),
            read_session_factory=None,
            session_class=session_class,
        )


async def load_seed(context: AppContext, name: str) -> list[str]:
    """The plugins that provide data set ``name``, once every part is loaded (all in one
    transaction: when one raises, nothing of the set stays)."""
    from crm2_core.auth.plugin import sync_permissions

    await sync_permissions(context)
    loaded = []
    async with one_transaction(context) as seeding:
        for plugin, result in context.plugins.call("crm2_seed", name=name, context=seeding):
            if inspect.isawaitable(result):
                await result
            loaded.append(plugin)
    return loaded
