"""Bodies of commission rules, commissions, statements and webhooks."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field

from crm2_core.api import Amount, Clearable, Currency, RequestModel, ResponseModel, UpdateModel
from crm2_payments.schemas.payments import SchedulePublic

Name = Annotated[str, Field(min_length=1, max_length=200)]
BasisPoints = Annotated[int, Field(ge=0, le=10_000, description="1 bp = 0.01 %")]


class CommissionRuleCreate(RequestModel):
    """Either ``basis_points`` or ``fixed_amount`` with its ``currency`` (else 422
    ``payments-invalid-rule``)."""

    insurer: Name
    product: Name | None = Field(None, description="none: every product of the insurer")
    basis_points: BasisPoints | None = None
    fixed_amount: Amount | None = Field(None, description="earned once a premium is paid in full")
    currency: Currency | None = Field(None, description="of fixed_amount")
    active: bool = True


class CommissionRuleUpdate(UpdateModel):
    product: Annotated[Name | None, Clearable] = None
    basis_points: BasisPoints | None = None
    active: bool | None = None


class CommissionRulePublic(ResponseModel):
    id: uuid.UUID
    insurer: str
    product: str | None
    basis_points: int | None
    fixed_amount: Amount | None
    currency: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


class CommissionPublic(ResponseModel):
    id: uuid.UUID
    payment_id: uuid.UUID
    allocation_id: uuid.UUID | None = Field(
        description="the money movement it books; null: a change of the payment's amount"
    )
    rule_id: uuid.UUID
    amount: Amount = Field(description="negative: a reversal after a refund")
    currency: str
    owner_id: uuid.UUID
    created_at: datetime


LineStatus = Literal["matched", "unmatched", "ambiguous"]


class StatementPublic(ResponseModel):
    id: uuid.UUID
    filename: str
    lines: int = Field(description="new lines this upload added")
    duplicates: int = Field(description="lines already known from an earlier upload")
    matched: int
    unmatched: int
    ambiguous: int
    created_at: datetime


class LinePublic(ResponseModel):
    id: uuid.UUID
    statement_id: uuid.UUID
    booked_on: date
    amount: Amount
    currency: str
    reference: str
    counterparty: str
    status: LineStatus
    payment_id: uuid.UUID | None
    allocation_id: uuid.UUID | None
    matched_by: str | None
    version: int


class LineMatch(RequestModel):
    payment_id: uuid.UUID


class WebhookAck(ResponseModel):
    webhook_id: str
    applied: bool = Field(description="false: this webhook id was applied before")
    result: str


class HeldSchedules(ResponseModel):
    """What ``POST /schedules/held/build`` did."""

    built: list[SchedulePublic] = Field(
        description="schedules built now for their policy's owner, who may own payments now"
    )
    held: list[str] = Field(
        description="policy ids of this batch whose activation stays held: their owner still "
        "may not own payments, or the policy is not active"
    )
    remaining: int = Field(
        description="held activations after this batch, not examined yet: call again with "
        "after=next_after while it is not 0"
    )
    next_after: str | None = Field(
        description="the last policy id of this batch, to send as after; null when none remain"
    )
