"""Webhook subscriptions (admin): URL checked by the SSRF guard when saved, rotating secrets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import check_version
from crm2_notifications.channels import ssrf
from crm2_notifications.channels.webhook import new_secret
from crm2_notifications.errors import InvalidWebhook
from crm2_notifications.models import Webhook
from crm2_notifications.repository import admin as repo
from crm2_notifications.schemas.rules import WebhookCreate, WebhookUpdate

MAX_SECRETS = 3


async def _check_url(context: Any, url: str) -> None:
    try:
        await ssrf.resolve(url, allow_private=ssrf.allow_private(context))
    except ssrf.TargetRefused as exc:
        raise InvalidWebhook(str(exc)) from exc


async def create(session: AsyncSession, context: Any, data: WebhookCreate) -> Webhook:
    if await repo.name_taken(session, Webhook, data.name, None):
        raise InvalidWebhook(f"a webhook is already called {data.name!r}")
    await _check_url(context, data.url)
    row = Webhook(
        name=data.name,
        url=data.url,
        event_types=list(dict.fromkeys(data.event_types)),
        active=data.active,
        secrets=[new_secret()],
    )
    return await repo.WEBHOOKS.add(session, row)


async def update(
    session: AsyncSession, context: Any, id: uuid.UUID, if_match: str, data: WebhookUpdate
) -> Webhook:
    row = await repo.WEBHOOKS.get_or_404(session, repo.ADMIN, id)
    version = check_version(if_match, row.version)
    values = data.model_dump(
        exclude_unset=True, exclude_none=True, exclude={"rotate_secret", "drop_old_secrets"}
    )
    if "name" in values and await repo.name_taken(session, Webhook, values["name"], row.id):
        raise InvalidWebhook(f"a webhook is already called {values['name']!r}")
    if "url" in values:
        await _check_url(context, values["url"])
    if values.get("active"):  # switched on again: the reason it went off is history
        values["disabled_reason"] = None
    secrets = list(row.secrets)
    if data.rotate_secret:
        secrets = [new_secret(), *secrets][:MAX_SECRETS]
    if data.drop_old_secrets:
        secrets = secrets[:1]
    if secrets != row.secrets:
        values["secrets"] = secrets
    await repo.WEBHOOKS.update(session, row, values, expected_version=version, only_changed=False)
    return row


async def switch_off(session: AsyncSession, id: uuid.UUID, reason: str, now: datetime) -> None:
    """The receiver said it wants no more (410 Gone): no event goes there until an admin
    switches the subscription on again (its ETag changes)."""
    await repo.switch_off_webhook(session, id, reason[:300], now)


async def delete(session: AsyncSession, id: uuid.UUID, if_match: str | None) -> None:
    row = await repo.WEBHOOKS.get_or_404(session, repo.ADMIN, id)
    await repo.WEBHOOKS.delete_if_match(session, row, if_match)
