"""Policy request and response bodies; the premium travels as a decimal string."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from crm2_core.api import (
    Amount,
    AwareIsoDateTime,
    Clearable,
    Currency,
    Filter,
    IsoDate,
    RequestModel,
    ResponseModel,
    UpdateModel,
    from_minor,
    to_minor,
)
from crm2_deals.models import Policy

PaymentFrequency = Literal["annual", "semi_annual", "quarterly", "monthly"]
PolicyStatus = Literal["draft", "active", "expired", "cancelled"]
SORT_FIELDS = ("updated_at", "created_at", "start_date", "end_date", "number")


def _check_money(premium: Decimal | None, currency: str | None) -> None:
    if premium is None or currency is None:
        return
    if premium < 0:
        raise ValueError("premium must not be negative")
    to_minor(premium, currency)  # more decimals than the currency has → ValueError → 422


class PolicyCreate(RequestModel):
    """A new policy; it starts as a draft unless recorded as already ``active``."""

    number: str = Field(min_length=1, max_length=100)
    insurer: str = Field(min_length=1, max_length=200)
    client_id: uuid.UUID
    deal_id: uuid.UUID | None = None
    product: str = Field(min_length=1, max_length=200)
    premium: Amount
    currency: Currency
    payment_frequency: PaymentFrequency = "annual"
    start_date: date
    end_date: date
    status: Literal["draft", "active"] = "draft"
    renewal_of: uuid.UUID | None = None
    owner_id: uuid.UUID | None = Field(
        None, description="defaults to the client's owner; only managers may name another"
    )

    @model_validator(mode="after")
    def _consistent(self) -> PolicyCreate:
        if self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        _check_money(self.premium, self.currency)
        return self


class PolicyUpdate(UpdateModel):
    """Fields to change; the status changes only through activate / cancel / the expiry job."""

    number: str | None = Field(None, min_length=1, max_length=100)
    insurer: str | None = Field(None, min_length=1, max_length=200)
    deal_id: Annotated[uuid.UUID | None, Clearable] = None
    product: str | None = Field(None, min_length=1, max_length=200)
    premium: Amount | None = None
    currency: Currency | None = None
    payment_frequency: PaymentFrequency | None = None
    start_date: date | None = None
    end_date: date | None = None
    owner_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PolicyUpdate:
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        _check_money(self.premium, self.currency)
        return self


class PolicyCancel(RequestModel):
    reason: str = Field("", max_length=2000)


class PolicyRenew(RequestModel):
    """Overrides for the draft renewal; by default it copies the policy, shifted by its term."""

    number: str | None = Field(None, min_length=1, max_length=100)
    premium: Amount | None = None
    start_date: date | None = None
    end_date: date | None = None


class PolicyPublic(ResponseModel, fields_of=Policy, exclude=("premium_minor",)):
    premium: Amount
    payment_frequency: PaymentFrequency
    status: PolicyStatus

    @classmethod
    def of(cls, row: Any) -> PolicyPublic:
        """A policy, or a list page's plain row (``Repository.page_rows``)."""
        return cls.model_validate(cls.values(row))

    @classmethod
    def values(cls, row: Any) -> dict[str, Any]:
        """``of``'s fields, unvalidated: a list page validates its rows at once
        (``page_response``), without a model built per row."""
        values = {name: getattr(row, name) for name in _POLICY_SHOWN}
        values["premium"] = from_minor(row.premium_minor, row.currency)
        return values


_POLICY_SHOWN = tuple(name for name in PolicyPublic.model_fields if name != "premium")


@dataclass(frozen=True)
class PolicyFilters:
    """The list's query parameters (``query_filters``); all optional, combined with AND."""

    owner: Annotated[uuid.UUID | None, Filter("owner's user id")] = None
    client: Annotated[uuid.UUID | None, Filter("client id")] = None
    deal: Annotated[uuid.UUID | None, Filter("deal id")] = None
    status: Annotated[tuple[PolicyStatus, ...], Filter("repeatable")] = ()
    insurer: Annotated[str | None, Filter("exact insurer", max_length=200)] = None
    end_before: Annotated[IsoDate | None, Filter("end_date on or before")] = None
    end_after: Annotated[IsoDate | None, Filter("end_date on or after")] = None
    updated_since: Annotated[AwareIsoDateTime | None, Filter("changed at or after")] = None
    q: Annotated[str | None, Filter("number, insurer", min_length=1, max_length=200)] = None
