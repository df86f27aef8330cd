"""The payments plugin's tables (``payments_*``).

Money is an integer count of minor units beside its ISO 4217 currency (exact on
SQLite and PostgreSQL alike; ``crm2_core.money`` turns it into the decimal
string of the API). Links to other plugins' records (a policy, a client) are a
kind and an id as text, never a foreign key: payments does not depend on deals.

The ledger is ``payments_allocation``: every amount received (``payment``),
paid back (``refund``) or taken back (``reversal``) against a payment,
append-only. ``paid_minor`` and ``refunded_minor`` on the payment are its
running sums, moved by conditional
UPDATEs so that ``0 <= paid - refunded <= amount`` and ``refunded <= paid``
hold under any concurrency.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from crm2_core.api import UtcDateTime, new_id, utcnow

INFO = {"plugin": "payments"}
DIRECTIONS = ("incoming", "outgoing", "refund")
STATUSES = (
    "planned",
    "due",
    "paid",
    "partially_paid",
    "overdue",
    "cancelled",
    "refunded",
    "partially_refunded",
)
# still waiting for money: the overdue job and the balances' "due" look at these
OPEN_STATUSES = ("planned", "due", "overdue", "partially_paid")
FREQUENCIES = {"annual": 1, "semi_annual": 2, "quarterly": 4, "monthly": 12}


def _ts(nullable: bool = False) -> Any:
    return Column(UtcDateTime(), nullable=nullable)


def _money() -> Any:
    return Column(BigInteger, nullable=False)


def _currency() -> Any:
    return Column(String(3), nullable=False)


def _user(nullable: bool = True) -> Any:
    return Column(
        ForeignKey("auth_user.id", ondelete="RESTRICT" if not nullable else "SET NULL"),
        nullable=nullable,
    )


class Schedule(SQLModel, table=True):
    """The instalment plan of one policy's premium (one per policy, whatever redelivers)."""

    __tablename__ = "payments_schedule"
    __table_args__ = (Index(None, "owner_id", "created_at", "id"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    policy_id: str = Field(max_length=64, unique=True)
    client_id: str | None = Field(default=None, max_length=64, index=True)
    insurer: str = Field(default="", max_length=200)
    premium_minor: int = Field(sa_column=_money())
    currency: str = Field(sa_column=_currency())
    frequency: str = Field(max_length=16)
    instalments: int
    start_date: date
    status: str = Field(default="active", max_length=16)  # active | cancelled
    owner_id: uuid.UUID = Field(sa_column=_user(nullable=False))
    source_event_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Payment(SQLModel, table=True):
    __tablename__ = "payments_payment"
    __table_args__ = (
        # one record per provider transaction, however often it is ingested
        UniqueConstraint("provider", "external_id"),
        UniqueConstraint("schedule_id", "instalment"),
        Index(None, "owner_id", "due_date", "id"),
        Index(None, "due_date", "id"),
        Index(None, "status", "due_date"),
        Index(None, "updated_at", "id"),
        # the default sort, -created_at: all payments (managers) and one owner's (agents)
        Index(None, "created_at", "id"),
        Index(None, "owner_id", "created_at", "id"),
        Index(None, "policy_id"),
        Index(None, "client_id"),
        Index(None, "link_kind", "link_id"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    direction: str = Field(default="incoming", max_length=16)
    amount_minor: int = Field(sa_column=_money())
    currency: str = Field(sa_column=_currency())
    paid_minor: int = Field(default=0, sa_column=_money())
    refunded_minor: int = Field(default=0, sa_column=_money())
    status: str = Field(default="planned", max_length=24)
    due_date: date | None = None
    paid_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    overdue_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    method: str = Field(default="", max_length=32)
    payer: str = Field(default="", max_length=200)
    payee: str = Field(default="", max_length=200)
    reference: str = Field(default="", max_length=140)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    link_kind: str | None = Field(default=None, max_length=64)
    link_id: str | None = Field(default=None, max_length=64)
    policy_id: str | None = Field(default=None, max_length=64)
    client_id: str | None = Field(default=None, max_length=64)
    insurer: str = Field(default="", max_length=200)
    product: str = Field(default="", max_length=200)
    schedule_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("payments_schedule.id", ondelete="RESTRICT"), nullable=True),
    )
    instalment: int | None = None
    provider: str = Field(default="manual", max_length=64)
    external_id: str | None = Field(default=None, max_length=200)
    owner_id: uuid.UUID = Field(sa_column=_user(nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Allocation(SQLModel, table=True):
    """One movement of money against a payment: received (``payment``), paid back
    (``refund``), or a receipt taken back because its statement line was unmatched
    (``reversal``). ``paid = Σ payment - Σ reversal``, ``refunded = Σ refund``.

    A provider's transaction id names one movement of each kind: providers refund under
    the id of the charge they pay back, so the refund is not that charge's receipt."""

    __tablename__ = "payments_allocation"
    __table_args__ = (
        UniqueConstraint("provider", "kind", "external_id"),
        Index(None, "payment_id", "created_at"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    payment_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("payments_payment.id", ondelete="RESTRICT"), nullable=False)
    )
    kind: str = Field(max_length=16)  # payment | refund | reversal
    amount_minor: int = Field(sa_column=_money())
    currency: str = Field(sa_column=_currency())
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    method: str = Field(default="", max_length=32)
    reference: str = Field(default="", max_length=140)
    provider: str = Field(default="manual", max_length=64)
    external_id: str | None = Field(default=None, max_length=200)
    statement_line_id: uuid.UUID | None = None
    owner_id: uuid.UUID = Field(sa_column=_user(nullable=False))
    created_by: uuid.UUID | None = Field(default=None, sa_column=_user())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class CommissionRule(SQLModel, table=True):
    """The commission an insurer (optionally: one product) pays: basis points or a fixed amount."""

    __tablename__ = "payments_commission_rule"
    __table_args__ = (Index(None, "insurer", "product"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    insurer: str = Field(max_length=200)
    product: str | None = Field(default=None, max_length=200)
    basis_points: int | None = None
    fixed_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str | None = Field(default=None, sa_column=Column(String(3), nullable=True))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Commission(SQLModel, table=True):
    """One entry of the commission ledger: earned (+) when a premium is paid, reversed (-)."""

    __tablename__ = "payments_commission"
    __table_args__ = (Index(None, "owner_id", "created_at", "id"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    payment_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("payments_payment.id", ondelete="RESTRICT"), nullable=False, index=True
        )
    )
    # None: the entry of an amount change (a PATCH made the premium paid in full, or no
    # longer so, with no money moving)
    allocation_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            ForeignKey("payments_allocation.id", ondelete="RESTRICT"), nullable=True, unique=True
        ),
    )
    rule_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("payments_commission_rule.id", ondelete="RESTRICT"), nullable=False
        )
    )
    amount_minor: int = Field(sa_column=_money())
    currency: str = Field(sa_column=_currency())
    owner_id: uuid.UUID = Field(sa_column=_user(nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Statement(SQLModel, table=True):
    """An uploaded bank statement."""

    __tablename__ = "payments_statement"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    filename: str = Field(default="", max_length=255)
    lines: int = 0
    duplicates: int = 0
    uploaded_by: uuid.UUID | None = Field(default=None, sa_column=_user())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class StatementLine(SQLModel, table=True):
    """A bank statement line; ``fingerprint`` keeps a re-uploaded line from coming in twice."""

    __tablename__ = "payments_statement_line"
    __table_args__ = (Index(None, "statement_id", "id"), Index(None, "status"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    statement_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("payments_statement.id", ondelete="CASCADE"), nullable=False)
    )
    fingerprint: str = Field(max_length=64, unique=True)
    booked_on: date
    amount_minor: int = Field(sa_column=_money())
    currency: str = Field(sa_column=_currency())
    reference: str = Field(default="", max_length=200)
    counterparty: str = Field(default="", max_length=200)
    status: str = Field(default="unmatched", max_length=16)  # matched | unmatched | ambiguous
    payment_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("payments_payment.id", ondelete="RESTRICT"), nullable=True),
    )
    allocation_id: uuid.UUID | None = None
    matched_by: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class WebhookDelivery(SQLModel, table=True):
    """A provider webhook applied once: its ``webhook-id`` per provider."""

    __tablename__ = "payments_webhook_delivery"
    __table_args__ = (UniqueConstraint("provider", "webhook_id"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    provider: str = Field(max_length=64)
    webhook_id: str = Field(max_length=255)
    type: str = Field(default="", max_length=100)
    result: str = Field(default="", max_length=200)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class PolicyRef(SQLModel, table=True):
    """What deals' ``deals.policy.created`` tells about a policy that activation does not."""

    __tablename__ = "payments_policy_ref"
    __table_args__ = {"info": INFO}

    policy_id: str = Field(max_length=64, primary_key=True)
    insurer: str = Field(default="", max_length=200)
    product: str = Field(default="", max_length=200)
    number: str = Field(default="", max_length=100)
    # the activation refused while the policy's owner could not own payments (its event's
    # data and id): built when the policy passes to an owner who may (``service.schedules``)
    held_activation: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )


MODELS: list[type[SQLModel]] = [
    Schedule,
    Payment,
    Allocation,
    CommissionRule,
    Commission,
    Statement,
    StatementLine,
    WebhookDelivery,
    PolicyRef,
]
