"""Hello's business rules: decides and raises, never commits (the request does)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import PageParams, Records, acting_user
from crm2_hello.models import Greeting
from crm2_hello.repository import greetings
from crm2_hello.schemas import GreetingCreate, GreetingUpdate
from crm2_hookspecs import Principal

# Everyone with hello:read sees every greeting (no record rules).
GREETINGS = Records(greetings)
get_greeting = GREETINGS.get


async def create_greeting(
    session: AsyncSession, principal: Principal, data: GreetingCreate, word: str
) -> Greeting:
    greeting = Greeting(
        name=data.name, message=f"{word}, {data.name}!", owner_id=acting_user(principal)
    )
    return await greetings.add(session, greeting)


async def list_greetings(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[Greeting], str | None]:
    return await greetings.page(session, greetings.visible(GREETINGS.visibility(principal)), page)


async def update_greeting(
    session: AsyncSession,
    principal: Principal,
    greeting_id: uuid.UUID,
    if_match: str,
    data: GreetingUpdate,
) -> Greeting:
    current = await GREETINGS.for_update(session, principal, greeting_id, if_match)  # 412 if stale
    await greetings.update(session, current, {"message": data.message}, only_changed=False)
    return current
