"""``webhook``: the event POSTed to a subscriber's URL with Standard Webhooks signatures.

Headers ``webhook-id`` (the delivery id: the same on every retry), ``webhook-timestamp``
and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one
per listed secret, space-separated, so a secret rotates without downtime). Every
target passes the SSRF guard (``ssrf.py``) first; a redirect is a failed attempt
naming its ``Location``, never followed. A 429 or 503
answer's ``Retry-After`` (seconds or an HTTP date) sets the next attempt.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets as random_secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from crm2_hookspecs import Crm2Context
from crm2_notifications.channels import ssrf
from crm2_notifications.hookspecs import NotificationChannel, OutboundMessage, SendResult

# httpx is imported where a request is made: at the top it would add a tenth of a second
# of CPU to every `crm2 serve` start-up, which makes none.
if TYPE_CHECKING:
    import httpx

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(random_secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """A receiver's check (used by the tests and offered to subscribers' Python code)."""
    expected = sign([secret], headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return any(hmac.compare_digest(expected, sig) for sig in headers["webhook-signature"].split())


REDIRECTS = (301, 302, 303, 307, 308)


async def post(
    url: str, headers: dict[str, str], body: bytes, settings: Any, allow: bool = False
) -> httpx.Response:
    """POST through the guard, once: a redirect is never followed (the answer, a 3xx,
    comes back as it is). A webhook URL must answer itself; following would re-check
    every hop against SSRF and still send the signed body somewhere nobody registered
    (and a 303 asks for a GET without it). The answer comes back with its status and
    headers only (its body is never read)."""
    import httpx

    target = await ssrf.resolve(url, allow_private=allow)
    address = f"[{target.address}]" if ":" in target.address else target.address
    direct = f"{target.scheme}://{address}:{target.port}{target.path}"
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    timeout = settings.webhook_timeout_seconds
    # streamed, and closed unread: only the status and headers matter, and a
    # receiver's body (endless, trickled, gigabytes) must not hold this worker. httpx's
    # timeout is per read: the whole exchange has the same bound too, or a receiver
    # trickling its status line and headers a byte at a time holds the job for hours
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        client.stream(
            "POST",
            direct,
            content=body,
            headers={**headers, "Host": host},
            extensions=extensions,
        ) as response,
    ):
        pass
    return response


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delta-seconds or an HTTP date
    (RFC 9110 10.2.3); ``None`` when absent or unreadable (the usual backoff then). The
    delivery service caps it, as it does Telegram's ``retry_after``."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, as HTTP dates are
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WebhookChannel(NotificationChannel):
    name = "webhook"
    title = "Outbound webhook"

    async def send(self, message: OutboundMessage, context: Crm2Context) -> SendResult:
        import httpx

        secrets = list(message.extra.get("secrets") or [])
        if not message.address or not secrets:
            return SendResult.failed("the subscription is gone or inactive", retry=False)
        settings = context.plugin_settings("notifications")
        body = json.dumps(dict(message.event), separators=(",", ":"), default=str).encode()
        msg_id, stamp = str(message.delivery_id), int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "crm2-notifications",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secrets, msg_id, stamp, body),
        }
        try:
            response = await post(
                message.address, headers, body, settings, ssrf.allow_private(context)
            )
        except ssrf.ResolveTimedOut as exc:  # a name server slow now may answer later
            return SendResult.failed(str(exc))
        except ssrf.TargetRefused as exc:
            return SendResult.failed(f"refused: {exc}", retry=False)
        except httpx.HTTPError as exc:
            return SendResult.failed(f"{type(exc).__name__}: {exc}")
        except TimeoutError:
            return SendResult.failed(
                f"no complete answer within {settings.webhook_timeout_seconds} s"
            )
        if 200 <= response.status_code < 300:
            return SendResult.delivered(response.status_code)
        # 410 Gone: the subscriber wants no more (the subscription is switched off);
        # other codes may heal. A 429 or 503 may say when to come back (a 429 then does
        # not count toward max_attempts)
        asked = response.status_code in (429, 503)
        gone = response.status_code == 410
        error = f"HTTP {response.status_code}"
        if gone:
            error = "HTTP 410 Gone: the receiver wants no more"
        elif response.status_code in REDIRECTS:
            where = response.headers.get("location") or "none given"
            error += f": redirects are not followed; the URL must answer itself (Location: {where})"
        return SendResult.failed(
            error,
            status_code=response.status_code,
            retry=not gone,
            retry_after=retry_after(response.headers.get("retry-after")) if asked else None,
            address_gone=gone,
        )
