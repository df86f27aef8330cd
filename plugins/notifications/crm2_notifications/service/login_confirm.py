"""Sign-ins confirmed from Telegram: the notifications side of the core's ``crm2_confirm_login``.

A user who linked a chat and switched it on (``PUT /telegram/login-confirmation``)
gets, for each sign-in with the right password, a message with two buttons; the
button's ``callback_data`` names the sign-in's challenge (no secret). Telegram
posts the press to the webhook as a ``callback_query``; the press counts only from
the chat linked to the user the sign-in is for (``decide_login`` checks the user).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import acting_user, decide_login
from crm2_hookspecs import LoginConfirmation, Principal
from crm2_notifications.channels.telegram import bot_call
from crm2_notifications.errors import TelegramNotLinked, TelegramOff
from crm2_notifications.models import TelegramLink
from crm2_notifications.repository import people

PREFIX = "login"
APPROVE, DENY = "y", "n"
APPROVED = "Signed in. Welcome back."
DENIED = "Sign-in refused. If it was not you, change your password."
GONE = "This sign-in is no longer waiting (answered, expired, or not yours)."
BotCall = tuple[str, dict[str, Any]]


def _bigint(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) < value < 2**63


def telegram_on(context: Any) -> bool:
    settings = context.plugin_settings("notifications")
    return bool(settings.telegram_bot_token.get_secret_value())


def question(login: LoginConfirmation) -> str:
    return (
        f"Sign-in to crm2 as {login.email} from {login.address or 'an unknown address'}.\n"
        "Was it you?"
    )


def keyboard(challenge_id: uuid.UUID) -> dict[str, Any]:
    data = f"{PREFIX}:{{}}:{challenge_id.hex}"  # 40 bytes: Telegram allows 64
    return {
        "inline_keyboard": [
            [
                {"text": "Yes, it's me", "callback_data": data.format(APPROVE)},
                {"text": "No", "callback_data": data.format(DENY)},
            ]
        ]
    }


async def ask(login: LoginConfirmation, context: Any, session: AsyncSession) -> bool | None:
    """Send the question to the user's chat; ``None`` when they did not switch it on."""
    import httpx  # here: imported at the top, it would be on every `crm2 serve`'s start-up

    link = await session.get(TelegramLink, login.user_id)
    if link is None or not link.confirm_logins:
        return None
    payload = {
        "chat_id": link.chat_id,
        "text": question(login),
        "reply_markup": keyboard(login.challenge_id),
    }
    try:
        response = await bot_call(context, "sendMessage", payload)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def answer(session: AsyncSession, callback: Mapping[str, Any]) -> list[BotCall]:
    """Apply a button press (a ``callback_query``); the bot calls that answer it."""
    query_id = callback.get("id")
    data = callback.get("data")
    message = callback.get("message")
    chat = message.get("chat") if isinstance(message, Mapping) else None
    chat_id = chat.get("id") if isinstance(chat, Mapping) else None
    if not isinstance(query_id, str) or not isinstance(data, str) or not _bigint(chat_id):
        return []
    prefix, _, rest = data.partition(":")
    choice, _, ident = rest.partition(":")
    if prefix != PREFIX or choice not in (APPROVE, DENY):
        return [("answerCallbackQuery", {"callback_query_id": query_id})]
    try:
        challenge = uuid.UUID(hex=ident)
    except ValueError:
        return [("answerCallbackQuery", {"callback_query_id": query_id})]
    user_id = await people.user_of_chat(session, chat_id)
    decided = user_id is not None and await decide_login(
        session, challenge, user_id, choice == APPROVE
    )
    text = (APPROVED if choice == APPROVE else DENIED) if decided else GONE
    return [
        ("answerCallbackQuery", {"callback_query_id": query_id, "text": text}),
        ("sendMessage", {"chat_id": chat_id, "text": text}),
    ]


async def set_enabled(
    session: AsyncSession, context: Any, principal: Principal, enabled: bool
) -> TelegramLink:
    if not telegram_on(context):
        raise TelegramOff("set CRM2_NOTIFICATIONS_TELEGRAM_BOT_TOKEN to use Telegram")
    link = await session.get(TelegramLink, acting_user(principal))
    if link is None:
        raise TelegramNotLinked("link a Telegram chat first (POST /telegram/link, then /start)")
    link.confirm_logins = enabled
    await session.flush()
    return link


async def status(session: AsyncSession, principal: Principal) -> TelegramLink | None:
    link: TelegramLink | None = await session.get(TelegramLink, acting_user(principal))
    return link
