"""A repository seen through a plugin's record rules: what services call with the principal.

Services take the principal, repositories the visibility; ``Records`` is the
one place that turns the first into the second for the generic operations::

    CLIENTS = Records(repo.clients, RULES)
    client = await CLIENTS.get(session, principal, client_id)          # 404 if not visible
    row = await CLIENTS.for_update(session, principal, client_id, if_match)   # + 412 if stale
    list_clients = CLIENTS.lister(repo.list_clients)   # the service's list, for list_route
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar, overload

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.db.pagination import PageParams
from crm2_core.http.etag import check_version
from crm2_core.kit.repository import Repository
from crm2_core.kit.visibility import RecordRules, Visibility
from crm2_hookspecs import Principal

M = TypeVar("M")
R = TypeVar("R")  # a list's rows: entities, or plain rows (``Repository.page_rows``)
# A repository's list: ``(session, visibility, filters, sort, page) -> (rows, next cursor)``.
ListPage = Callable[
    [AsyncSession, Visibility, Any, str, PageParams], Awaitable[tuple[list[M], str | None]]
]


class Records(Generic[M]):
    def __init__(self, repository: Repository[M], rules: RecordRules | None = None) -> None:
        self.repository = repository
        self.rules = rules

    @overload
    def visibility(self, principal: Principal | None, session: AsyncSession) -> Visibility: ...
    @overload
    def visibility(
        self, principal: Principal | None, *, roles_only: Literal[True]
    ) -> Visibility: ...
    def visibility(
        self,
        principal: Principal | None,
        session: AsyncSession | None = None,
        *,
        roles_only: bool = False,
    ) -> Visibility:
        """No rules: every record is visible to whoever holds the route's permission.
        ``session``: its application's permission hooks may veto the rules' lift; a
        caller without one says ``roles_only=True`` (``RecordRules.visibility``)."""
        if session is None and not roles_only:
            raise TypeError(
                "Records.visibility needs the session (its application's permission hooks "
                "may deny the rules' lift): pass it, or say roles_only=True"
            )
        if self.rules is None:
            return Visibility.system()
        if session is None:
            return self.rules.visibility(principal, roles_only=True)
        return self.rules.in_session(session, principal)

    async def get(self, session: AsyncSession, principal: Principal, id: uuid.UUID) -> M:
        return await self.repository.get_or_404(session, self.visibility(principal, session), id)

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
        """Delete the visible record; a sent ``If-Match`` naming another version is 412."""
        row = await self.get(session, principal, id)
        await self.repository.delete_if_match(session, row, if_match)

    def lister(
        self, list_page: ListPage[R]
    ) -> Callable[..., Awaitable[tuple[list[R], str | None]]]:
        """The service's list: ``list_page`` through the caller's visibility, called as
        ``(session, principal, filters, sort, page)`` (by name too, as ``list_route`` does).
        """

        async def list_records(
            session: AsyncSession, principal: Principal, filters: Any, sort: str, page: PageParams
        ) -> tuple[list[R], str | None]:
            return await list_page(
                session, self.visibility(principal, session), filters, sort, page
            )

        list_records.__doc__ = list_page.__doc__
        return list_records
