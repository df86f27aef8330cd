"""Sign-ins confirmed from Telegram: the notifications side of the core's ``crm2_confirm_login``.

A user who linked a chat and switched it on (``PUT /telegram/login-confirmation``)
gets, for each sign-in with the right password, a message with two buttons; the
button's ``callback_data`` names the sign-in's challenge (no secret). Telegram
posts the press to the webhook as a ``callback_query``; the press counts only from
the chat linked to the user the sign-in is for (``decide_login`` checks the user), and
only by that chat's own person (a private chat: a group's members cannot answer).

The question honours the bot's pause after a 429 (Telegram's flood control, shared
with the deliveries): it cannot wait for it — a sign-in is a person at a form, and a
pause lasts seconds to minutes — and sending anyway lengthens the ban for every
chat. So during a pause the sign-in fails at once with ``TelegramPaused`` (503, its
``Retry-After`` the pause's rest), never let through; a 429 to the question itself
starts that pause, as a delivery's does. The question takes a token of the bot-wide
bucket too (``telegram_rate_per_second``, shared with the deliveries); with none there
it fails at once with its own ``TelegramRateLimited`` (503, ``Retry-After`` the time
until one is): no flood control holds the bot then.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import acting_user, decide_login, utcnow
from crm2_hookspecs import LoginConfirmation, Principal
from crm2_notifications.channels import registry
from crm2_notifications.channels.telegram import bot_call, result_of
from crm2_notifications.errors import (
    TelegramNotLinked,
    TelegramOff,
    TelegramPaused,
    TelegramRateLimited,
)
from crm2_notifications.models import TelegramLink
from crm2_notifications.repository import people
from crm2_notifications.service.delivery import (
    asked_delay,
    channel_token,
    note_pause,
    paused_until,
)

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
    """Send the question to the user's chat; ``None`` when they did not switch it on.

    :raises TelegramPaused: the bot is paused (or this question met flood control).
    :raises TelegramRateLimited: no token of the bot-wide bucket is there now.
    :raises RateLimiterUnavailable: the limiter (Redis) does not answer (a 503 too).
    """
    import httpx  # here: imported at the top, it would be on every `crm2 serve`'s start-up

    link = await session.get(TelegramLink, login.user_id)
    if link is None or not link.confirm_logins:
        return None
    channel = registry(context).get("telegram")
    if channel is not None:
        now = utcnow()
        resume = await paused_until(context, channel, now)
        if resume > now:
            raise TelegramPaused((resume - now).total_seconds())
        # a message of the bot like any delivery: over the bot-wide limit it is refused at
        # once, as during a pause (a person at a form, not a queue), never sent anyway
        wait = await channel_token(context, channel)
        if wait > 0:
            raise TelegramRateLimited(wait)
    payload = {
        "chat_id": link.chat_id,
        "text": question(login),
        "reply_markup": keyboard(login.challenge_id),
    }
    try:
        response = await bot_call(context, "sendMessage", payload)
    except httpx.HTTPError:
        return False
    result = result_of(response)
    if channel is not None and result.pause_channel and asked_delay(result) > 0:
        await note_pause(context, channel, result)  # every delivery of the bot waits too
        raise TelegramPaused(asked_delay(result))
    return result.ok


async def answer(session: AsyncSession, callback: Mapping[str, Any]) -> list[BotCall]:
    """Apply a button press (a ``callback_query``); the bot calls that answer it."""
    query_id = callback.get("id")
    data = callback.get("data")
    message = callback.get("message")
    chat = message.get("chat") if isinstance(message, Mapping) else None
    chat_id = chat.get("id") if isinstance(chat, Mapping) else None
    if not isinstance(query_id, str) or not isinstance(data, str) or not _bigint(chat_id):
        return []
    presser = callback.get("from")
    # the press counts only from the linked person themself: in a private chat the chat's
    # id is its person's, while in a group (a group can be linked with /start) any
    # member could press Yes to a stranger's sign-in
    by_owner = isinstance(presser, Mapping) and presser.get("id") == chat_id
    prefix, _, rest = data.partition(":")
    choice, _, ident = rest.partition(":")
    if prefix != PREFIX or choice not in (APPROVE, DENY):
        return [("answerCallbackQuery", {"callback_query_id": query_id})]
    try:
        challenge = uuid.UUID(hex=ident)
    except ValueError:
        return [("answerCallbackQuery", {"callback_query_id": query_id})]
    user_id = await people.user_of_chat(session, chat_id) if by_owner else None
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
    if enabled and link.chat_id < 0:  # a group's or a channel's id: every member could answer
        raise TelegramNotLinked(
            "the linked Telegram chat is a group: sign-ins are confirmed only in a private "
            "chat with the bot; link one (send /start <code> to the bot directly)"
        )
    link.confirm_logins = enabled
    await session.flush()
    return link


async def status(session: AsyncSession, principal: Principal) -> TelegramLink | None:
    link: TelegramLink | None = await session.get(TelegramLink, acting_user(principal))
    return link
