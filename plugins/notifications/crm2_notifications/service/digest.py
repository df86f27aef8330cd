"""Daily digests: a user's ``digest`` deliveries folded into one message per channel.

Due once the user's local ``digest_hour`` has come (their zone, DST included)
and no digest went out that local day, and never in the user's quiet hours: one
due in them waits until they end. The day is claimed with a conditional
UPDATE, so two processes never send the same digest. A digest that fails stays
one digest: its deliveries stay ``digest``, wait the usual backoff and go again
together (the day's claim given back), dead-lettered once their attempts are used up. One due
while its channel is paused after a 429 (or answered 429 itself) is not a failure:
its deliveries stay ``digest`` and the day's claim is given back, so a later run of
the job sends them as one digest once the pause is over (the same day, or with the
next day's digest if the pause outlasts it). So is one that finds no token of its
channel's bot-wide bucket (``telegram_rate_per_second``): digests fall due together at
the digest hour, and must not go past the limit. And so is one while the rate limiter
(Redis) does not answer. The deliveries of a user no longer
active or holding ``notifications:read`` are skipped.

One whose channel is not configured here waits like a single delivery (no attempt
counted), dead-lettered once older than ``retention_days``.

Any other failure of a user's digest (the database refusing a read or the outcome's
write) gives the day back too, so the digest goes on a later run, not a day late; the
other users' digests still go, and the run is reported failed (logged) at its end. A
digest that went out but whose outcome could not be written is still marked
``delivered`` (a bare update, no attempt row nor event): giving the day back must not
send it twice. Even when that fails it is not sent again, today or later: its deliveries
left ``digest`` (``sending``, ``IN_FLIGHT``, committed) before it was handed to its
channel, and a stale claim of them is dead-lettered as an unknown outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from contextlib import suppress
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import SYSTEM, publish
from crm2_notifications import clock, quiet
from crm2_notifications.channels import registry
from crm2_notifications.errors import RateLimiterUnavailable
from crm2_notifications.events import DeliveryDeadLettered, DeliveryFailed, DeliverySucceeded
from crm2_notifications.hookspecs import OutboundMessage, SendResult
from crm2_notifications.models import Delivery, Notification, UserSettings
from crm2_notifications.repository import people
from crm2_notifications.service.delivery import (
    IN_FLIGHT,
    asked_delay,
    backoff,
    channel_token,
    may_receive,
    note_pause,
    paused_until,
    recipient,
    record_attempt,
    skip,
    waited_long,
)

log = logging.getLogger(__name__)
DIGEST_NS = uuid.UUID("8b0e7c36-55a4-4c1e-9d61-0c7f1b2a9e10")
IN_HAND = ("digest", "sending")


async def _claim_day(session: AsyncSession, user_id: uuid.UUID, day: date) -> bool:
    result = await session.execute(
        update(UserSettings)
        .where(
            col(UserSettings.user_id) == user_id,
            or_(col(UserSettings.last_digest_on).is_(None), col(UserSettings.last_digest_on) < day),
        )
        .values(last_digest_on=day)
    )
    if getattr(result, "rowcount", 0) == 1:
        return True
    if await session.get(UserSettings, user_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(UserSettings(user_id=user_id, last_digest_on=day))
    except IntegrityError:
        return False
    return True


async def send_digests(context: Any, now: datetime | None = None) -> int:
    """Send the due digests; returns how many messages went out."""
    now = now or clock.now(context)
    settings = context.plugin_settings("notifications")
    async with context.session_factory() as session:
        stmt = (
            select(col(Delivery.user_id))
            .where(col(Delivery.status) == "digest", col(Delivery.next_attempt_at) <= now)
            .distinct()
        )
        users = [u for u in (await session.execute(stmt)).scalars() if u is not None]
        by_user = await people.user_settings(session, users)
    sent, failed = 0, 0
    for user_id in users:
        row = by_user.get(user_id)
        tz = quiet.zone(row.timezone if row else None, settings.default_timezone)
        day = quiet.digest_due(
            now,
            tz,
            settings.digest_hour,
            row.last_digest_on if row else None,
            row.quiet_start if row else None,
            row.quiet_end if row else None,
        )
        if day is None:
            continue
        async with context.session_factory() as session:
            if not await _claim_day(session, user_id, day):
                continue
            await session.commit()
        try:
            done, held, broke = await _send_user(context, user_id, day, now)
        except _SentUnrecorded:  # keeping the day is what keeps it from going twice today
            log.exception("notifications: a digest to %s went out unrecorded", user_id)
            failed += 1
            continue
        except Exception:  # nothing of it went out: the day is due again
            log.exception("notifications: the digest to %s failed", user_id)
            done, held, broke = 0, True, True
        sent += done
        failed += int(broke)
        if held:  # a channel was paused, or it failed: that part goes on a later run
            await _release_day(context, user_id, day, row.last_digest_on if row else None)
    if failed:  # the scheduler logs the job as failed
        raise RuntimeError(f"{failed} digest(s) failed, {sent} sent (logged above)")
    return sent


class _SentUnrecorded(Exception):
    """A digest went out, but neither its outcome nor its "delivered" could be written (its
    deliveries stay ``sending`` in flight: never sent again, dead-lettered as unknown)."""


async def _release_day(context: Any, user_id: uuid.UUID, day: date, previous: date | None) -> None:
    """Give back the day's claim (only if it is still ours): the digest is due again."""
    async with context.session_factory() as session:
        await session.execute(
            update(UserSettings)
            .where(col(UserSettings.user_id) == user_id, col(UserSettings.last_digest_on) == day)
            .values(last_digest_on=previous)
        )
        await session.commit()


async def _send_user(
    context: Any, user_id: uuid.UUID, day: date, now: datetime
) -> tuple[int, bool, bool]:
    """The digests sent to the user (one per channel), whether one was held back (its
    channel is paused, or it is to be retried: its deliveries stay ``digest``), and
    whether one failed beyond its channel (its outcome could not be written)."""
    async with context.session_factory() as session:
        stmt = (
            select(Delivery, Notification)
            .join(Notification, col(Notification.id) == col(Delivery.notification_id))
            .where(
                col(Delivery.user_id) == user_id,
                col(Delivery.status) == "digest",
                col(Delivery.next_attempt_at) <= now,
            )
            .order_by(col(Delivery.created_at))
        )
        groups: dict[str, list[tuple[uuid.UUID, str, str]]] = defaultdict(list)
        waited_out: set[uuid.UUID] = set()
        for delivery, note in (await session.execute(stmt)).all():
            groups[delivery.channel].append((delivery.id, note.title, note.body))
            if waited_long(context, delivery, now):
                waited_out.add(delivery.id)
        if not await may_receive(session, context, user_id):
            await skip(session, [i for items in groups.values() for i, _t, _b in items], now)
            await session.commit()
            return 0, False, False
        who = await recipient(session, context, user_id)
        addresses: dict[str, str | None] = {}
        for name in groups:
            channel = registry(context).get(name)
            if channel is not None:
                addresses[name] = (await channel.addresses([user_id], session, context)).get(
                    user_id
                )
    sent, held, broke = 0, False, False
    for name, items in groups.items():
        channel = registry(context).get(name)
        message = OutboundMessage(
            address=addresses.get(name),
            delivery_id=uuid.uuid5(DIGEST_NS, f"{user_id}:{name}:{day}"),
            channel=name,
            title=f"crm2: {len(items)} notification(s) of {day.isoformat()}",
            body="",
            event_type="notifications.digest",
            recipient=who,
            digest=tuple((title, body) for _id, title, body in items),
        )
        if channel is None or not channel.enabled(context):  # not configured: it waits
            await _give_up_waiting(context, name, items, waited_out, now)
            held = True
            continue
        if who is None:
            result = SendResult.failed("the recipient is unavailable")
        elif await _must_wait(context, channel, now):
            held = True
            continue
        else:
            # committed first: should neither its outcome nor its "delivered" be written,
            # the deliveries are no longer ``digest`` and never go out again
            await _in_flight(context, [i for i, _t, _b in items], now)
            try:
                result = await channel.send(message, context)
            except Exception as exc:
                result = SendResult.failed(f"{type(exc).__name__}: {exc}")
            await note_pause(context, channel, result)
            if result.pause_channel and not result.ok:  # flood control: the same, later
                await _back_to_digest(context, [i for i, _t, _b in items])
                held = True
                continue
        ids = [i for i, _t, _b in items]
        try:
            if not await _record(context, ids, result, now):
                held = True  # to be retried as one digest: the day is due again
        except Exception:
            log.exception("notifications: %s digest to %s: outcome not written", name, user_id)
            held = broke = True
            if result.ok:
                await _mark_sent(context, ids, now)
            else:  # nothing went out: it goes again as one digest
                with suppress(Exception):
                    await _back_to_digest(context, ids)
        sent += int(result.ok)
    return sent, held, broke


async def _in_flight(context: Any, ids: list[uuid.UUID], now: datetime) -> None:
    """Take the digest's deliveries out of ``digest`` (``sending``, ``IN_FLIGHT``) in a
    transaction of their own, before the digest is handed to its channel."""
    async with context.session_factory() as session:
        await session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), col(Delivery.status) == "digest")
            .values(status="sending", last_error=IN_FLIGHT, updated_at=now)
        )
        await session.commit()


async def _back_to_digest(context: Any, ids: list[uuid.UUID]) -> None:
    """The digest did not go out (flood control, or a failure whose outcome could not be
    written): its deliveries wait for the next digest again."""
    async with context.session_factory() as session:
        await session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), col(Delivery.status) == "sending")
            .values(status="digest", last_error=None)
        )
        await session.commit()


async def _mark_sent(context: Any, ids: list[uuid.UUID], now: datetime) -> None:
    """A sent digest whose outcome could not be written: at least never sent again."""
    try:
        async with context.session_factory() as session:
            await session.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(ids), col(Delivery.status).in_(IN_HAND))
                .values(status="delivered", delivered_at=now, updated_at=now, last_error=None)
            )
            await session.commit()
    except Exception as exc:
        raise _SentUnrecorded from exc


async def _give_up_waiting(
    context: Any,
    name: str,
    items: list[tuple[uuid.UUID, str, str]],
    waited_out: set[uuid.UUID],
    now: datetime,
) -> None:
    """Dead-letter the deliveries that waited for their channel past the retention, as
    a single delivery's wait ends (the rest keep waiting, no attempt counted)."""
    old = [i for i, _t, _b in items if i in waited_out]
    if old:
        reason = f"channel {name!r} is not available here for longer than the retention"
        await _record(context, old, SendResult.failed(reason, retry=False), now)


async def _must_wait(context: Any, channel: Any, now: datetime) -> bool:
    """Whether the channel's digest waits for a later run: the channel is paused (one
    digest, after the pause), or has no token of its bot-wide bucket (digests come
    together at the digest hour and must not go past the limit), or the limiter is down."""
    try:
        return await paused_until(context, channel, now) > now or (
            await channel_token(context, channel) > 0
        )
    except RateLimiterUnavailable:
        return True


async def _record(context: Any, ids: list[uuid.UUID], result: SendResult, now: datetime) -> bool:
    """The digest's outcome on each of its deliveries: delivered, or — failed — kept as
    ``digest`` to go again as one message after the backoff (single messages each would
    be what the user chose not to get), dead-lettered once its attempts are used up.
    Whether it is settled (``False``: it is to be retried)."""
    max_attempts = context.plugin_settings("notifications").max_attempts
    async with context.session_factory() as session:
        rows = (await session.execute(select(Delivery).where(col(Delivery.id).in_(ids)))).scalars()
        retrying = False
        for delivery in rows:
            delivery.updated_at = now
            delivery.last_status_code, delivery.last_error = result.status_code, result.error
            common = record_attempt(session, delivery, result, now)
            error = result.error or "failed"
            if result.ok:  # each delivery's own event, as a single delivery's success has
                delivery.status, delivery.delivered_at = "delivered", now
                publish(session, DeliverySucceeded(**common), subject=delivery.id, actor=SYSTEM)
            elif not result.retry or delivery.attempts >= max_attempts:
                delivery.status = "dead"
                event: Any = DeliveryDeadLettered(**common, error=error)
                publish(session, event, subject=delivery.id, actor=SYSTEM)
            else:  # one digest again, after the backoff
                retrying = True
                delivery.status = "digest"
                delay = max(asked_delay(result), backoff(context, delivery.attempts))
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                at = delivery.next_attempt_at.isoformat()
                event = DeliveryFailed(**common, error=error, next_attempt_at=at)
                publish(session, event, subject=delivery.id, actor=SYSTEM)
        await session.commit()
    return not retrying
