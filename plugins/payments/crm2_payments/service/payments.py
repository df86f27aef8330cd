"""Payments: record, change, cancel; receive and refund money; emits payment events.

Services take the principal and decide; they never commit (the request or the
worker message does, with the events in the outbox).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    LinkInvalid,
    NotFound,
    Records,
    acting_user,
    check_version,
    from_minor,
    insert_together,
    publish,
    publish_row,
    require_entity,
    resolve_entity,
    resolve_owner,
    utcnow,
)
from crm2_hookspecs import Principal
from crm2_payments.errors import (
    CurrencyMismatch,
    ExternalIdTaken,
    InvalidAmount,
    InvalidReceivedAt,
    InvalidTransition,
    Overpayment,
    OverRefund,
)
from crm2_payments.events import (
    PaymentCancelled,
    PaymentCreated,
    PaymentPaid,
    PaymentRefunded,
    PaymentUpdated,
)
from crm2_payments.models import Allocation, Payment
from crm2_payments.repository import payments as repo
from crm2_payments.schemas.payments import (
    AllocationCreate,
    AllocationPublic,
    PaymentCancel,
    PaymentCreate,
    PaymentPublic,
    PaymentUpdate,
)
from crm2_payments.service import commissions
from crm2_payments.service.money import minor, text
from crm2_payments.service.records import record_owner, take_record_turn
from crm2_payments.visibility import RULES

PAYMENTS = Records(repo.payments, RULES)
# what a payment's owner must hold: an owner who could not change it (or not even see it)
# is refused with 422 owner-not-permitted, as deals refuses for its records
MAY_OWN = "payments:write"


def public(p: Any) -> PaymentPublic:
    """A payment, or a list page's plain row (``Repository.page_rows``), read by attribute."""
    return PaymentPublic.model_validate(public_values(p))


def public_values(p: Any) -> dict[str, Any]:
    """``public``'s fields, unvalidated: a list page validates its rows at once
    (``page_response``), without a model built per row."""
    net = p.paid_minor - p.refunded_minor
    return dict(
        id=p.id,
        direction=p.direction,
        amount=from_minor(p.amount_minor, p.currency),
        currency=p.currency,
        paid=from_minor(net, p.currency),
        refunded=from_minor(p.refunded_minor, p.currency),
        outstanding=from_minor(0 if p.status == "cancelled" else p.amount_minor - net, p.currency),
        status=p.status,
        due_date=p.due_date,
        paid_at=p.paid_at,
        overdue_at=p.overdue_at,
        method=p.method,
        payer=p.payer,
        payee=p.payee,
        reference=p.reference,
        note=p.note,
        link={"kind": p.link_kind, "id": p.link_id} if p.link_kind and p.link_id else None,
        policy_id=p.policy_id,
        client_id=p.client_id,
        insurer=p.insurer,
        product=p.product,
        schedule_id=p.schedule_id,
        instalment=p.instalment,
        provider=p.provider,
        external_id=p.external_id,
        owner_id=p.owner_id,
        created_at=p.created_at,
        updated_at=p.updated_at,
        version=p.version,
    )


def allocation_public(a: Allocation) -> AllocationPublic:
    return AllocationPublic(
        id=a.id,
        payment_id=a.payment_id,
        kind=a.kind,
        amount=from_minor(a.amount_minor, a.currency),
        currency=a.currency,
        received_at=a.received_at,
        method=a.method,
        reference=a.reference,
        provider=a.provider,
        external_id=a.external_id,
        statement_line_id=a.statement_line_id,
        created_at=a.created_at,
    )


def identity(p: Payment) -> dict[str, Any]:
    """What every payment event carries."""
    return {
        "direction": p.direction,
        "amount": text(p.amount_minor, p.currency),
        "currency": p.currency,
        "status": p.status,
        "owner_id": p.owner_id,
        "policy_id": p.policy_id,
        "client_id": p.client_id,
    }


async def get_payment(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID
) -> Payment:
    return await PAYMENTS.get(session, principal, payment_id)


async def add_payment(session: AsyncSession, payment: Payment, actor: Principal | None) -> Payment:
    """Insert a payment and publish ``payments.payment.created``: the one way in."""
    created = PaymentCreated(
        due_date=payment.due_date,
        schedule_id=payment.schedule_id,
        instalment=payment.instalment,
        provider=payment.provider,
        external_id=payment.external_id,
        **identity(payment),
    )
    record = publish_row(session, created, subject=payment.id, actor=actor)
    # the payment and its event in one statement (the payment leaves the session)
    await insert_together(session, [payment, record])
    return payment


POLICY, CLIENT = "deals.policy", "deals.client"


async def _attributable(
    session: AsyncSession, context: Any, principal: Principal, kind: str, record_id: str
) -> None:
    """422 when ``record_id`` names a record of ``kind`` the caller may not see: a payment
    counts in that record's totals. An id no enabled plugin knows stays free text (the
    integrator's own policy numbers, or deals not enabled)."""
    if await resolve_entity(context, kind, record_id, principal, session) is not None:
        return
    if await resolve_entity(context, kind, record_id, None, session) is not None:
        raise LinkInvalid(f"no {kind} {record_id} that you can see")


async def create_payment(
    session: AsyncSession, context: Any, principal: Principal, body: PaymentCreate
) -> tuple[Payment, bool]:
    """``(payment, created)``: an ``external_id`` seen before answers the existing payment."""
    amount = minor(body.amount, body.currency)
    link_owner: uuid.UUID | None = None
    if body.link is not None:
        # the owner is read in the record's turn, held to the commit: a hand-over handled
        # meanwhile waits for this payment and moves it too (``service.records``)
        await take_record_turn(session, body.link.kind, str(body.link.id))
        # read in this request's session (before its first write, as tasks does)
        link_owner = record_owner(await require_entity(context, body.link, principal, session))
    visibility = PAYMENTS.visibility(principal, session)
    if body.external_id is not None:
        existing = await repo.by_external_id(session, body.provider, body.external_id)
        if existing is not None:
            return await _ingested(session, principal, existing.id), False
    for kind, record_id in ((POLICY, body.policy_id), (CLIENT, body.client_id)):
        if record_id is not None:
            await _attributable(session, context, principal, kind, record_id)
    owner_id = await resolve_owner(
        session, principal, visibility, body.owner_id, default=link_owner, may_own=MAY_OWN
    )
    values = body.model_dump(exclude={"amount", "link", "owner_id"})
    payment = Payment(
        **values,
        amount_minor=amount,
        owner_id=owner_id,
        link_kind=body.link.kind if body.link else None,
        link_id=str(body.link.id) if body.link else None,
    )
    if body.link is not None and body.link.kind.endswith(".policy") and not body.policy_id:
        payment.policy_id = str(body.link.id)
    if body.link is not None and body.link.kind.endswith(".client") and not body.client_id:
        payment.client_id = str(body.link.id)
    if body.external_id is None:
        return await add_payment(session, payment, principal), True
    try:
        async with session.begin_nested():
            await add_payment(session, payment, principal)
    except IntegrityError:
        # the same external id was ingested at the same moment by another request
        existing = await repo.by_external_id(session, body.provider, body.external_id)
        if existing is None:
            raise
        return await _ingested(session, principal, existing.id), False
    return payment, True


async def _ingested(session: AsyncSession, principal: Principal, payment_id: uuid.UUID) -> Payment:
    """The payment an ``external_id`` was ingested as, if the caller may see it; a 409
    that names no record if not (a 404 with its id would tell them it exists)."""
    try:
        return await PAYMENTS.get(session, principal, payment_id)
    except NotFound:
        raise ExternalIdTaken(
            "this provider's external_id belongs to a payment you cannot see"
        ) from None


async def update_payment(
    session: AsyncSession,
    principal: Principal,
    payment_id: uuid.UUID,
    if_match: str,
    body: PaymentUpdate,
) -> Payment:
    payment = await PAYMENTS.for_update(session, principal, payment_id, if_match)
    values = body.model_dump(exclude_unset=True)
    if "amount" in values:
        amount = minor(values.pop("amount"), payment.currency)
        if amount < payment.paid_minor - payment.refunded_minor:
            raise InvalidAmount("the amount cannot be less than what was paid net of refunds")
        if payment.status in ("cancelled", "refunded", "partially_refunded"):
            raise InvalidTransition(f"the amount of a {payment.status} payment is final")
        values["amount_minor"] = amount
        net = payment.paid_minor - payment.refunded_minor
        if net > 0:
            values["status"] = _status_of(payment, net, amount, values)
    if "due_date" in values and payment.status == "overdue":
        # a status the new amount decided (paid, partially paid) stands
        for key, value in _rescheduled(payment, values["due_date"]).items():
            values.setdefault(key, value)
    changed = await repo.payments.update(session, payment, values)
    if "amount_minor" in changed:
        # what the premium earns can change with its amount alone (rule 6 of the README)
        await commissions.book(session, payment, None)
    if changed:
        derived = ("status", "overdue_at")  # follow from the fields sent
        names = sorted("amount" if k == "amount_minor" else k for k in changed if k not in derived)
        publish(
            session,
            PaymentUpdated(changed=names, **identity(payment)),
            subject=payment.id,
            actor=principal,
        )
    return payment


def _status_of(payment: Payment, net: int, amount: int, values: dict[str, Any]) -> str:
    """The status of a payment with ``net`` paid on it and a new ``amount``: paid, else
    overdue while it is still owed past its due date (marked by the overdue job, and not
    given a due date that is not past by this change), else partially paid."""
    if net >= amount:
        return "paid"
    due = values.get("due_date", payment.due_date)
    late = payment.overdue_at is not None and due is not None and due < utcnow().date()
    if late:
        return "overdue"
    if payment.overdue_at is not None:
        values["overdue_at"] = None  # owed again: the job marks it once the new date passed
    return "partially_paid"


def _rescheduled(payment: Payment, due: date | None) -> dict[str, Any]:
    """An overdue payment given a due date not past (or none) is owed, no longer overdue:
    its status as the money on it says, and ``overdue_at`` cleared, so the overdue job
    marks it again (with its event) once the new date has passed. A date still past
    changes nothing."""
    if due is not None and due < utcnow().date():
        return {}
    net = payment.paid_minor - payment.refunded_minor
    if net > 0:
        status = "partially_paid"
    else:
        status = "planned" if due is None or due > utcnow().date() else "due"
    return {"status": status, "overdue_at": None}


async def cancel_payment(
    session: AsyncSession,
    principal: Principal | None,
    payment: Payment,
    if_match: str | None,
    body: PaymentCancel,
) -> Payment:
    """Only a payment with no money on it (net of refunds) can be cancelled."""
    check_version(if_match, payment.version)
    if payment.status == "cancelled":
        return payment
    if payment.paid_minor - payment.refunded_minor != 0:
        raise InvalidTransition("money was paid on this payment: refund it before cancelling")
    await repo.payments.update(session, payment, {"status": "cancelled"})
    publish(
        session,
        PaymentCancelled(reason=body.reason, **identity(payment)),
        subject=payment.id,
        actor=principal,
    )
    return payment


# how far ahead of the payments clock a receipt or refund may be dated: a clock a little
# fast or a day's time zone, never a date-time far ahead (once stored as the end of time)
RECEIVED_AT_LEAD = timedelta(days=1)


def _check_received_at(received_at: datetime | None, now: datetime) -> None:
    if received_at is None or received_at <= now + RECEIVED_AT_LEAD:
        return
    msg = f"must not be more than a day after now ({now.isoformat(timespec='seconds')})"
    raise InvalidReceivedAt(
        f"received_at {received_at.isoformat()} {msg}",
        errors=[{"loc": ["body", "received_at"], "msg": msg, "type": "value_error"}],
    )


async def move(
    session: AsyncSession,
    principal: Principal | None,
    payment: Payment,
    kind: str,
    body: AllocationCreate,
    *,
    statement_line_id: uuid.UUID | None = None,
) -> tuple[Allocation, bool]:
    """Receive (``payment``) or pay back (``refund``) money; ``(allocation, created)``.

    An ``external_id`` seen before for this ``kind`` answers its allocation and moves
    nothing (a refund may carry the id of the receipt it pays back).
    """
    if body.currency != payment.currency:
        raise CurrencyMismatch(f"the payment is in {payment.currency}, not {body.currency}")
    amount = minor(body.amount, body.currency)
    now = utcnow()
    _check_received_at(body.received_at, now)
    if body.external_id is not None:
        seen = await repo.allocation_by_external_id(session, body.provider, kind, body.external_id)
        if seen is not None:
            return seen, False
    at: datetime = body.received_at or now
    if not await repo.move_money(session, payment.id, kind, amount, at):
        await session.refresh(payment)
        if payment.status == "cancelled":
            raise InvalidTransition("the payment is cancelled")
        if kind == "reversal":
            raise InvalidTransition("that much is no longer paid on the payment")
        outstanding = payment.amount_minor - payment.paid_minor + payment.refunded_minor
        if kind == "payment":
            raise Overpayment(
                f"{body.amount} {body.currency} exceeds the outstanding "
                f"{text(outstanding, payment.currency)}"
            )
        raise OverRefund(
            f"{body.amount} {body.currency} exceeds the refundable "
            f"{text(payment.paid_minor - payment.refunded_minor, payment.currency)}"
        )
    allocation = Allocation(
        payment_id=payment.id,
        kind=kind,
        amount_minor=amount,
        currency=payment.currency,
        received_at=at,
        method=body.method,
        reference=body.reference,
        provider=body.provider,
        external_id=body.external_id,
        statement_line_id=statement_line_id,
        owner_id=payment.owner_id,
        created_by=acting_user(principal) if principal is not None else None,
    )
    session.add(allocation)
    await session.flush()
    # ``payment`` already holds the row as the guarded UPDATE wrote it (RETURNING)
    await commissions.book(session, payment, allocation)
    if kind == "payment":
        event: Any = PaymentPaid(
            allocation_id=allocation.id,
            allocated=text(amount, payment.currency),
            paid=text(payment.paid_minor - payment.refunded_minor, payment.currency),
            **identity(payment),
        )
    elif kind == "reversal":
        event = PaymentUpdated(changed=["paid"], **identity(payment))
    else:
        event = PaymentRefunded(
            allocation_id=allocation.id,
            allocated=text(amount, payment.currency),
            refunded=text(payment.refunded_minor, payment.currency),
            **identity(payment),
        )
    publish(session, event, subject=payment.id, actor=principal)
    return allocation, True


async def record(
    session: AsyncSession,
    principal: Principal,
    payment_id: uuid.UUID,
    kind: str,
    body: AllocationCreate,
) -> tuple[Allocation, Payment, bool]:
    payment = await PAYMENTS.get(session, principal, payment_id)
    if body.external_id is not None:
        try:
            async with session.begin_nested():
                allocation, created = await move(session, principal, payment, kind, body)
        except IntegrityError:
            seen = await repo.allocation_by_external_id(
                session, body.provider, kind, body.external_id
            )
            if seen is None:
                raise
            allocation, created = seen, False
    else:
        allocation, created = await move(session, principal, payment, kind, body)
    if not created:
        if allocation.payment_id != payment.id:
            raise ExternalIdTaken("this provider's external_id is booked on another payment")
        payment = await PAYMENTS.get(session, principal, payment.id)
    return allocation, payment, created
