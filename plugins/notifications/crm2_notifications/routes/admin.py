"""Admin routes: rules, webhook subscriptions, the delivery log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Response, status

from crm2_core.api import (
    APIRouter,
    ContextDep,
    Filter,
    IfMatchDep,
    ListQuery,
    OptionalIfMatch,
    Page,
    PageDep,
    SessionDep,
    created,
    list_query,
    page_response,
    present,
)
from crm2_notifications.repository import admin as repo
from crm2_notifications.repository import deliveries as delivery_repo
from crm2_notifications.routes.deps import NotificationsAdmin
from crm2_notifications.schemas.feed import DeliveryPublic
from crm2_notifications.schemas.rules import (
    NotificationRuleCreate,
    NotificationRulePublic,
    NotificationRuleUpdate,
    WebhookCreate,
    WebhookPublic,
    WebhookUpdate,
)
from crm2_notifications.service import rules, webhooks

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications admin"])
BASE = "/api/v1/notifications"


# -- rules -------------------------------------------------------------------------------


@router.get("/rules", response_model=Page[NotificationRulePublic])
async def list_rules(
    _: NotificationsAdmin, session: SessionDep, context: ContextDep, page: PageDep
) -> Response:
    """Rules by name; ``active`` is false when the event type or the shipping plugin is off."""
    rows, cursor = await repo.RULES.page(session, repo.RULES.visible(repo.ADMIN), page)
    declared = rules.declared_event_types(context)
    return page_response(
        NotificationRulePublic, [rules.public(r, context, declared) for r in rows], cursor
    )


@router.post("/rules", response_model=NotificationRulePublic, status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: NotificationRuleCreate,
    _: NotificationsAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> NotificationRulePublic:
    """A rule: on an event type, when conditions hold, notify recipients on channels."""
    row = await rules.create_rule(session, context, body)
    return created(response, f"{BASE}/rules/{row.id}", rules.public(row, context))


@router.get("/rules/{rule_id}", response_model=NotificationRulePublic)
async def get_rule(
    rule_id: uuid.UUID,
    _: NotificationsAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> NotificationRulePublic:
    """One rule."""
    row = await repo.RULES.get_or_404(session, repo.ADMIN, rule_id)
    return present(response, rules.public(row, context))


@router.patch("/rules/{rule_id}", response_model=NotificationRulePublic)
async def update_rule(
    rule_id: uuid.UUID,
    body: NotificationRuleUpdate,
    if_match: IfMatchDep,
    _: NotificationsAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> NotificationRulePublic:
    """Change a rule, e.g. switch a shipped one off with {"enabled": false} (If-Match required)."""
    row = await rules.update_rule(session, context, rule_id, if_match, body)
    return present(response, rules.public(row, context))


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(
    rule_id: uuid.UUID, _: NotificationsAdmin, session: SessionDep, if_match: OptionalIfMatch = None
) -> Response:
    """Delete a rule; the notifications it made stay. A shipped rule is not stored again."""
    await rules.delete_rule(session, rule_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- webhook subscriptions -----------------------------------------------------------------


@router.get("/webhooks", response_model=Page[WebhookPublic])
async def list_webhooks(_: NotificationsAdmin, session: SessionDep, page: PageDep) -> Response:
    """Outbound webhook subscriptions by name."""
    rows, cursor = await repo.WEBHOOKS.page(session, repo.WEBHOOKS.visible(repo.ADMIN), page)
    return page_response(WebhookPublic, rows, cursor)


@router.post("/webhooks", response_model=WebhookPublic, status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookCreate,
    _: NotificationsAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> WebhookPublic:
    """Subscribe a URL to event types (``deals.*`` matches by prefix); a signing secret is made."""
    row = await webhooks.create(session, context, body)
    return created(response, f"{BASE}/webhooks/{row.id}", WebhookPublic.model_validate(row))


@router.get("/webhooks/{webhook_id}", response_model=WebhookPublic)
async def get_webhook(
    webhook_id: uuid.UUID, _: NotificationsAdmin, session: SessionDep, response: Response
) -> WebhookPublic:
    """One subscription."""
    row = await repo.WEBHOOKS.get_or_404(session, repo.ADMIN, webhook_id)
    return present(response, WebhookPublic.model_validate(row))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookPublic)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    if_match: IfMatchDep,
    _: NotificationsAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> WebhookPublic:
    """Change a subscription; ``rotate_secret`` adds a signing secret (If-Match required)."""
    row = await webhooks.update(session, context, webhook_id, if_match, body)
    return present(response, WebhookPublic.model_validate(row))


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(
    webhook_id: uuid.UUID,
    _: NotificationsAdmin,
    session: SessionDep,
    if_match: OptionalIfMatch = None,
) -> Response:
    """Delete a subscription and its deliveries."""
    await webhooks.delete(session, webhook_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- the delivery log ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilters:
    status: Annotated[delivery_repo.Status | None, Filter("only this status")] = None
    channel: Annotated[str | None, Filter(max_length=32, pattern=r"^[a-z][a-z0-9_]*$")] = None


# The filters before limit and cursor: the order the log's parameters always had.
DeliveryQuery = Annotated[
    ListQuery[DeliveryFilters], Depends(list_query(DeliveryFilters, page_last=True))
]


@router.get("/deliveries", response_model=Page[DeliveryPublic])
async def list_deliveries(
    _: NotificationsAdmin, session: SessionDep, query: DeliveryQuery
) -> Response:
    """Every delivery, newest first, with attempts and the last response code."""
    f = query.filters
    rows, cursor = await delivery_repo.page(session, query.page, f.status, f.channel)
    return page_response(DeliveryPublic, rows, cursor)
