"""A repository seen through a plugin's record rules: what services call with the principal.

Services take the principal, repositories the visibility; ``Records`` is the
one place that turns the first into the second for the generic operations::

    CLIENTS = Records(repo.clients, RULES)
    client = await CLIENTS.get(session, principal, client_id)          # 404 if not visible
    row = await CLIENTS.for_update(session, principal, client_id, if_match)   # + 412 if stale
"""

from __future__ import annotations

import uuid
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.http.etag import check_version
from crm2_core.kit.repository import Repository
from crm2_core.kit.visibility import RecordRules, Visibility
from crm2_hookspecs import Principal

M = TypeVar("M")


class Records(Generic[M]):
    def __init__(self, repository: Repository[M], rules: RecordRules | None = None) -> None:
        self.repository = repository
        self.rules = rules

    def visibility(self, principal: Principal | None) -> Visibility:
        """No rules: every record is visible to whoever holds the route's permission."""
        return Visibility.system() if self.rules is None else self.rules.visibility(principal)

    async def get(self, session: AsyncSession, principal: Principal, id: uuid.UUID) -> M:
        return await self.repository.get_or_404(session, self.visibility(principal), id)

    async def for_update(
        self, session: AsyncSession, principal: Principal, id: uuid.UUID, if_match: str | None
    ) -> M:
        """The visible record, after checking ``If-Match`` against it (when sent)."""
        row = await self.get(session, principal, id)
        check_version(if_match, getattr(row, "version"))  # noqa: B009
        return row

    async def delete(
        self, session: AsyncSession, principal: Principal, id: uuid.UUID, if_match: str | None
    ) -> None:
        row = await self.for_update(session, principal, id, if_match)
        await self.repository.delete(session, getattr(row, "id"))  # noqa: B009
