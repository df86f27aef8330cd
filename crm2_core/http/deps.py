"""Dependency aliases every route uses: the context and the request's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.context import AppContext


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: commit when the route returns, roll back when it raises."""
    async with get_context(request).session_factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


ContextDep = Annotated[AppContext, Depends(get_context)]
# scope="function": commit before the response is sent, so a failed commit
# becomes an error response instead of a success the client wrongly trusts.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
