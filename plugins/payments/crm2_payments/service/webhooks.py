"""Provider webhooks in the Standard Webhooks scheme (standardwebhooks.com).

Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds, within
CRM2_PAYMENTS_WEBHOOK_TOLERANCE_SECONDS of now) and ``webhook-signature``
(space-separated ``v1,<base64 HMAC-SHA256>``) over ``"{id}.{timestamp}.{raw body}"``
with the provider's secret (``whsec_<base64 key>``). Every configured secret of
the provider is tried, so a secret is rotated by adding the new one first. A bad
signature is 401 and changes nothing; a webhook id is applied once per provider
(a replay, even concurrent, answers ``applied: false``).

Body: ``{"type": "payment.succeeded" | "payment.refunded", "data": {"transaction_id",
"amount", "currency", and one of "payment_id", "payment_external_id", "reference"}}``.
The transaction id becomes the receipt's ``external_id`` for the provider. A refund is
identified by its ``refund_id`` when the payload has one (providers refund a charge in
parts, each under the charge's transaction id and a refund id of its own), else by the
transaction id: one refund per transaction unless the provider says which.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any

from pydantic import Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import Amount, Crm2Error, Currency, RequestModel, Unprocessable
from crm2_payments.errors import BadSignature, UnknownProvider
from crm2_payments.models import OPEN_STATUSES, Allocation, Payment, WebhookDelivery
from crm2_payments.schemas.payments import AllocationCreate
from crm2_payments.service import payments as payments_service
from crm2_payments.service.money import minor, text

# Unix seconds in ASCII digits (str.isdigit() takes "²", int() a 5,000-digit number)
_SECONDS = re.compile(r"[0-9]{1,12}")
KINDS = {"payment.succeeded": "payment", "payment.refunded": "refund"}
MANUAL = "manual"  # a payment's provider when none is known (``PaymentCreate``'s default)


class WebhookData(RequestModel):
    """The data of the event types we book; fields a provider adds are ignored."""

    model_config = {"extra": "ignore"}
    transaction_id: str = Field(min_length=1, max_length=200)
    amount: Amount
    currency: Currency
    payment_id: uuid.UUID | None = None
    payment_external_id: str | None = Field(None, max_length=200)
    reference: str | None = Field(None, max_length=140)
    # a refund's own id: the partial refunds of one transaction are told apart by it ("" as
    # none: a provider's empty field is no reason to refuse, and retry, the whole event)
    refund_id: str | None = Field(None, max_length=200)

    def external_id(self, kind: str) -> str:
        """The id the movement is booked under, once per provider and kind."""
        if kind == "refund" and self.refund_id:
            return self.refund_id
        return self.transaction_id


class WebhookBody(RequestModel):
    """Every event: only its type is read here; ``data`` of the types in ``KINDS`` is
    ``WebhookData``, that of other types (of whatever shape) is recorded as ignored."""

    model_config = {"extra": "ignore"}
    type: str = Field(max_length=100)


def parse(body: bytes) -> tuple[str, WebhookData | None]:
    """The event's type and, for a type we book, its data; 422 for anything else."""
    try:
        raw = json.loads(body)
        event_type = WebhookBody.model_validate(raw).type
        if event_type not in KINDS:
            return event_type, None
        return event_type, WebhookData.model_validate(raw.get("data"))
    except (ValueError, ValidationError, RecursionError) as exc:  # deep nesting: RecursionError
        raise Unprocessable(f"the webhook body is not a payment event: {str(exc)[:300]}") from None


def secrets_by_provider(setting: str) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for item in setting.split(","):
        provider, _, secret = item.strip().partition(":")
        if not provider or not secret:
            continue
        try:
            key = base64.b64decode(secret.strip().removeprefix("whsec_"), validate=True)
        except binascii.Error:
            continue
        found.setdefault(provider.strip(), []).append(key)
    return found


def sign(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(
    keys: list[bytes],
    headers: dict[str, str],
    body: bytes,
    tolerance: int,
    now: float | None = None,
) -> str:
    """The webhook id, or 401."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    well_formed = 0 < len(webhook_id) <= 255 and _SECONDS.fullmatch(timestamp) and signatures
    if not well_formed:
        raise BadSignature("webhook-id, webhook-timestamp and webhook-signature are required")
    if abs((now or time.time()) - int(timestamp)) > tolerance:
        raise BadSignature("the webhook timestamp is too far from now")
    offered = signatures.split()
    for key in keys:
        expected = sign(key, webhook_id, timestamp, body)
        if any(hmac.compare_digest(expected, s) for s in offered):
            return webhook_id
    raise BadSignature("no signature matches a secret of this provider")


async def _target(
    session: AsyncSession, provider: str, kind: str, data: WebhookData
) -> tuple[Payment | None, str]:
    """The payment the event names, else ``None`` and why (the delivery's result).

    A payment of another provider (``provider`` set to one not ``manual``) is never this
    provider's to book on. By reference, only open payments in the event's currency are
    candidates, this provider's before those without one (``manual``): a reference shared by
    payments in two currencies, or of two providers, finds the one meant; one that names
    only payments the event cannot be for is a rejection that says why.
    """
    if data.payment_id is not None:
        payment = await session.get(Payment, data.payment_id, populate_existing=True)
        if payment is None:
            return None, f"ignored: no payment {data.payment_id}"
        if payment.provider not in (provider, MANUAL):
            return None, f"rejected: payment {payment.id} is of provider {payment.provider!r}"
        return payment, ""
    if data.payment_external_id:
        stmt = select(Payment).where(
            col(Payment.provider) == provider, col(Payment.external_id) == data.payment_external_id
        )
        found = (await session.execute(stmt)).scalar_one_or_none()
        if found is None:
            return None, f"ignored: no payment with external id {data.payment_external_id!r}"
        return found, ""
    if not data.reference:
        return None, "ignored: the event names no payment_id, payment_external_id or reference"
    # a receipt is for a payment still owed; a refund for one with money on it (a paid one
    # is not open, and was never found for its refund)
    if kind == "refund":
        takes: Any = col(Payment.paid_minor) > col(Payment.refunded_minor)
    else:
        takes = col(Payment.status).in_(OPEN_STATUSES)
    named = (col(Payment.reference) == data.reference, takes)
    what = "open payment" if kind == "payment" else "payment with money on it"
    ref = data.reference[:60]
    for owner in (provider, MANUAL):
        stmt = (
            select(Payment)
            .where(*named, col(Payment.currency) == data.currency, col(Payment.provider) == owner)
            .limit(2)
        )
        candidates = list((await session.execute(stmt)).scalars())
        if len(candidates) == 1:
            return candidates[0], ""
        if candidates:
            return None, f"ignored: reference {ref!r} names more than one {what}"
    others = select(col(Payment.currency), col(Payment.provider)).where(*named).distinct().limit(5)
    seen = list(await session.execute(others))
    if not seen:
        return None, f"ignored: no {what} with reference {ref!r}"
    if all(currency != data.currency for currency, _ in seen):
        currencies = ", ".join(sorted({c for c, _ in seen}))
        return (
            None,
            f"rejected: reference {ref!r} is of payments in {currencies}, not {data.currency}",
        )
    providers = ", ".join(sorted({p for c, p in seen if c == data.currency}))
    return None, f"rejected: reference {ref!r} is of payments of provider {providers}"


def _known(allocation: Allocation, payment: Payment, move: AllocationCreate) -> str:
    """The result of an event whose movement was booked before: a replay says so; one of
    another amount (or payment) under the same id is no replay and is not booked either
    (a second partial refund needs its ``refund_id``): rejected, saying why."""
    amount = minor(move.amount, payment.currency)
    if allocation.payment_id == payment.id and allocation.amount_minor == amount:
        return "transaction known"
    booked = text(allocation.amount_minor, allocation.currency)
    where = "" if allocation.payment_id == payment.id else " on another payment"
    what = "refund_id" if allocation.kind == "refund" else "transaction_id"
    return (
        f"rejected: {move.external_id!r} was booked as a {allocation.kind} of {booked} "
        f"{allocation.currency}{where}"
        f", not {move.amount} {move.currency}: another {allocation.kind} needs its own {what}"
    )


async def receive(
    session: AsyncSession, context: Any, provider: str, headers: dict[str, str], body: bytes
) -> tuple[str, bool, str]:
    """``(webhook id, applied, result)``."""
    settings = context.plugin_settings("payments")
    keys = secrets_by_provider(settings.webhook_secrets.get_secret_value()).get(provider)
    if not keys:
        raise UnknownProvider(f"no webhook secret for provider {provider!r}")
    webhook_id = verify(keys, headers, body, settings.webhook_tolerance_seconds)
    event_type, data = parse(body)
    try:
        async with session.begin_nested():
            delivery = WebhookDelivery(provider=provider, webhook_id=webhook_id, type=event_type)
            session.add(delivery)
            await session.flush()
    except IntegrityError:
        return webhook_id, False, "applied before"
    kind = KINDS.get(event_type)
    if kind is None or data is None:
        delivery.result = f"ignored: type {event_type}"[:200]
        return webhook_id, True, delivery.result
    payment, why = await _target(session, provider, kind, data)
    if payment is None:
        delivery.result = why[:200]
        return webhook_id, True, delivery.result
    move = AllocationCreate(
        amount=data.amount,
        currency=data.currency,
        method=provider[:32],
        reference=(data.reference or "")[:140],
        provider=provider,
        external_id=data.external_id(kind),
    )
    try:
        async with session.begin_nested():
            allocation, created = await payments_service.move(session, None, payment, kind, move)
        result = f"{kind} {allocation.id}" if created else _known(allocation, payment, move)
        delivery.result = result[:200]
    except IntegrityError:
        delivery.result = "transaction known"
    except Crm2Error as exc:  # over-payment, over-refund, another currency: kept, not retried
        delivery.result = f"rejected: {exc}"[:200]
    await session.flush()
    return webhook_id, True, delivery.result
