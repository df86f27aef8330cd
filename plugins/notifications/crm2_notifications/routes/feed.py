"""The caller's own feed and preferences."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from crm2_core.api import (
    APIRouter,
    ContextDep,
    Filter,
    IfMatchDep,
    ListQuery,
    Page,
    SessionDep,
    has_permission,
    list_query,
    never_answers,
    page_response,
    present,
)
from crm2_notifications.routes.deps import NotificationsRead
from crm2_notifications.schemas.feed import (
    ChannelDelivery,
    DeliveryAttemptPublic,
    MarkRead,
    NotificationDeliveries,
    NotificationPublic,
    PreferencesIn,
    PreferencesPublic,
    ReadResult,
    UnreadCount,
)
from crm2_notifications.service import feed, preferences

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@dataclass(frozen=True)
class FeedFilters:
    unread_only: Annotated[bool, Filter("only unread ones")] = False


# The filter before limit and cursor: the order the feed's parameters always had.
FeedQuery = Annotated[ListQuery[FeedFilters], Depends(list_query(FeedFilters, page_last=True))]


@router.get("/feed", response_model=Page[NotificationPublic])
async def list_feed(
    principal: NotificationsRead, session: SessionDep, query: FeedQuery
) -> Response:
    """The caller's notifications, newest first."""
    rows, cursor = await feed.page(session, principal, query.page, query.filters.unread_only)
    return page_response(NotificationPublic, rows, cursor)


@router.get("/feed/unread-count", response_model=UnreadCount)
async def unread_count(principal: NotificationsRead, session: SessionDep) -> UnreadCount:
    """How many of the caller's notifications are unread."""
    return UnreadCount(unread=await feed.unread(session, principal))


# ids that are not the caller's are ignored, and no record is in the path: never a 404
@router.post("/feed/read", response_model=ReadResult, openapi_extra=never_answers(404))
async def mark_read(
    body: MarkRead, principal: NotificationsRead, session: SessionDep, context: ContextDep
) -> ReadResult:
    """Mark these notifications read (ids that are not the caller's are ignored)."""
    marked, left = await feed.mark_read(session, context, principal, list(body.ids))
    return ReadResult(marked=marked, unread=left)


@router.post("/feed/read-all", response_model=ReadResult, openapi_extra=never_answers(404))
async def mark_all_read(
    principal: NotificationsRead, session: SessionDep, context: ContextDep
) -> ReadResult:
    """Mark every notification of the caller read."""
    marked, left = await feed.mark_read(session, context, principal, None)
    return ReadResult(marked=marked, unread=left)


@router.get("/feed/{notification_id}", response_model=NotificationPublic)
async def get_notification(
    notification_id: uuid.UUID, principal: NotificationsRead, session: SessionDep
) -> NotificationPublic:
    """One of the caller's notifications (another user's id: 404)."""
    return NotificationPublic.model_validate(await feed.get(session, principal, notification_id))


@router.get("/feed/{notification_id}/deliveries", response_model=NotificationDeliveries)
async def notification_deliveries(
    notification_id: uuid.UUID, principal: NotificationsRead, session: SessionDep, request: Request
) -> NotificationDeliveries:
    """Delivery attempts per channel (status, error, attempts, next retry): the owner's or,
    with notifications:admin, anyone's notification."""
    admin = has_permission(request, principal, "notifications:admin")
    found = await feed.deliveries(session, principal, notification_id, admin)
    items = [
        ChannelDelivery.model_validate(
            {
                **d.model_dump(),
                "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
                "log": [DeliveryAttemptPublic.model_validate(a) for a in attempts],
            }
        )
        for d, attempts in found
    ]
    return NotificationDeliveries(notification_id=notification_id, items=items)


@router.post("/feed/{notification_id}/read", response_model=NotificationPublic)
async def mark_one_read(
    notification_id: uuid.UUID,
    principal: NotificationsRead,
    session: SessionDep,
    context: ContextDep,
) -> NotificationPublic:
    """Mark one of the caller's notifications read."""
    row = await feed.mark_one(session, context, principal, notification_id)
    return NotificationPublic.model_validate(row)


@router.get("/preferences", response_model=PreferencesPublic)
async def get_preferences(
    principal: NotificationsRead, session: SessionDep, context: ContextDep, response: Response
) -> PreferencesPublic:
    """The caller's zone, quiet hours and per channel / event type choices."""
    return present(response, await preferences.read(session, context, principal))


@router.patch("/preferences", response_model=PreferencesPublic)
async def update_preferences(
    body: PreferencesIn,
    if_match: IfMatchDep,
    principal: NotificationsRead,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> PreferencesPublic:
    """Change the caller's preferences (If-Match required); ``rules`` replaces all choices."""
    result = await preferences.update(session, context, principal, if_match, body)
    return present(response, result)
