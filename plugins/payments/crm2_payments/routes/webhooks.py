"""``POST /api/v1/payments/webhooks/{provider}``: provider events, signed (no login)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request

from crm2_core.api import APIRouter, ContextDep, SessionDep, problem_responses
from crm2_payments.schemas.admin import WebhookAck
from crm2_payments.schemas.payments import Provider
from crm2_payments.service import webhooks as service

router = APIRouter(prefix="/api/v1/payments", tags=["payments webhooks"])
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@router.post(
    "/webhooks/{provider}",
    response_model=WebhookAck,
    responses=problem_responses(401, 404),  # a bad signature; a provider with no secret
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def receive_webhook(
    provider: Annotated[Provider, Path()],
    request: Request,
    session: SessionDep,
    context: ContextDep,
) -> WebhookAck:
    """A provider's payment event, signed in the Standard Webhooks scheme (README): 401 for a
    bad signature (nothing changes); the same webhook-id is applied once."""
    body = await request.body()
    headers = {name: request.headers.get(name, "") for name in HEADERS}
    webhook_id, applied, result = await service.receive(session, context, provider, headers, body)
    return WebhookAck(webhook_id=webhook_id, applied=applied, result=result)
