"""``telegram``: the Bot API's ``sendMessage`` to the chat a user linked with ``/start <code>``.

The base URL is a setting (tests point it at a fake Bot API on 127.0.0.1). The
whole bot shares one bucket (``telegram_rate_per_second``) besides the per-user one,
and a 429 pauses the whole bot for its ``retry_after`` (``SendResult.pause_channel``).
A 403 (the user blocked the bot) or "chat not found" disables the chat's link, the
reason kept, until the user links a chat again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from crm2_hookspecs import Crm2Context
from crm2_notifications import clock, graphemes
from crm2_notifications.hookspecs import NotificationChannel, OutboundMessage, SendResult
from crm2_notifications.repository import people

# httpx is imported where a request is made: at the top it would add a tenth of a second
# of CPU to every `crm2 serve` start-up, which makes none.
if TYPE_CHECKING:
    import httpx

MAX_TEXT = 4096
BOT_TIMEOUT = 10.0  # seconds for a whole Bot API call
# bytes of a Bot API answer (decoded) we read: its answers are a few KiB; a bigger one
# (a proxy's page, a broken or hostile endpoint) is a failed call, never held in memory
MAX_ANSWER = 1024 * 1024
# what describes the body as sent, not as read (the answer we hand on is decoded)
_AS_SENT = ("content-encoding", "content-length", "transfer-encoding")


def render_text(message: OutboundMessage) -> str:
    parts = [message.title]
    if message.digest:
        parts += [f"• {t}" + (f": {b}" if b else "") for t, b in message.digest]
    elif message.body:
        parts.append(message.body)
    if message.link:
        parts.append(message.link)
    # on a grapheme cluster's edge: a code point cut could split a joined emoji or a mark
    return graphemes.cut("\n\n".join(parts), MAX_TEXT)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def result_of(response: httpx.Response) -> SendResult:
    """What a Bot API answer means for the message (and for the bot: a 429 pauses it)."""
    if response.status_code == 200:
        return SendResult.delivered(200)
    answer = _json(response)
    retry_after: float | None = None
    try:
        retry_after = float(answer.get("parameters", {}).get("retry_after"))
    except (ValueError, TypeError, AttributeError):
        retry_after = None
    description = answer.get("description")
    said = description if isinstance(description, str) else response.text
    # 400 (chat not found) and 403 (bot blocked) will not change by retrying
    permanent = response.status_code in (400, 401, 403, 404)
    return SendResult.failed(
        f"Bot API {response.status_code}: {said[:200]}",
        status_code=response.status_code,
        retry=not permanent,
        retry_after=retry_after,
        # flood control is the bot's: another chat sent to now would only prolong it
        pause_channel=response.status_code == 429,
        # the user blocked the bot (or left / deleted the chat): that chat is done
        address_gone=response.status_code == 403
        or (response.status_code == 400 and "chat not found" in said.lower()),
    )


async def bot_call(context: Any, method: str, payload: dict[str, Any]) -> httpx.Response:
    """One Bot API call, answer included within ``BOT_TIMEOUT`` (an ``httpx.TimeoutException``
    past it): httpx's timeout bounds each read, and an API (or proxy) trickling its answer
    would hold a sign-in's request or the deliveries job for as long as it liked. The
    answer is streamed and read to ``MAX_ANSWER`` bytes: past it, the call failed (an
    ``httpx.RemoteProtocolError``)."""
    import httpx

    settings = context.plugin_settings("notifications")
    token = settings.telegram_bot_token.get_secret_value()
    url = f"{settings.telegram_api_base_url.rstrip('/')}/bot{token}/{method}"
    try:
        async with (
            asyncio.timeout(BOT_TIMEOUT),
            httpx.AsyncClient(timeout=BOT_TIMEOUT, follow_redirects=False) as client,
            client.stream("POST", url, json=payload) as response,
        ):
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER:
                    raise httpx.RemoteProtocolError(
                        f"the Bot API answer is over {MAX_ANSWER} bytes", request=response.request
                    )
    except TimeoutError as exc:
        raise httpx.TimeoutException(f"no complete answer within {BOT_TIMEOUT} s") from exc
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _AS_SENT]
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


class TelegramChannel(NotificationChannel):
    name = "telegram"
    title = "Telegram"

    def __init__(self, rate_per_second: float | None = None) -> None:
        self.rate_per_second = rate_per_second

    def enabled(self, context: Crm2Context) -> bool:
        return bool(context.plugin_settings("notifications").telegram_bot_token.get_secret_value())

    async def addresses(
        self, user_ids: Collection[uuid.UUID], session: Any, context: Crm2Context
    ) -> Mapping[uuid.UUID, str]:
        """The users who linked a chat, by chat id."""
        chats = await people.telegram_chats(session, user_ids)
        return {user_id: str(chat) for user_id, chat in chats.items()}

    async def send(self, message: OutboundMessage, context: Crm2Context) -> SendResult:
        import httpx

        if not message.address:
            return SendResult.failed("the user has no linked Telegram chat", retry=False)
        payload = {
            "chat_id": int(message.address),
            "text": render_text(message),
            "disable_web_page_preview": True,
        }
        try:
            response = await bot_call(context, "sendMessage", payload)
        except httpx.HTTPError as exc:
            return SendResult.failed(f"{type(exc).__name__}: {exc}")
        return result_of(response)

    async def address_gone(
        self, user_id: uuid.UUID, address: str, reason: str, session: Any, context: Crm2Context
    ) -> None:
        """Disable the user's chat link (kept, so a sign-in confirmation still goes
        there and fails closed); ``/start <code>`` again makes a fresh one."""
        if address.lstrip("-").isdigit():
            await people.disable_chat(session, user_id, int(address), reason, clock.now(context))
