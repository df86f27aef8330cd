"""`/api/v1/documents/oauth/gdrive/…`: an admin connects Google Drive (OAuth 2.0 + PKCE)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from crm2_core.api import APIRouter, ContextDep, SessionDep, problem_responses
from crm2_documents.gdrive import oauth
from crm2_documents.routes.deps import DocumentsAdmin

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


@router.post("/oauth/gdrive/start")
async def gdrive_start(
    principal: DocumentsAdmin, session: SessionDep, context: ContextDep
) -> dict[str, str]:
    """Begin connecting Drive (admin): open ``url`` in a browser to give consent."""
    url, state = await oauth.start(session, context, principal)
    return {"url": url, "state": state}


@router.get("/oauth/gdrive/callback", responses=problem_responses(403, 503))
async def gdrive_callback(
    context: ContextDep,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Where Google sends the browser back; the one-time state is the credential."""
    # its own transaction: a GET's request session does not write (PostgreSQL)
    async with context.session_factory() as session:
        try:
            await oauth.callback(session, context, state, code, error)
        finally:
            await session.commit()  # a used state stays used, even when refused
    return await oauth.status(context)


@router.get("/oauth/gdrive")
async def gdrive_status(principal: DocumentsAdmin, context: ContextDep) -> dict[str, Any]:
    """Whether Drive is connected (admin)."""
    return await oauth.status(context)
