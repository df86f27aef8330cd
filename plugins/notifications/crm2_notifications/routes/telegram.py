"""Telegram: a user's one-time link code, and the webhook the Bot API calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Header, Response, status

from crm2_core.api import APIRouter, ContextDep, SessionDep, problem_responses
from crm2_notifications.models import TelegramLink
from crm2_notifications.routes.deps import NotificationsRead
from crm2_notifications.schemas.feed import (
    TelegramLinkCode,
    TelegramLoginConfirmationIn,
    TelegramStatus,
)
from crm2_notifications.service import login_confirm, telegram

router = APIRouter(prefix="/api/v1/notifications/telegram", tags=["notifications telegram"])


@router.post("/link", response_model=TelegramLinkCode, status_code=status.HTTP_201_CREATED)
async def new_link_code(
    principal: NotificationsRead, session: SessionDep, context: ContextDep
) -> TelegramLinkCode:
    """A one-time code (10 minutes) to send the bot as ``/start <code>``; replaces an open one."""
    code, expires = await telegram.new_code(session, context, principal)
    bot = context.plugin_settings("notifications").telegram_bot_name
    url = f"https://t.me/{bot}?start={code}" if bot else None
    return TelegramLinkCode(code=code, url=url, expires_at=expires)


@router.post(
    "/webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 409),  # a wrong secret token; the webhook switched off
)
async def telegram_webhook(
    session: SessionDep,
    context: ContextDep,
    update: Annotated[dict[str, Any], Body(description="a Telegram Update object")],
    secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> Response:
    """Telegram's webhook: needs the secret token; repeated ``update_id``s change nothing."""
    telegram.check_secret(context, secret)
    calls = await telegram.handle_update(session, context, update)
    await session.commit()  # the link (or the answer to a sign-in) holds even if a reply fails
    await telegram.reply(context, calls)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _status(link: TelegramLink | None) -> TelegramStatus:
    return TelegramStatus(
        linked=link is not None,
        linked_at=link.linked_at if link else None,
        confirm_logins=bool(link and link.confirm_logins),
        disabled_at=link.disabled_at if link else None,
        disabled_reason=link.disabled_reason if link else None,
    )


@router.get("", response_model=TelegramStatus)
async def telegram_status(principal: NotificationsRead, session: SessionDep) -> TelegramStatus:
    """Whether the caller linked a Telegram chat (and it still takes messages), and
    confirms sign-ins there."""
    return _status(await login_confirm.status(session, principal))


@router.put("/login-confirmation", response_model=TelegramStatus)
async def set_login_confirmation(
    body: TelegramLoginConfirmationIn,
    principal: NotificationsRead,
    session: SessionDep,
    context: ContextDep,
) -> TelegramStatus:
    """Confirm the caller's sign-ins in their linked chat (Yes / No buttons); 409 unlinked."""
    return _status(await login_confirm.set_enabled(session, context, principal, body.enabled))
