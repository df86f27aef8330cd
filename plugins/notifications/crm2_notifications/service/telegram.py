"""The Telegram bot: one-time link codes, and the webhook Telegram calls with updates.

``POST /telegram/link`` gives a signed-in user a code (single use, 10 minutes,
stored as its SHA-256). The user sends ``/start <code>`` to the bot (the t.me
deep link does it); the webhook links that chat to the user. The webhook checks
``X-Telegram-Bot-Api-Secret-Token`` (Telegram signs no body) and ignores an
``update_id`` it has seen. The bot's answers honour its pause after a 429 and its
bot-wide rate limit, as every message of the bot does: one that cannot go now is
held back (bounded) and sent once it may. Held in process memory on purpose: an answer
is a courtesy, the update's effect is committed before the webhook answers, and
Telegram does not re-send an update answered 2xx — a restart loses only the chat line.
So once the update is committed the webhook answers 2xx whatever becomes of the answer:
while the rate limiter (Redis) is down the answers are held back like during a pause,
and any other failure to answer is logged (a 5xx would make Telegram re-send an update
it would then ignore as seen, and the answer would be lost all the same).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import acting_user, utcnow
from crm2_hookspecs import Principal
from crm2_notifications import clock
from crm2_notifications.channels import registry
from crm2_notifications.channels.telegram import bot_call, result_of
from crm2_notifications.errors import RateLimiterUnavailable, TelegramOff, TelegramSecretInvalid
from crm2_notifications.models import TelegramCode, TelegramLink, TelegramUpdate
from crm2_notifications.service import login_confirm
from crm2_notifications.service.delivery import channel_token, note_pause, paused_until
from crm2_notifications.service.login_confirm import BotCall

LINKED = "Linked: crm2 notifications will arrive in this chat."
# a chat has one user: said in the chat (where the user it was linked to, and anyone
# else there, reads it), so that user learns their notifications stopped coming here
REPLACED = (
    "Linked: crm2 notifications will arrive in this chat. It was linked to another crm2 "
    "user before: their notifications no longer come here (they can link a chat again)."
)
BAD_CODE = "This link code is unknown, used or expired. Get a new one in crm2."
log = logging.getLogger(__name__)

HELLO = "Open crm2 → Notifications → Link Telegram, and follow the link it gives you."


def _bigint(value: Any) -> TypeGuard[int]:
    """An int that fits the BIGINT columns (Telegram's ids do; a forged one may not)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) < value < 2**63


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def new_code(
    session: AsyncSession, context: Any, principal: Principal
) -> tuple[str, datetime]:
    settings = context.plugin_settings("notifications")
    if not settings.telegram_bot_token.get_secret_value():
        raise TelegramOff("set CRM2_NOTIFICATIONS_TELEGRAM_BOT_TOKEN to link Telegram")
    now = clock.now(context)
    user_id = acting_user(principal)
    # one open code per user: a new one replaces the old
    await session.execute(
        delete(TelegramCode).where(
            col(TelegramCode.user_id) == user_id, col(TelegramCode.used_at).is_(None)
        )
    )
    code = secrets.token_urlsafe(24)
    expires = now + timedelta(seconds=settings.telegram_link_ttl_seconds)
    session.add(TelegramCode(code_hash=_hash(code), user_id=user_id, expires_at=expires))
    await session.flush()
    return code, expires


# Telegram re-sends an unanswered update for at most a day: an id older than this
# cannot come again, so it need not be remembered
UPDATE_KEEP = timedelta(days=2)


async def prune(context: Any) -> None:
    """Forget update ids too old to come again, and link codes used or expired."""
    now = clock.now(context)
    async with context.session_factory() as session:
        await session.execute(
            delete(TelegramUpdate).where(col(TelegramUpdate.received_at) < now - UPDATE_KEEP)
        )
        await session.execute(
            delete(TelegramCode).where(
                col(TelegramCode.used_at).is_not(None) | (col(TelegramCode.expires_at) <= now)
            )
        )
        await session.commit()


def check_secret(context: Any, sent: str | None) -> None:
    expected = context.plugin_settings("notifications").telegram_webhook_secret.get_secret_value()
    if not expected:
        raise TelegramOff(
            "the Telegram webhook is off (no CRM2_NOTIFICATIONS_TELEGRAM_WEBHOOK_SECRET)"
        )
    if sent is None or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise TelegramSecretInvalid("wrong X-Telegram-Bot-Api-Secret-Token")


async def _first_time(session: AsyncSession, update_id: int, now: datetime) -> bool:
    if await session.get(TelegramUpdate, update_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(TelegramUpdate(update_id=update_id, received_at=now))
    except IntegrityError:
        return False  # the same update, delivered twice at once
    return True


async def _link(session: AsyncSession, code: str, chat_id: int, now: datetime) -> str | None:
    """The chat's answer (``LINKED``, or ``REPLACED`` when the chat was another user's),
    ``None`` for a code unknown, used or expired."""
    claimed = await session.execute(
        update(TelegramCode)
        .where(
            col(TelegramCode.code_hash) == _hash(code),
            col(TelegramCode.used_at).is_(None),
            col(TelegramCode.expires_at) > now,
        )
        .values(used_at=now)
        .returning(col(TelegramCode.user_id))
    )
    user_id = claimed.scalar_one_or_none()
    if user_id is None:
        return None
    # a chat belongs to one user, a user has one chat: the newest link wins (and says so)
    dropped = await session.execute(
        delete(TelegramLink)
        .where((col(TelegramLink.chat_id) == chat_id) | (col(TelegramLink.user_id) == user_id))
        .returning(col(TelegramLink.user_id), col(TelegramLink.chat_id))
    )
    replaced = any(chat == chat_id and user != user_id for user, chat in dropped.all())
    session.add(TelegramLink(user_id=user_id, chat_id=chat_id, linked_at=now))
    await session.flush()
    return REPLACED if replaced else LINKED


async def handle_update(
    session: AsyncSession, context: Any, update_body: Mapping[str, Any]
) -> list[BotCall]:
    """Apply one update; returns the Bot API calls that answer it (``(method, payload)``)."""
    now = clock.now(context)
    update_id = update_body.get("update_id")
    if not _bigint(update_id) or not await _first_time(session, update_id, now):
        return []
    callback = update_body.get("callback_query")
    if isinstance(callback, Mapping):  # a button of a sign-in question
        return await login_confirm.answer(session, callback)
    reply = await _message(session, update_body.get("message"), now)
    if reply is None:
        return []
    chat_id, text = reply
    if text in (HELLO, BAD_CODE) and not await _may_answer(context, chat_id):
        return []
    return [("sendMessage", {"chat_id": chat_id, "text": text})]


# Anyone on Telegram may write to the bot. Each answer takes a token of the bot-wide
# bucket that deliveries and sign-in questions take too, so a chat repeating "/start"
# (or wrong codes) could starve them — and refuse sign-ins waiting for a question. A
# chat gets ``STRANGER_BURST`` such answers, then one per ``STRANGER_EVERY`` seconds;
# the rest go unanswered (a link itself, with a right code, is always answered).
STRANGER_BURST = 3
STRANGER_EVERY = 60.0


async def _may_answer(context: Any, chat_id: int) -> bool:
    from crm2_notifications.ratelimit import buckets_for

    try:
        wait = await buckets_for(context).take(
            f"telegram:answers:{chat_id}", 1 / STRANGER_EVERY, STRANGER_BURST
        )
    except RateLimiterUnavailable:  # held back by ``reply`` meanwhile, as every answer
        return True
    return wait <= 0


async def _message(session: AsyncSession, message: object, now: datetime) -> tuple[int, str] | None:
    if not isinstance(message, Mapping):
        return None
    chat = message.get("chat")
    text = message.get("text")
    if not isinstance(chat, Mapping) or not _bigint(chat.get("id")) or not isinstance(text, str):
        return None
    chat_id: int = chat["id"]
    command, _, argument = text.strip().partition(" ")
    if command.split("@")[0] != "/start":
        return None
    if not argument.strip():
        return chat_id, HELLO
    answer = await _link(session, argument.strip()[:200], chat_id, now)
    return chat_id, answer or BAD_CODE


REPLY_QUEUE = 500  # answers held back per process; beyond it the oldest give way
REPLY_TTL = timedelta(hours=1)  # a "Linked" an hour late still tells the user something
# Telegram takes a button press's answer only for a short while: later it is refused
CALLBACK_TTL = timedelta(seconds=10)


@dataclass
class HeldReply:
    method: str
    payload: dict[str, Any]
    queued_at: datetime


@dataclass
class PendingReplies:
    """The webhook's answers the bot could not send yet (paused, or no token), oldest first."""

    calls: deque[HeldReply] = field(default_factory=lambda: deque(maxlen=REPLY_QUEUE))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _pending(context: Any) -> PendingReplies:
    found: PendingReplies | None = context.find(PendingReplies)
    if found is None:
        found = PendingReplies()
        context.provide(PendingReplies, found)
    return found


def pending_replies(context: Any) -> deque[HeldReply]:
    return _pending(context).calls


async def reply(context: Any, calls: list[BotCall]) -> int:
    """Make the bot calls that answer an update (the update is applied already); returns
    how many were made now. An answer is a message of the bot like a delivery: none is
    sent while the bot is paused by flood control (it would lengthen the ban for every
    chat), each takes a token of the bot-wide bucket, and a 429 to one pauses the bot.
    Telegram waits for this webhook's answer, so nothing waits here: an answer that
    cannot go now is held back (in this process, at most ``REPLY_QUEUE``, for
    ``REPLY_TTL``) and sent by ``flush_replies`` — the next webhook call or the
    ``deliveries`` job — once the pause is over and a token is there."""
    now = clock.now(context)
    held = _pending(context)
    held.calls.extend(HeldReply(method, payload, now) for method, payload in calls)
    try:
        return await flush_replies(context)
    except Exception:  # the update is committed: its answer is a courtesy, never a 5xx
        log.exception("notifications: the Telegram bot could not answer an update")
        return 0


def _expired(call: HeldReply, now: datetime) -> bool:
    ttl = CALLBACK_TTL if call.method == "answerCallbackQuery" else REPLY_TTL
    return now - call.queued_at > ttl


async def flush_replies(context: Any) -> int:
    """Send the held-back answers, oldest first, while the bot may; returns how many."""
    held = context.find(PendingReplies)
    if held is None or not held.calls or held.lock.locked():
        return 0  # nothing held, or another flush is at it (and sends these too)
    async with held.lock:
        return await _flush(context, held.calls)


async def _flush(context: Any, calls: deque[HeldReply]) -> int:
    import httpx  # here: imported at the top, it would be on every `crm2 serve`'s start-up

    channel = registry(context).get("telegram")
    made = 0
    while calls:
        call = calls.popleft()
        if _expired(call, clock.now(context)):
            continue
        if channel is not None:
            now = utcnow()
            try:
                held = await paused_until(context, channel, now) > now or (
                    await channel_token(context, channel) > 0  # the deliveries' limit too
                )
            except RateLimiterUnavailable:
                held = True  # no sending past a pause the limiter cannot tell of
            if held:
                calls.appendleft(call)
                break
        try:
            response = await bot_call(context, call.method, call.payload)
        except httpx.HTTPError:
            continue  # best effort: the update is applied, Telegram unreachable
        result = result_of(response)
        if channel is not None and result.pause_channel:
            await note_pause(context, channel, result)
            calls.appendleft(call)  # met flood control: sent after the pause
            break
        made += 1
    return made
