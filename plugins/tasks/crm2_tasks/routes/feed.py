"""The per-user iCalendar feed: create / revoke with a login, read with the secret token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response, status

from crm2_core.api import APIRouter, ContextDep, SessionDep, never_answers
from crm2_tasks.routes.deps import TasksRead
from crm2_tasks.schemas.tasks import FeedPublic
from crm2_tasks.service import feed as service

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks feed"])


# POST names no record; a second one for the same user at once is a 409 (the key's row)
@router.post(
    "/feed",
    response_model=FeedPublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=never_answers(404),
)
async def create_feed(principal: TasksRead, session: SessionDep) -> FeedPublic:
    """A new secret feed address for the caller's tasks; the previous address stops working."""
    return FeedPublic(url=await service.new_feed(session, principal))


# DELETE removes the caller's one row, if any: nothing it writes can conflict
@router.delete("/feed", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=never_answers(409))
async def revoke_feed(principal: TasksRead, session: SessionDep) -> Response:
    """Revoke the caller's feed address."""
    await service.revoke_feed(session, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/feed/{token}.ics",
    response_class=Response,
    # calendar apps cannot send a header: the secret token in the path is the credential
    openapi_extra={"x-crm2-auth": "the feed token in the path"},
)
async def read_feed(
    token: Annotated[str, Path(max_length=100)], session: SessionDep, context: ContextDep
) -> Response:
    """The caller's assigned tasks with a due time as iCalendar (no login: the token is the key)."""
    body = await service.render_feed(session, context, token)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, max-age=300"},
    )
