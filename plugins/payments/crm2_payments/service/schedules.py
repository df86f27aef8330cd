"""Premium schedules from deals' policy events, read by event type name (no import of deals).

- ``deals.policy.created`` tells the insurer (kept in ``payments_policy_ref``).
- ``deals.policy.activated`` splits the premium into instalments by frequency
  (annual 1, semi_annual 2, quarterly 4, monthly 12), exact to the minor unit,
  the remainder on the first instalment; instalment *i* is due *i* periods after
  the start date (the day clamped to the month's end); an instalment that would be
  0.00 (a premium smaller than the count, or none) is not made. One schedule per policy:
  a redelivered or repeated activation creates nothing. The instalments belong to the
  policy's owner as deals has it when the event is handled (a retry after a hand-over
  must not give them to the previous owner). An owner who may not own payments
  (``payments:write`` less a hook's veto, the rule of creating a payment) gets no
  schedule: none is made yet, and a warning says why; the activation is held
  (``payments_policy_ref.held_activation``) and built by the first hand-over of the policy,
  still active, to an owner who may (``build_held_schedule``), or by an admin's
  ``POST /schedules/held/build`` once the owner may (their role gained ``payments:write``).
- ``deals.policy.updated`` with ``owner_id`` among its ``changed``: the policy was handed
  to another agent, and its payments follow it (the README's rule: a payment's owner
  is the owner of its record) — the instalments of its schedule, and the payments
  linked to it. The owner is read from deals when the
  event is handled, so a redelivered or late hand-over leaves them with the policy's
  owner of now; an owner who may not own payments (no ``payments:write``) gets none
  of them, they stay (and a warning says why). Changes of the premium, number or
  product do not touch the schedule (deals' event does not carry the new values; the
  README promises no re-split).
- ``deals.policy.cancelled`` cancels the instalments due after today that have
  no money on them; what was paid stays (refund it by hand if owed).

Without deals these events never arrive and none of this runs.
"""

from __future__ import annotations

import calendar
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import check_currency, publish, resolve_entity, utcnow
from crm2_payments.errors import InvalidAmount
from crm2_payments.events import ScheduleCreated
from crm2_payments.models import FREQUENCIES, Payment, PolicyRef, Schedule
from crm2_payments.schemas.payments import PaymentCancel, SchedulePublic
from crm2_payments.service import owners
from crm2_payments.service import payments as payments_service
from crm2_payments.service.money import minor, split, text
from crm2_payments.service.records import take_record_turn

POLICY_CREATED = "deals.policy.created"
POLICY_ACTIVATED = "deals.policy.activated"
POLICY_UPDATED = "deals.policy.updated"
POLICY_CANCELLED = "deals.policy.cancelled"
POLICY = "deals.policy"
EVENT_TYPES = (POLICY_CREATED, POLICY_ACTIVATED, POLICY_UPDATED, POLICY_CANCELLED)
log = logging.getLogger(__name__)


def schedule_public(s: Schedule) -> SchedulePublic:
    return SchedulePublic.model_validate(
        {**s.model_dump(exclude={"premium_minor"}), "premium": text(s.premium_minor, s.currency)}
    )


def add_months(start: date, months: int) -> date:
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_dates(start: date, frequency: str) -> list[date]:
    count = FREQUENCIES[frequency]
    step = 12 // count
    return [add_months(start, i * step) for i in range(count)]


async def remember_policy(session: AsyncSession, policy_id: str, data: dict[str, Any]) -> None:
    insurer = str(data.get("insurer") or "")[:200]
    product = str(data.get("product") or "")[:200]
    number = str(data.get("number") or "")[:100]
    ref = await session.get(PolicyRef, policy_id)
    if ref is None:
        session.add(PolicyRef(policy_id=policy_id, insurer=insurer, product=product, number=number))
    else:
        ref.insurer, ref.product, ref.number = insurer, product, number
    # an activation handled before this event: give its schedule the insurer now
    await session.execute(
        update(Schedule)
        .where(col(Schedule.policy_id) == policy_id, col(Schedule.insurer) == "")
        .values(insurer=insurer)
    )
    await session.execute(
        update(Payment)
        .where(col(Payment.policy_id) == policy_id, col(Payment.insurer) == "")
        .values(insurer=insurer, product=product)
    )
    await session.flush()


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def policy_owner(
    session: AsyncSession, context: Any, policy_id: str, data: dict[str, Any]
) -> uuid.UUID | None:
    """The policy's owner as deals has it now, else the one the event names: an event
    handled late (a retry after the hand-over's event) must not give the payments back."""
    policy = None
    if context is not None:
        policy = await resolve_entity(context, POLICY, policy_id, None, session)
    return _uuid((policy or data).get("owner_id"))


async def create_schedule(
    session: AsyncSession,
    policy_id: str,
    data: dict[str, Any],
    event_id: uuid.UUID | None,
    context: Any = None,
) -> Schedule | None:
    """The policy's schedule and instalments; ``None`` if it has one already (or the data is
    unusable, which is logged by the caller as nothing to do)."""
    existing = (
        await session.execute(select(Schedule).where(col(Schedule.policy_id) == policy_id))
    ).scalar_one_or_none()
    if existing is not None:
        return None
    try:
        currency = check_currency(str(data["currency"]))
        premium = minor(Decimal(str(data["premium"])), currency, allow_zero=True)
        frequency = str(data.get("payment_frequency") or "annual")
        start = date.fromisoformat(str(data["start_date"]))
        owner_id = await policy_owner(session, context, policy_id, data)
        if owner_id is None:
            raise ValueError("the event names no owner")
        if frequency not in FREQUENCIES:
            frequency = "annual"
        # a ValueError when an instalment would fall past 9999-12-31
        dues = due_dates(start, frequency)
    except (KeyError, ValueError, InvalidOperation, InvalidAmount):
        return None  # InvalidAmount: a premium past MAX_MINOR (deals takes 15 digits)
    if not await owners.may_own(session, owner_id):
        # the rule creating a payment and a hand-over apply: instalments owned by someone
        # who cannot change them would be nobody's to collect
        log.warning(
            "no premium schedule for policy %s yet: its owner %s may not own payments (their "
            "roles do not grant %s, or a plugin's permission rule denies it); it is built "
            "when the policy passes to an owner who may",
            policy_id,
            owner_id,
            payments_service.MAY_OWN,
        )
        await _hold_activation(session, policy_id, data, event_id)
        return None
    ref = await session.get(PolicyRef, policy_id)
    client_id = str(data["client_id"]) if data.get("client_id") else None
    # a premium smaller than its number of instalments (0.00 for free cover) splits into
    # some of nothing: nothing is owed on them, nobody could pay them (every receipt would
    # over-pay) and the overdue job would mark them, so none is made
    due = [
        (index, amount, day)
        for index, (amount, day) in enumerate(
            zip(split(premium, FREQUENCIES[frequency]), dues, strict=True), 1
        )
        if amount > 0
    ]
    schedule = Schedule(
        policy_id=policy_id,
        client_id=client_id,
        insurer=ref.insurer if ref else "",
        premium_minor=premium,
        currency=currency,
        frequency=frequency,
        instalments=len(due),
        start_date=start,
        owner_id=owner_id,
        source_event_id=event_id,
    )
    try:
        async with session.begin_nested():
            session.add(schedule)
            await session.flush()
    except IntegrityError:
        return None  # another delivery of the same activation won
    ids: list[uuid.UUID] = []
    number = ref.number if ref else ""
    for index, amount, day in due:
        payment = Payment(
            direction="incoming",
            amount_minor=amount,
            currency=currency,
            due_date=day,
            status="planned",
            reference=f"{number or policy_id[:8]}/{index}"[:140],
            link_kind=POLICY,
            link_id=policy_id,
            policy_id=policy_id,
            client_id=client_id,
            insurer=schedule.insurer,
            product=ref.product if ref else "",
            schedule_id=schedule.id,
            instalment=index,
            owner_id=owner_id,
        )
        await payments_service.add_payment(session, payment, None)
        ids.append(payment.id)
    created = ScheduleCreated(
        policy_id=policy_id,
        premium=text(premium, currency),
        currency=currency,
        frequency=frequency,
        instalments=schedule.instalments,
        payment_ids=ids,
        owner_id=owner_id,
    )
    publish(session, created, subject=schedule.id)
    return schedule


async def _hold_activation(
    session: AsyncSession, policy_id: str, data: dict[str, Any], event_id: uuid.UUID | None
) -> None:
    """Keep a refused activation (JSON-safe) for ``build_held_schedule``."""
    held = json.loads(json.dumps({"data": data, "event_id": event_id}, default=str))
    ref = await session.get(PolicyRef, policy_id)
    if ref is None:
        session.add(PolicyRef(policy_id=policy_id, held_activation=held))
    else:
        ref.held_activation = held
    await session.flush()


async def build_held_schedule(
    session: AsyncSession, context: Any, policy_id: str
) -> Schedule | None:
    """The schedule an activation refused (its owner could not own payments), built now that
    the policy has passed to another owner: for its owner of now, if they may own payments
    and the policy is still active (in force; a cancelled or expired one gets none).
    Idempotent: one schedule per policy, and the held activation is let go once built."""
    ref = await session.get(PolicyRef, policy_id)
    if context is None or ref is None or not ref.held_activation:
        return None
    policy = await resolve_entity(context, POLICY, policy_id, None, session)
    if policy is None or policy.get("status") != "active":
        return None
    held = ref.held_activation
    schedule = await create_schedule(
        session, policy_id, dict(held["data"]), _uuid(held.get("event_id")), context
    )
    has_one = (
        await session.execute(select(col(Schedule.id)).where(col(Schedule.policy_id) == policy_id))
    ).first() is not None
    if has_one:
        ref.held_activation = None
        await session.flush()
    return schedule


@dataclass
class HeldBatch:
    """One batch of ``build_held_schedules``: what was built, what stays held, and where the
    next batch starts (``next_after``, ``None`` once no held activation is left after it)."""

    built: list[Schedule]
    held: list[str]
    remaining: int
    next_after: str | None


async def build_held_schedules(
    session: AsyncSession, context: Any, *, after: str | None = None, limit: int = 100
) -> HeldBatch:
    """The admin's action (``POST /schedules/held/build``): the held activations whose
    policy's owner may own payments now — their role gained ``payments:write`` since, with
    no hand-over to build it — are built, as a hand-over would (``build_held_schedule``, in
    the policy's turn), ``limit`` policies at a time in policy id order after ``after``: one
    request of thousands would hold its transaction (and a lock per policy) for minutes.
    Idempotent: a built one is held no more, and one still held is passed by the next batch
    (``after``) rather than examined again."""
    held_after: list[Any] = [col(PolicyRef.held_activation).is_not(None)]
    if after is not None:
        held_after.append(col(PolicyRef.policy_id) > after)
    stmt = (
        select(col(PolicyRef.policy_id))
        .where(*held_after)
        .order_by(col(PolicyRef.policy_id))
        .limit(limit)
    )
    built: list[Schedule] = []
    held: list[str] = []
    batch = list((await session.execute(stmt)).scalars())
    for policy_id in batch:
        await take_record_turn(session, POLICY, policy_id)
        schedule = await build_held_schedule(session, context, policy_id)
        if schedule is not None:
            built.append(schedule)
        ref = await session.get(PolicyRef, policy_id, populate_existing=True)
        if ref is not None and ref.held_activation:
            held.append(policy_id)
    remaining = 0
    if len(batch) == limit:
        left = select(func.count()).where(
            col(PolicyRef.held_activation).is_not(None), col(PolicyRef.policy_id) > batch[-1]
        )
        remaining = int(await session.scalar(left) or 0)
    return HeldBatch(built, held, remaining, batch[-1] if remaining else None)


async def cancel_schedule(session: AsyncSession, policy_id: str, today: date | None = None) -> int:
    """Cancel the policy's future instalments with no money on them; how many."""
    today = today or utcnow().date()
    # a held activation is never built for a cancelled policy
    ref = await session.get(PolicyRef, policy_id)
    if ref is not None and ref.held_activation is not None:
        ref.held_activation = None
    schedule = (
        await session.execute(select(Schedule).where(col(Schedule.policy_id) == policy_id))
    ).scalar_one_or_none()
    if schedule is None:
        return 0
    if schedule.status != "cancelled":
        await session.execute(
            update(Schedule)
            .where(col(Schedule.id) == schedule.id)
            .values(status="cancelled", version=col(Schedule.version) + 1, updated_at=utcnow())
        )
    stmt = select(Payment).where(
        col(Payment.schedule_id) == schedule.id,
        col(Payment.due_date) > today,
        col(Payment.status).in_(("planned", "due")),
        col(Payment.paid_minor) == col(Payment.refunded_minor),
    )
    count = 0
    body = PaymentCancel(reason="policy cancelled")
    for payment in list((await session.execute(stmt)).scalars()):
        await payments_service.cancel_payment(session, None, payment, None, body)
        count += 1
    return count


async def follow_owner(
    session: AsyncSession, context: Any, policy_id: str, data: dict[str, Any]
) -> int:
    """The policy changed hands: its instalments and the payments linked to it go to its
    owner of now; how many moved. Nothing moves to an owner who may not own payments
    (``owners.refused_owner``): the schedule and its instalments stay together."""
    if "owner_id" not in (data.get("changed") or ()):
        return 0
    # the owner of now, not the event's: a late or redelivered hand-over moves nothing back
    owner = await policy_owner(session, context, policy_id, data)
    if owner is None:
        return 0
    followers: list[Any] = [
        col(Payment.schedule_id).in_(
            select(col(Schedule.id)).where(col(Schedule.policy_id) == policy_id)
        ),
        (col(Payment.link_kind) == POLICY) & (col(Payment.link_id) == policy_id),
    ]
    stmt = (
        select(Payment)
        .where(or_(*followers), col(Payment.owner_id) != owner)
        .order_by(col(Payment.id))
    )
    payments = list((await session.execute(stmt)).scalars())
    schedule_moves = select(col(Schedule.id)).where(
        col(Schedule.policy_id) == policy_id, col(Schedule.owner_id) != owner
    )
    if not payments and (await session.execute(schedule_moves)).first() is None:
        return 0
    if await owners.refused_owner(session, owner, POLICY, policy_id, len(payments)):
        return 0  # the schedule stays with its instalments
    moved = 0
    for payment in payments:
        moved += await owners.hand_over(session, payment, owner)
    await session.execute(
        update(Schedule)
        .where(col(Schedule.policy_id) == policy_id, col(Schedule.owner_id) != owner)
        .values(owner_id=owner, version=col(Schedule.version) + 1, updated_at=utcnow())
    )
    return moved


async def on_policy_event(session: AsyncSession, event: Any, context: Any) -> None:
    """The handler of deals' policy events (idempotent: see the module's text)."""
    policy_id = str(event.subject)
    data: dict[str, Any] = dict(event.data)
    if event.type in (POLICY_ACTIVATED, POLICY_UPDATED):
        # both read the policy's owner of now and give it payments: in the policy's turn,
        # after a payment being linked to it (or its activation) commits (``service.records``)
        await take_record_turn(session, POLICY, policy_id)
    if event.type == POLICY_CREATED:
        await remember_policy(session, policy_id, data)
    elif event.type == POLICY_ACTIVATED:
        await create_schedule(session, policy_id, data, event.id, context)
    elif event.type == POLICY_UPDATED:
        if "owner_id" in (data.get("changed") or ()):
            await build_held_schedule(session, context, policy_id)
        await follow_owner(session, context, policy_id, data)
    elif event.type == POLICY_CANCELLED:
        await cancel_schedule(session, policy_id)
