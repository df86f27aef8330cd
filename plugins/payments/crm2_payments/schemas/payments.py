"""Request and response bodies of payments, allocations, refunds, balances and schedules.

Money is ``Amount`` (a decimal string, never a JSON number) beside a
``Currency`` (ISO 4217); the service turns it into minor units and refuses more
decimals than the currency has.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from crm2_core.api import (
    Amount,
    Clearable,
    Currency,
    EntityLink,
    RequestModel,
    ResponseModel,
    UpdateModel,
)

Direction = Literal["incoming", "outgoing", "refund"]
Status = Literal[
    "planned",
    "due",
    "paid",
    "partially_paid",
    "overdue",
    "cancelled",
    "refunded",
    "partially_refunded",
]
Provider = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
ExternalId = Annotated[str, Field(min_length=1, max_length=200)]
Method = Annotated[str, Field(max_length=32)]
Party = Annotated[str, Field(max_length=200)]
Reference = Annotated[str, Field(max_length=140)]
Note = Annotated[str, Field(max_length=5000)]
RecordId = Annotated[str, Field(min_length=1, max_length=64)]


class PaymentCreate(RequestModel):
    direction: Direction = "incoming"
    amount: Amount
    currency: Currency
    due_date: date | None = None
    method: Method = ""
    payer: Party = ""
    payee: Party = ""
    reference: Reference = ""
    note: Note = ""
    link: EntityLink | None = Field(
        None, description="any record (crm2_resolve_entity); its owner becomes the payment's"
    )
    policy_id: RecordId | None = Field(None, description="the policy the payment belongs to")
    client_id: RecordId | None = Field(None, description="the client the payment belongs to")
    insurer: Party = ""
    product: Party = ""
    provider: Provider = Field("manual", description="where external_id comes from")
    external_id: ExternalId | None = Field(
        None, description="unique per provider: the same one again answers the existing record"
    )
    owner_id: uuid.UUID | None = Field(
        None, description="default: the linked record's owner, else the caller"
    )


class PaymentUpdate(UpdateModel):
    amount: Amount | None = Field(None, description="not below what was paid net of refunds")
    due_date: Annotated[date | None, Clearable] = None
    method: Method | None = None
    payer: Party | None = None
    payee: Party | None = None
    reference: Reference | None = None
    note: Note | None = None
    insurer: Party | None = None
    product: Party | None = None


class PaymentCancel(RequestModel):
    reason: Annotated[str, Field(max_length=500)] = ""


class PaymentPublic(ResponseModel):
    id: uuid.UUID
    direction: Direction
    amount: Amount
    currency: str
    paid: Amount
    refunded: Amount
    outstanding: Amount
    status: Status
    due_date: date | None
    paid_at: datetime | None
    overdue_at: datetime | None
    method: str
    payer: str
    payee: str
    reference: str
    note: str
    link: EntityLink | None
    policy_id: str | None
    client_id: str | None
    insurer: str
    product: str
    schedule_id: uuid.UUID | None
    instalment: int | None
    provider: str
    external_id: str | None
    owner_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    version: int


class AllocationCreate(RequestModel):
    amount: Amount
    currency: Currency
    received_at: AwareDatetime | None = Field(
        None, description="default: now; at most a day after now"
    )
    method: Method = ""
    reference: Reference = ""
    provider: Provider = "manual"
    external_id: ExternalId | None = Field(
        None, description="unique per provider: the same one again answers the existing entry"
    )


class AllocationPublic(ResponseModel):
    id: uuid.UUID
    payment_id: uuid.UUID
    kind: Literal["payment", "refund", "reversal"]
    amount: Amount
    currency: str
    received_at: datetime
    method: str
    reference: str
    provider: str
    external_id: str | None
    statement_line_id: uuid.UUID | None
    created_at: datetime


class MoneyMoved(ResponseModel):
    """An allocation or refund with the payment as it is afterwards."""

    allocation: AllocationPublic
    payment: PaymentPublic


class Balance(ResponseModel):
    """Incoming payments of one currency: still due, paid (net of refunds), overdue, refunded."""

    currency: str
    due: Amount
    paid: Amount
    overdue: Amount
    refunded: Amount


class Balances(ResponseModel):
    client_id: str | None
    policy_id: str | None
    balances: list[Balance]


class SchedulePublic(ResponseModel):
    id: uuid.UUID
    policy_id: str
    client_id: str | None
    insurer: str
    premium: Amount
    currency: str
    frequency: str
    instalments: int
    start_date: date
    status: str
    owner_id: uuid.UUID
    created_at: datetime
    version: int
