"""The events the payments plugin emits: its public, versioned contract.

Subject: the payment's (schedule's, statement's) id. Money travels as a decimal
string with its currency. Every event carries ``owner_id``, so the ``payments``
stream decides who may see it without a database read (a reconciliation has no
owner: only holders of ``payments:all_records`` see it).
"""

from __future__ import annotations

import uuid
from datetime import date

from crm2_core.api import EventData


class _PaymentEvent(EventData):
    direction: str
    amount: str
    currency: str
    status: str
    owner_id: uuid.UUID
    policy_id: str | None
    client_id: str | None


class PaymentCreated(_PaymentEvent, type="payments.payment.created", version=1):
    """A payment was recorded (by hand, by ingestion or as an instalment of a schedule)."""

    due_date: date | None
    schedule_id: uuid.UUID | None
    instalment: int | None
    provider: str
    external_id: str | None


class PaymentPaid(_PaymentEvent, type="payments.payment.paid", version=1):
    """Money was received against the payment; ``status`` says whether it is paid in full."""

    allocation_id: uuid.UUID
    allocated: str
    paid: str


class PaymentRefunded(_PaymentEvent, type="payments.payment.refunded", version=1):
    """Money was paid back; ``refunded`` is the total refunded so far."""

    allocation_id: uuid.UUID
    allocated: str
    refunded: str


class PaymentOverdue(_PaymentEvent, type="payments.payment.overdue", version=1):
    """An open payment passed its due date (plus CRM2_PAYMENTS_GRACE_DAYS); emitted once."""

    due_date: date | None
    outstanding: str


class PaymentCancelled(_PaymentEvent, type="payments.payment.cancelled", version=1):
    """A payment will not be collected (by hand, or its policy was cancelled)."""

    reason: str


class PaymentUpdated(_PaymentEvent, type="payments.payment.updated", version=1):
    """A payment's fields changed; ``changed`` names them; ``previous_owner_id`` the owner a
    hand-over took it from."""

    changed: list[str]
    # added in 0.2 (optional: events recorded before it have none): a payment follows its
    # policy to a new agent, and the stream tells the previous owner too
    previous_owner_id: uuid.UUID | None = None


class ScheduleCreated(EventData, type="payments.schedule.created", version=1):
    """A policy's premium was split into instalments."""

    policy_id: str
    premium: str
    currency: str
    frequency: str
    instalments: int
    payment_ids: list[uuid.UUID]
    owner_id: uuid.UUID


class ReconciliationCompleted(EventData, type="payments.reconciliation.completed", version=1):
    """A bank statement was read and matched."""

    lines: int
    duplicates: int
    matched: int
    unmatched: int
    ambiguous: int


EVENT_TYPES: list[type[EventData]] = [
    PaymentCreated,
    PaymentPaid,
    PaymentRefunded,
    PaymentOverdue,
    PaymentCancelled,
    PaymentUpdated,
    ScheduleCreated,
    ReconciliationCompleted,
]
