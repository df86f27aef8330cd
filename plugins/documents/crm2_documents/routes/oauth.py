"""`/api/v1/documents/oauth/gdrive/…`: an admin connects Google Drive (OAuth 2.0 + PKCE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from crm2_core.api import APIRouter, ContextDep, SessionDep, never_answers, problem_responses
from crm2_documents.gdrive import oauth
from crm2_documents.routes.deps import DocumentsAdmin
from crm2_documents.schemas.backends import GdriveConsent, GdriveStatus

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


# 503: a token key missing at run time (start-up refuses it; settings can still change)
@router.post("/oauth/gdrive/start", response_model=GdriveConsent, responses=problem_responses(503))
async def gdrive_start(
    principal: DocumentsAdmin, session: SessionDep, context: ContextDep
) -> GdriveConsent:
    """Begin connecting Drive (admin): open ``url`` in a browser to give consent."""
    url, state = await oauth.start(session, context, principal)
    return GdriveConsent(url=url, state=state)


@router.get(
    "/oauth/gdrive/callback", response_model=GdriveStatus, responses=problem_responses(403, 503)
)
async def gdrive_callback(
    context: ContextDep,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> GdriveStatus:
    """Where Google sends the browser back; the one-time state is the credential."""
    # its own transactions: a GET's request session does not write (PostgreSQL)
    await oauth.callback(context, state, code, error)
    return GdriveStatus.model_validate(await oauth.status(context))


# names no record and reads no setting: never a 404, even without a client id
@router.get("/oauth/gdrive", response_model=GdriveStatus, openapi_extra=never_answers(404))
async def gdrive_status(principal: DocumentsAdmin, context: ContextDep) -> GdriveStatus:
    """Whether Drive is connected (admin)."""
    return GdriveStatus.model_validate(await oauth.status(context))
