"""Sending queued deliveries: claim, rate-limit, send through the channel, record the outcome.

A delivery is claimed with a conditional UPDATE (``pending`` → ``sending``), so two
workers never send it twice; a claim left behind by a dead worker returns to
``pending`` after ``STALE_CLAIM`` — unless it was written ``IN_FLIGHT`` (committed just
before the channel is called): then a person's delivery is dead-lettered as ``UNKNOWN``
(at most once) and a webhook's is sent again under the same ``webhook-id`` (at least
once). A failed attempt is retried with exponential
backoff and jitter, up to ``max_attempts`` (a 429 waits its ``retry_after`` and does
not count: the service's own rate limit is no fault of the message; a 429 the channel
marks ``pause_channel`` holds the whole channel, in every worker, that long), then
dead-lettered; every attempt is in the delivery log and emits
``notifications.delivery.*``. A rate-limited
delivery is never dropped: over its user's limit it folds into the user's next
daily digest (``rate_limit_excess=digest``, the default) or is put back for when
a token is there (``queue``, and always for webhooks and a bot-wide limit). Quiet
hours are checked again whenever a person's delivery is due: a retry that falls in
them waits until they end. So are the person's rights: a delivery to someone who is
no longer active or no longer holds ``notifications:read`` is ``skipped``, never sent.
A delivery whose channel is not available here (not configured, its plugin gone) waits
``retry_max_seconds`` at a time, until it is older than ``retention_days``: then it is
dead-lettered (its one attempt logs why), and retention then prunes it with its entry.
While the rate limiter (Redis) does not answer nothing it limits is sent: the claimed
delivery is put back at once (``held``, no attempt counted: no fault of the message) for
after the limiter's growing back-off, and the job leaves the rest of its batch for later.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import SYSTEM, publish, user_permitted
from crm2_notifications import clock, quiet
from crm2_notifications.channels import registry
from crm2_notifications.errors import RateLimiterUnavailable
from crm2_notifications.events import DeliveryDeadLettered, DeliveryFailed, DeliverySucceeded
from crm2_notifications.hookspecs import (
    NotificationChannel,
    OutboundMessage,
    Recipient,
    SendResult,
)
from crm2_notifications.models import Delivery, DeliveryAttempt, Notification, Webhook
from crm2_notifications.repository import people
from crm2_notifications.service import webhooks

STALE_CLAIM = timedelta(minutes=10)
FOLDED = "over the rate limit: folded into the next daily digest"
READ = "notifications:read"
TOO_MANY_REQUESTS = 429
MAX_RETRY_AFTER = 7 * 24 * 3600.0  # the longest retry_max_seconds allows
UNPERMITTED = f"skipped: the recipient is no longer an active user holding {READ}"
PAUSED = "waiting: the service asked the whole channel to pause (429 retry_after)"
LIMITER_DOWN = "waiting: the rate limiter (Redis) is not answering"
# committed (own transaction) just before a message is handed to its channel: a claim
# left behind with it may have gone out, so it is never simply sent again
IN_FLIGHT = "in flight: handed to its channel, the outcome not written yet"
UNKNOWN = (
    "outcome unknown: handed to its channel, but the outcome was never written "
    "(the worker or its database failed); not sent again (at most once)"
)
RESENT = (
    "sent again: handed to the receiver before, but the outcome was never written; "
    "the same webhook-id lets the receiver drop a duplicate (at least once)"
)


def record_attempt(
    session: AsyncSession, delivery: Delivery, result: SendResult, now: datetime
) -> dict[str, Any]:
    """Count one more attempt of ``delivery`` (a ``DeliveryAttempt`` row): the fields every
    delivery event of it carries."""
    delivery.attempts += 1
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            ok=result.ok,
            status_code=result.status_code,
            error=result.error,
            at=now,
        )
    )
    return {
        "delivery_id": delivery.id,
        "channel": delivery.channel,
        "user_id": delivery.user_id,
        "webhook_id": delivery.webhook_id,
        "source_event_type": delivery.event_type,
        "attempts": delivery.attempts,
        "status_code": result.status_code,
    }


@asynccontextmanager
async def unit(context: Any, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
    """The caller's session (an event handler's: it commits), or a short one of our own.

    On SQLite a second writer would wait for the handler's transaction: never open one
    beside it.
    """
    if session is not None:
        yield session
        await session.flush()
        return
    async with context.session_factory() as own:
        yield own
        await own.commit()


def absolute(link: str | None, public_url: str) -> str | None:
    if link and link.startswith("/") and public_url:
        return public_url.rstrip("/") + link
    return link


async def recipient(session: AsyncSession, context: Any, user_id: uuid.UUID) -> Recipient | None:
    found = await people.active_people(session, [user_id])
    if user_id not in found:
        return None
    email, name = found[user_id]
    settings = (await people.user_settings(session, [user_id])).get(user_id)
    default = context.plugin_settings("notifications").default_timezone
    zone = quiet.zone(settings.timezone if settings else None, default).key
    return Recipient(user_id=user_id, email=email, full_name=name, timezone=zone)


async def quiet_until(
    session: AsyncSession, context: Any, user_id: uuid.UUID | None, now: datetime
) -> datetime:
    """``now``, or the end of the quiet hours of the user ``now`` falls in (as they are now)."""
    row = (await people.user_settings(session, [user_id])).get(user_id) if user_id else None
    if row is None:
        return now
    default = context.plugin_settings("notifications").default_timezone
    return quiet.release_at(now, quiet.zone(row.timezone, default), row.quiet_start, row.quiet_end)


async def may_receive(session: AsyncSession, context: Any, user_id: uuid.UUID | None) -> bool:
    """Whether a person may still be sent their notifications (a webhook's delivery: yes):
    active and holding ``notifications:read`` through their roles as they are now."""
    return user_id is None or await user_permitted(context, session, user_id, READ)


async def _message(session: AsyncSession, context: Any, delivery: Delivery) -> OutboundMessage:
    settings = context.plugin_settings("notifications")
    common: dict[str, Any] = {
        "delivery_id": delivery.id,
        "channel": delivery.channel,
        "event_type": delivery.event_type,
        "attempt": delivery.attempts + 1,
    }
    if delivery.webhook_id is not None:
        hook = await session.get(Webhook, delivery.webhook_id)
        live = hook is not None and hook.active
        return OutboundMessage(
            **common,
            title=delivery.event_type,
            body="",
            event=delivery.payload or {},
            webhook_id=delivery.webhook_id,
            address=hook.url if hook and live else None,
            extra={"secrets": list(hook.secrets) if hook and live else []},
        )
    note = await session.get(Notification, delivery.notification_id)
    who = await recipient(session, context, delivery.user_id) if delivery.user_id else None
    address = None
    channel = registry(context).get(delivery.channel)
    if who is not None and channel is not None:
        address = (await channel.addresses([who.user_id], session, context)).get(who.user_id)
    return OutboundMessage(
        **common,
        recipient=who,
        address=address,
        title=note.title if note else delivery.event_type,
        body=note.body if note else "",
        link=absolute(note.link if note else None, settings.public_url),
    )


async def rate_wait(context: Any, channel: NotificationChannel, key: str) -> tuple[float, str]:
    """Seconds until both the per-key and the channel-wide bucket give a token (0: now),
    and which bucket said no: ``"user"`` (per user or subscription) or ``"channel"``.
    A "no" of the channel gives the per-key token back: a delivery the bot-wide limit
    holds must not use up its user's own limit (and fold into their digest)."""
    from crm2_notifications.ratelimit import buckets_for

    settings = context.plugin_settings("notifications")
    buckets = buckets_for(context)
    wait = await buckets.take(
        f"{channel.name}:{key}", settings.rate_per_minute / 60.0, settings.rate_burst
    )
    if wait > 0:
        return wait, "user"
    if channel.rate_per_second:
        wait = await channel_token(context, channel)
        if wait > 0:  # not sent now: the user's token was not used
            await buckets.refund(f"{channel.name}:{key}", settings.rate_burst)
        return wait, "channel"
    return 0.0, "user"


async def channel_token(context: Any, channel: NotificationChannel) -> float:
    """Take a token of the channel-wide bucket (a bot's ``rate_per_second``): 0.0 when
    taken (or the channel has no such limit), else the seconds until one is there. Every
    message of the channel takes one — deliveries, and the bot's sign-in questions and
    webhook answers — since the service limits them all together."""
    from crm2_notifications.ratelimit import buckets_for

    rate = channel.rate_per_second
    if not rate:
        return 0.0
    return await buckets_for(context).take(f"{channel.name}:*", rate, max(1, int(rate)))


def _pause_key(channel: NotificationChannel) -> str:
    return f"pause:{channel.name}"


async def paused_until(context: Any, channel: NotificationChannel, now: datetime) -> datetime:
    """``now``, or when the channel's pause after its service's "too many requests" ends."""
    from crm2_notifications.ratelimit import buckets_for

    # what is left of it, on the store's clock (Redis's TTL): never a date another
    # machine wrote, which this one's clock would compare off by their difference
    left = await buckets_for(context).pause_left(_pause_key(channel))
    return now + timedelta(seconds=left) if left > 0 else now


async def note_pause(context: Any, channel: NotificationChannel, result: SendResult) -> None:
    """A 429 for the whole channel (a bot's flood control) holds every delivery of it,
    in every worker (a Redis key), for ``retry_after``: sending to other chats meanwhile
    is what Telegram punishes with longer bans."""
    from crm2_notifications.ratelimit import buckets_for

    delay = asked_delay(result)
    if result.pause_channel and not result.ok and delay > 0:
        # limiter down: logged by it; the message's own retry still waits retry_after
        with suppress(RateLimiterUnavailable):
            await buckets_for(context).pause(_pause_key(channel), delay)


def asked_delay(result: SendResult) -> float:
    """The service's ``retry_after``, within a week (an answer of 10**12 seconds, or NaN,
    must not make a date the database cannot hold and fail every send after it)."""
    asked = result.retry_after or 0.0
    return min(asked, MAX_RETRY_AFTER) if math.isfinite(asked) and asked > 0 else 0.0


def backoff(context: Any, attempts: int) -> float:
    settings = context.plugin_settings("notifications")
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    return float(delay * random.uniform(0.5, 1.0))


async def send_due(
    context: Any,
    *,
    event_id: uuid.UUID | None = None,
    now: datetime | None = None,
    session: AsyncSession | None = None,
    limit: int | None = None,
) -> Counter[str]:
    """Send every due ``pending`` delivery (of ``event_id`` only, when given), at most ``limit``.

    With ``session`` (an event handler's) every send shares one transaction: keep
    ``limit`` small there, the ``deliveries`` job sends the rest one transaction each.
    """
    now = now or clock.now(context)
    batch = limit or context.plugin_settings("notifications").delivery_batch
    async with unit(context, session) as db:
        await recover_stale(db, now)
        stmt = select(col(Delivery.id)).where(
            col(Delivery.status) == "pending", col(Delivery.next_attempt_at) <= now
        )
        if event_id is not None:
            stmt = stmt.where(col(Delivery.event_id) == event_id)
        ordered = stmt.order_by(col(Delivery.next_attempt_at)).limit(batch)
        ids = list((await db.execute(ordered)).scalars())
    outcomes: Counter[str] = Counter()
    for delivery_id in ids:
        outcome = await send_one(context, delivery_id, now, session)
        outcomes[outcome] += 1
        if outcome == "held":  # the limiter is down: the rest would only wait for it too
            break
    return outcomes


async def recover_stale(db: AsyncSession, now: datetime) -> None:
    """Claims of a dead worker (or one whose database failed): never handed to the channel
    — due again; handed to it (``IN_FLIGHT``) — a person's message (a digest's too) is
    dead-lettered as ``UNKNOWN`` (an attempt in the log, ``delivery.dead_lettered``)
    rather than maybe sent twice (at most once), a webhook's
    is sent again under the same ``webhook-id`` (at least once: the receiver dedups)."""
    stale = (col(Delivery.status) == "sending", col(Delivery.updated_at) < now - STALE_CLAIM)
    in_flight = col(Delivery.last_error) == IN_FLIGHT
    await db.execute(
        update(Delivery)
        .where(*stale, or_(col(Delivery.last_error).is_(None), ~in_flight))
        .values(status="pending")
    )
    await db.execute(
        update(Delivery)
        .where(*stale, in_flight, col(Delivery.webhook_id).is_not(None))
        .values(status="pending", last_error=RESENT)
    )
    gone = await db.execute(
        update(Delivery)
        .where(*stale, in_flight, col(Delivery.webhook_id).is_(None))
        .values(status="dead", last_error=UNKNOWN, updated_at=now)
        .returning(col(Delivery.id))
        .execution_options(synchronize_session=False)
    )
    for delivery_id in list(gone.scalars()):  # in the log, and told, as any dead letter
        delivery = await _load(db, delivery_id)
        common = record_attempt(db, delivery, SendResult.failed(UNKNOWN, retry=False), now)
        publish(
            db, DeliveryDeadLettered(**common, error=UNKNOWN), subject=delivery.id, actor=SYSTEM
        )


async def _claim(
    context: Any, delivery_id: uuid.UUID, now: datetime, session: AsyncSession | None
) -> bool:
    async with unit(context, session) as db:
        result = await db.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, col(Delivery.status) == "pending")
            .values(status="sending", updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


async def _load(db: AsyncSession, delivery_id: uuid.UUID) -> Delivery:
    delivery = await db.get(Delivery, delivery_id, populate_existing=True)
    assert delivery is not None
    return delivery


async def send_one(
    context: Any, delivery_id: uuid.UUID, now: datetime, session: AsyncSession | None = None
) -> str:
    """``delivered`` | ``failed`` | ``dead`` | ``deferred`` / ``folded`` (rate limit: re-queued,
    or moved to the digest) | ``held`` (the rate limiter is down: re-queued for after its
    back-off) | ``skipped`` (claimed elsewhere, or its person lost the right)."""
    if not await _claim(context, delivery_id, now, session):
        return "skipped"
    async with unit(context, session) as db:
        delivery = await _load(db, delivery_id)
        if not await may_receive(db, context, delivery.user_id):
            await skip(db, [delivery_id], now)
            return "skipped"
        message = await _message(db, context, delivery)
        release = await quiet_until(db, context, delivery.user_id, now)
    channel = registry(context).get(delivery.channel)
    if release > now:  # a retry or a re-queued one in the user's quiet hours: after them
        await _requeue(context, delivery_id, release, session)
        return "deferred"
    if channel is None or not channel.enabled(context):  # not configured: wait, as documented
        reason = f"channel {delivery.channel!r} is not available here"
        if waited_long(context, delivery, now):
            gone = SendResult.failed(f"{reason} for longer than the retention", retry=False)
            return await record(context, delivery_id, gone, now, session)
        later = now + timedelta(seconds=context.plugin_settings("notifications").retry_max_seconds)
        await _requeue(context, delivery_id, later, session, last_error=reason)
        return "deferred"
    if delivery.user_id is not None and message.recipient is None:
        result = SendResult.failed("the recipient is no longer an active user", retry=False)
    else:
        try:
            resume = await paused_until(context, channel, now)
            key = str(delivery.user_id or delivery.webhook_id)
            # no token taken while the service told the whole channel to wait
            wait, bucket = (0.0, "user") if resume > now else await rate_wait(context, channel, key)
        except RateLimiterUnavailable as down:  # given back now, not after STALE_CLAIM
            later = now + timedelta(seconds=down.seconds * random.uniform(1.0, 1.5))
            await _requeue(context, delivery_id, later, session, last_error=LIMITER_DOWN)
            return "held"
        if resume > now:
            await _requeue(context, delivery_id, resume, session, last_error=PAUSED)
            return "deferred"
        if wait > 0 and bucket == "user" and folds(context, delivery):
            await _fold(context, delivery_id, now, session)
            return "folded"
        if wait > 0:
            await _requeue(context, delivery_id, now + timedelta(seconds=wait), session)
            return "deferred"
        await _in_flight(context, delivery_id, now, session)
        try:
            result = await channel.send(message, context)
        except Exception as exc:  # a channel must not raise; a bug in one must not stop the rest
            result = SendResult.failed(f"{type(exc).__name__}: {exc}")
        await note_pause(context, channel, result)
    try:
        return await record(context, delivery_id, result, now, session, address=message.address)
    except Exception:
        if result.ok and session is None:  # at least never sent again (nor dead-lettered)
            with suppress(Exception):
                await _mark_sent(context, delivery_id, now)
        raise


async def _in_flight(
    context: Any, delivery_id: uuid.UUID, now: datetime, session: AsyncSession | None
) -> None:
    """Write, before the message is handed to its channel, that it is (its own transaction,
    unless a handler's is given): a claim that outlives its worker is then never sent again."""
    async with unit(context, session) as db:
        await db.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, col(Delivery.status) == "sending")
            .values(last_error=IN_FLIGHT, updated_at=now)
        )


async def _mark_sent(context: Any, delivery_id: uuid.UUID, now: datetime) -> None:
    """A sent delivery whose outcome (attempt row, event) could not be written: a bare
    ``delivered``, so it is neither sent again nor dead-lettered as unknown."""
    async with context.session_factory() as db:
        await db.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id, col(Delivery.status) == "sending")
            .values(status="delivered", delivered_at=now, updated_at=now, last_error=None)
        )
        await db.commit()


def waited_long(context: Any, delivery: Delivery, now: datetime) -> bool:
    """Whether a delivery waiting for its channel is older than the retention: it is
    dead-lettered then (and pruned with its entry), not kept waiting forever."""
    days = context.plugin_settings("notifications").retention_days
    created = delivery.created_at
    if created.tzinfo is None:  # SQLite gives back naive UTC
        created = created.replace(tzinfo=UTC)
    return days > 0 and created < now - timedelta(days=days)


async def skip(db: AsyncSession, ids: list[uuid.UUID], now: datetime) -> None:
    """Mark deliveries ``skipped`` (their person lost the right to them), the reason logged."""
    await db.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(ids))
        .values(status="skipped", last_error=UNPERMITTED, updated_at=now)
    )


def folds(context: Any, delivery: Delivery) -> bool:
    """Whether a delivery over its user's limit waits for the daily digest (a person's
    message with a notification to fold; a webhook's or a bot-wide excess is re-queued)."""
    excess = context.plugin_settings("notifications").rate_limit_excess
    return bool(excess == "digest" and delivery.user_id and delivery.notification_id)


async def _fold(
    context: Any, delivery_id: uuid.UUID, now: datetime, session: AsyncSession | None
) -> None:
    async with unit(context, session) as db:
        await db.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(status="digest", last_error=FOLDED, updated_at=now)
        )


async def _requeue(
    context: Any,
    delivery_id: uuid.UUID,
    at: datetime,
    session: AsyncSession | None,
    **values: Any,
) -> None:
    async with unit(context, session) as db:
        await db.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(status="pending", next_attempt_at=at, **values)
        )


async def _rate_limited(db: AsyncSession, delivery_id: uuid.UUID) -> int:
    """The delivery's attempts the service answered 429: its limit, not the message's fault."""
    stmt = select(func.count()).where(
        col(DeliveryAttempt.delivery_id) == delivery_id,
        col(DeliveryAttempt.status_code) == TOO_MANY_REQUESTS,
    )
    return int((await db.execute(stmt)).scalar_one())


async def record(
    context: Any,
    delivery_id: uuid.UUID,
    result: SendResult,
    now: datetime,
    session: AsyncSession | None = None,
    address: str | None = None,
) -> str:
    """Write the attempt, the delivery's new state and its event, in one transaction
    (and, when the channel says ``address`` is gone for good, its forgetting it)."""
    max_attempts = context.plugin_settings("notifications").max_attempts
    async with unit(context, session) as db:
        session = db
        delivery = await _load(db, delivery_id)
        channel = registry(context).get(delivery.channel)
        reason = result.error or "the address refused the message for good"
        if result.address_gone and address and delivery.user_id and channel is not None:
            await channel.address_gone(delivery.user_id, address, reason, db, context)
        elif result.address_gone and delivery.webhook_id is not None:  # 410 Gone
            await webhooks.switch_off(db, delivery.webhook_id, reason, now)
        common = record_attempt(session, delivery, result, now)
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        delivery.updated_at = now
        if result.ok:
            outcome = "delivered"
            delivery.status, delivery.delivered_at = "delivered", now
            publish(session, DeliverySucceeded(**common), subject=delivery.id, actor=SYSTEM)
        elif not result.retry or (
            result.status_code != TOO_MANY_REQUESTS
            and delivery.attempts - await _rate_limited(db, delivery.id) >= max_attempts
        ):
            outcome = "dead"
            delivery.status = "dead"
            error = result.error or "failed"
            publish(
                session,
                DeliveryDeadLettered(**common, error=error),
                subject=delivery.id,
                actor=SYSTEM,
            )
        else:
            outcome = "failed"
            delay = max(asked_delay(result), backoff(context, delivery.attempts))
            delivery.status = "pending"
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            publish(
                session,
                DeliveryFailed(
                    **common,
                    error=result.error or "failed",
                    next_attempt_at=delivery.next_attempt_at.isoformat(),
                ),
                subject=delivery.id,
                actor=SYSTEM,
            )
    return outcome
