"""Telegram: a user's one-time link code, and the webhook the Bot API calls."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Header, Response, status

from crm2_core.api import ContextDep, SessionDep
from crm2_notifications.channels.telegram import bot_call
from crm2_notifications.routes.deps import NotificationsRead
from crm2_notifications.schemas.feed import TelegramLinkCode
from crm2_notifications.service import telegram

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


@router.post("/webhook", status_code=status.HTTP_204_NO_CONTENT)
async def telegram_webhook(
    session: SessionDep,
    context: ContextDep,
    update: Annotated[dict[str, Any], Body(description="a Telegram Update object")],
    secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> Response:
    """Telegram's webhook: needs the secret token; repeated ``update_id``s change nothing."""
    telegram.check_secret(context, secret)
    reply = await telegram.handle_update(session, context, update)
    await session.commit()  # the link holds even if the reply below fails
    if reply is not None:
        chat_id, text = reply
        with contextlib.suppress(httpx.HTTPError):
            await bot_call(context, "sendMessage", {"chat_id": chat_id, "text": text})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
