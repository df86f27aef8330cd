"""``chat``: notifications posted to a Slack-compatible incoming webhook.

One webhook URL (``CRM2_CONNECTORS_CHAT_WEBHOOK_URL``) per deployment. Each
user is addressed by a handle made from their e-mail's local part
(``anna.berg@example.com`` → ``@anna.berg``), sent as the message's
``channel``, which Slack's legacy webhooks and Mattermost read as "post to
this user". The text is Slack's ``mrkdwn``: ``&``, ``<`` and ``>`` are escaped
as the format requires, so a title with markup arrives as the text it was.

Slack's answers decide retries: 2xx delivered; 429 retried after its
``Retry-After``; 400/403/404/410 (``invalid_payload``, ``no_service``,
``channel_not_found``, ``channel_is_archived``) will not change, so no retry;
anything else and network errors are retried by the notifications plugin.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

import httpx
from crm2_notifications.hookspecs import NotificationChannel, OutboundMessage, SendResult

from crm2_core.api import user_emails
from crm2_hookspecs import Crm2Context

PERMANENT = {400, 403, 404, 410}


def escape(text: str) -> str:
    """Slack ``mrkdwn`` control characters, escaped as Slack's docs require."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(message: OutboundMessage) -> str:
    """The ``text`` of the post: bold title, body (or the digest as a list), a link."""
    lines = [f"*{escape(message.title)}*"]
    if message.digest:
        lines += [
            f"• {escape(t)}: {escape(b)}" if b else f"• {escape(t)}" for t, b in message.digest
        ]
    elif message.body:
        lines.append(escape(message.body))
    if message.link and message.link.startswith(("http://", "https://")):
        lines.append(f"<{message.link.replace('|', '%7C')}|Open in crm2>")
    return "\n".join(lines)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


class ChatChannel(NotificationChannel):
    name = "chat"
    title = "Team chat (Slack-compatible webhook)"
    rate_per_second = 1.0  # Slack allows about one message a second per webhook

    def enabled(self, context: Crm2Context) -> bool:
        return bool(context.plugin_settings("connectors").chat_webhook_url)

    async def addresses(
        self, user_ids: Collection[uuid.UUID], session: Any, context: Crm2Context
    ) -> Mapping[uuid.UUID, str]:
        """Every user with an e-mail address, as ``@<local part>``."""
        emails = await user_emails(session, user_ids)
        return {uid: "@" + email.split("@", 1)[0] for uid, email in emails.items() if email}

    async def send(self, message: OutboundMessage, context: Crm2Context) -> SendResult:
        settings = context.plugin_settings("connectors")
        payload: dict[str, Any] = {"text": render(message), "username": settings.chat_username}
        if message.address:
            payload["channel"] = message.address
        headers = {"X-Crm2-Delivery": str(message.delivery_id)}  # the same on every retry
        try:
            async with httpx.AsyncClient(timeout=settings.chat_timeout_seconds) as client:
                response = await client.post(
                    settings.chat_webhook_url, json=payload, headers=headers
                )
        except httpx.HTTPError as exc:
            return SendResult.failed(f"{type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return SendResult.delivered(code)
        reason = f"chat webhook answered {code}: {response.text[:200]}"
        if code == 429:
            return SendResult.failed(reason, status_code=code, retry_after=_retry_after(response))
        return SendResult.failed(reason, status_code=code, retry=code not in PERMANENT)
