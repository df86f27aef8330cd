"""Dependency aliases routes use: the context, the request's transaction, a read connection."""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.context import AppContext
from crm2_core.db.direct import ReadConnection
from crm2_core.http.idempotency_tx import IDEMPOTENCY_STATE, IdempotentRequest


def context_of(request: Request) -> AppContext:
    """The application's context (``app.state.context``).

    Read from the state's own dict: ``request.app.state.context`` goes through
    Starlette's ``State.__getattr__`` after a failed attribute look-up, ~0.8 µs where
    this takes ~0.1, and a request asks several times (its guard, its principal, each
    permission check, the route).
    """
    state = request.scope["app"].state
    found = vars(state).get("_state")
    context: AppContext = found["context"] if found and "context" in found else state.context
    return context


# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain
# ``def`` dependency in its thread pool, a thread hand-off on every request.
async def get_context(request: Request) -> AppContext:
    return context_of(request)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncSession:
    """The request owns the transaction: commit when the route returns, roll back when it raises.

    Safe methods get a session without a transaction on PostgreSQL (see
    ``create_read_session_factory``): a GET must not write. A POST with an
    ``Idempotency-Key`` gets the transaction that claimed the key; the middleware
    commits it together with the stored response (``idempotency_tx``).

    Not a ``yield`` dependency: the transaction's end is pushed on the exit stack FastAPI
    opens around every route's call (``fastapi_function_astack``, the one a
    ``scope="function"`` yield dependency exits on), so it runs at the same point:
    after the route and its response model, before the response is sent, with the
    route's exception if it raised. FastAPI enters a yield dependency through two
    context-manager wrappers and an anyio cancel scope, which cost more CPU per request
    than the session's own set-up.
    """
    exits: AsyncExitStack = request.scope["fastapi_function_astack"]
    pending: IdempotentRequest | None = request.scope.get("state", {}).get(IDEMPOTENCY_STATE)
    if pending is not None:
        session = await pending.begin()
        exits.push_async_exit(partial(_end_idempotent, pending, session))
        return session
    context = context_of(request)
    factory = context.session_factory
    if request.method in SAFE_METHODS and context.read_session_factory is not None:
        factory = context.read_session_factory
        if not context.settings.is_sqlite:  # no transaction: see _end_read
            session = factory()
            exits.push_async_exit(partial(_end_read, session))
            return session
    session = factory()
    exits.push_async_exit(partial(_end, session))
    return session


async def _end(session: AsyncSession, failed: type[BaseException] | None, *_: object) -> None:
    try:
        if failed is None:
            await session.commit()
        else:
            await session.rollback()
    finally:
        await session.close()


async def _end_read(session: AsyncSession, failed: type[BaseException] | None, *_: object) -> None:
    """A read session on PostgreSQL has no transaction to end (each statement commits
    by itself): only ORM changes a route left pending are flushed, as ``commit`` would.
    (SQLite's read sessions have transactions, and end as every other.)"""
    try:
        if failed is None and (session.new or session.dirty or session.deleted):
            await session.commit()
    finally:
        await session.close()


async def _end_idempotent(
    pending: IdempotentRequest,
    session: AsyncSession,
    failed: type[BaseException] | None,
    *_: object,
) -> None:
    if failed is not None:
        await pending.rollback()
        return
    # Constraint errors still surface here, inside the route's error handling.
    await session.flush()
    pending.route_returned = True


def read_connection(request: Request) -> ReadConnection:
    """A pooled connection for a route that only reads, taken by ``async with``: no ORM
    session around it, and on PostgreSQL no SQLAlchemy connection either
    (:class:`ReadConnection`).

    For the hottest reads (``/auth/me``, every page load), run with
    :class:`~crm2_core.db.direct.DirectSelect`: an ``AsyncSession``'s construction,
    transaction bookkeeping, commit and close cost about as much CPU as the query
    itself, and add nothing to one statement. Without BEGIN/COMMIT, like the safe
    requests' sessions (``create_read_engine``): never write through it. Not a
    ``yield`` dependency: FastAPI's entering and shielded exit of one cost a tenth of
    such a request's CPU; the route holds the connection only around its statements.
    """
    context = context_of(request)
    return ReadConnection(context.engine, context.read_engine or context.engine)


ContextDep = Annotated[AppContext, Depends(get_context)]
# get_session commits before the response is sent (see its docstring), so a failed
# commit becomes an error response instead of a success the client wrongly trusts.
# scope="function" keeps FastAPI's check: a request-scoped yield dependency, which
# would run after the session ended, may not take it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
