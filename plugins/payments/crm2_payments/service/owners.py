"""Payments changing hands: one following its record, or all of a leaving user's.

A payment's ledger (allocations) and commissions carry its owner too (they are seen
by the same people), so they move with it. Each moved payment publishes
``payments.payment.updated`` with ``changed: ["owner_id"]`` and ``previous_owner_id``,
so the stream tells the previous owner as well.

A payment follows its record only to an owner who may own payments (``payments:write``,
as creating one and a user's reassignment require): handed to anyone else (a task
assigned to a viewer, a policy to a custom role without payments' rights) the payments
stay with their owner, and a warning says why (``refused_owner``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import OwnerNotPermitted, publish, resolve_entity, user_grants, utcnow
from crm2_hookspecs import Principal
from crm2_payments.events import PaymentUpdated
from crm2_payments.models import Allocation, Commission, Payment, Schedule
from crm2_payments.repository import payments as repo
from crm2_payments.service.payments import MAY_OWN as WRITE
from crm2_payments.service.payments import identity
from crm2_payments.service.records import OWNER_FIELDS, record_owner, take_record_turn

OWNED = (Payment, Schedule, Allocation, Commission)
log = logging.getLogger(__name__)


async def may_own(session: AsyncSession, user: uuid.UUID) -> bool:
    """Whether ``user`` is active and their roles grant ``payments:write`` now (less what a
    ``crm2_check_permission`` hook denies them): the rule ``resolve_owner`` applies when a
    payment is created."""
    granted = await user_grants(session, user, (WRITE,), hooks=True)
    return granted is not None and WRITE in granted


async def refused_owner(
    session: AsyncSession, owner: uuid.UUID, kind: str, record_id: str, count: int
) -> bool:
    """``True`` (and a warning) when ``owner``, who now holds ``kind``/``record_id``, may not
    own its ``count`` payments: they stay where they are."""
    if await may_own(session, owner):
        return False
    log.warning(
        "%d payment(s) of %s %s stay with their owner: its new owner %s may not own "
        "payments (their roles do not grant %s)",
        count,
        kind,
        record_id,
        owner,
        WRITE,
    )
    return True


async def _ledger_follows(session: AsyncSession, payment_ids: Any, owner_id: uuid.UUID) -> None:
    for model in (Allocation, Commission):
        table: Any = getattr(model, "__table__")  # noqa: B009 - a union of table classes
        await session.execute(
            update(table).where(table.c.payment_id.in_(payment_ids)).values(owner_id=owner_id)
        )


async def hand_over(
    session: AsyncSession, payment: Payment, owner_id: uuid.UUID, actor: Principal | None = None
) -> bool:
    """Give ``payment`` to ``owner_id`` (its record changed hands: the caller decided that
    the payment follows it); ``False`` when it is theirs already."""
    previous = payment.owner_id
    if not await repo.payments.update(session, payment, {"owner_id": owner_id}):
        return False
    await _ledger_follows(session, [payment.id], owner_id)
    publish(
        session,
        PaymentUpdated(changed=["owner_id"], previous_owner_id=previous, **identity(payment)),
        subject=payment.id,
        actor=actor,
    )
    return True


async def follow_link(
    session: AsyncSession, context: Any, kind: str, record_id: str, data: dict[str, Any]
) -> int:
    """Payments linked to ``kind``/``record_id`` take its owner of now (the README: the linked
    record's owner owns the payment), read from its plugin when the event is handled, so a
    late or redelivered event moves nothing back; how many moved. None moves to an owner
    who may not own payments (``refused_owner``)."""
    changed = data.get("changed")
    if isinstance(changed, list) and not any(field in changed for field in OWNER_FIELDS):
        return 0
    # after a payment being linked to this record commits: it may have read the old owner
    await take_record_turn(session, kind, record_id)
    owner = record_owner(await resolve_entity(context, kind, record_id, None, session))
    if owner is None:
        return 0
    stmt = (
        select(Payment)
        .where(
            col(Payment.link_kind) == kind,
            col(Payment.link_id) == record_id,
            col(Payment.owner_id) != owner,
        )
        .order_by(col(Payment.id))
    )
    payments = list((await session.execute(stmt)).scalars())
    if not payments or await refused_owner(session, owner, kind, record_id, len(payments)):
        return 0
    moved = 0
    for payment in payments:
        moved += await hand_over(session, payment, owner)
    return moved


async def _owns_any(session: AsyncSession, user: uuid.UUID) -> bool:
    for model in OWNED:
        table: Any = getattr(model, "__table__")  # noqa: B009 - a union of table classes
        if await session.scalar(select(exists().where(table.c.owner_id == user))):
            return True
    return False


async def reassign_user(
    session: AsyncSession, from_user: uuid.UUID, to_user: uuid.UUID, actor: Principal | None
) -> dict[str, int]:
    """Everything ``from_user`` owns in payments goes to ``to_user`` (``crm2_reassign_user``):
    moved rows by table. 422 ``owner-not-permitted`` when ``to_user`` may not own payments
    (``may_own``: payments:write, less a hook's veto) and there is something to move (an
    owner who could not change their payments); nothing moves then."""
    if not await _owns_any(session, from_user):
        return {}
    # the owner rule with hooks, as creating a payment applies it (``may_own``)
    if not await may_own(session, to_user):
        raise OwnerNotPermitted(
            f"user {to_user} cannot own payments: they may not {WRITE} (their roles do not "
            "grant it, or a plugin's permission rule denies it)"
        )
    now = utcnow()
    moved: dict[str, int] = {}
    # the written rows come back with the UPDATE and refresh the session's objects
    handed = (
        update(Payment)
        .where(col(Payment.owner_id) == from_user)
        .values(owner_id=to_user, version=col(Payment.version) + 1, updated_at=now)
        .returning(Payment)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    rows = list((await session.execute(handed)).scalars())
    if rows:
        for payment in sorted(rows, key=lambda p: p.id):
            publish(
                session,
                PaymentUpdated(
                    changed=["owner_id"], previous_owner_id=from_user, **identity(payment)
                ),
                subject=payment.id,
                actor=actor,
            )
        moved["payments_payment"] = len(rows)
    for model in (Schedule, Allocation, Commission):
        table: Any = getattr(model, "__table__")  # noqa: B009 - a union of table classes
        values: dict[str, Any] = {"owner_id": to_user}
        if model is Schedule:
            values.update(version=table.c.version + 1, updated_at=now)
        result: Any = await session.execute(
            update(table).where(table.c.owner_id == from_user).values(**values)
        )
        if result.rowcount:
            moved[table.name] = result.rowcount
    return moved
