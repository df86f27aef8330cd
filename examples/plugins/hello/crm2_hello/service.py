"""Hello's business rules: decides and raises, never commits (the request does)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import PageParams, check_version
from crm2_hello import repository as repo
from crm2_hello.config import HelloSettings
from crm2_hello.errors import GreetingNotFound
from crm2_hello.models import Greeting
from crm2_hello.schemas import GreetingCreate, GreetingUpdate
from crm2_hookspecs import Principal


class HelloService:
    """Built once per application by ``crm2_configure`` and kept on the context under its class."""

    def __init__(self, settings: HelloSettings) -> None:
        self.settings = settings

    async def create(
        self, session: AsyncSession, principal: Principal, data: GreetingCreate
    ) -> Greeting:
        greeting = Greeting(
            name=data.name,
            message=f"{self.settings.greeting}, {data.name}!",
            owner_id=principal.id,
        )
        return await repo.add(session, greeting)

    async def get(self, session: AsyncSession, greeting_id: uuid.UUID) -> Greeting:
        greeting = await repo.get(session, greeting_id)
        if greeting is None:
            raise GreetingNotFound(f"no greeting {greeting_id}")
        return greeting

    async def page(
        self, session: AsyncSession, params: PageParams
    ) -> tuple[list[Greeting], str | None]:
        return await repo.page(session, params)

    async def update(
        self, session: AsyncSession, greeting_id: uuid.UUID, if_match: str, data: GreetingUpdate
    ) -> Greeting:
        current = await self.get(session, greeting_id)
        expected = check_version(if_match, current.version)  # 412 when stale
        await repo.set_message(session, greeting_id, expected, data.message)
        return await self.get(session, greeting_id)
