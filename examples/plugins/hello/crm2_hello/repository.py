"""Every query hello runs."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import OrderKey, PageParams, paginate, update_versioned
from crm2_hello.models import Greeting


async def add(session: AsyncSession, greeting: Greeting) -> Greeting:
    session.add(greeting)
    await session.flush()
    return greeting


async def get(session: AsyncSession, greeting_id: uuid.UUID) -> Greeting | None:
    return await session.get(Greeting, greeting_id, populate_existing=True)


async def page(session: AsyncSession, params: PageParams) -> tuple[list[Greeting], str | None]:
    # The last key is unique, so the order is stable and the cursor exact.
    keys = [OrderKey(Greeting.created_at), OrderKey(Greeting.id)]
    return await paginate(session, select(Greeting), keys, params)


async def set_message(
    session: AsyncSession, greeting_id: uuid.UUID, expected_version: int, message: str
) -> None:
    """``UPDATE … WHERE version = :expected``: a concurrent writer that won makes this a 412."""
    await update_versioned(
        session, Greeting, Greeting.id == greeting_id, expected_version, {"message": message}
    )
