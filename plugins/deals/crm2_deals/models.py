"""The deals plugin's tables (``deals_*``). Money is integer minor units + currency."""

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
    text,
)
from sqlmodel import Field, SQLModel

from crm2_core.api import UtcDateTime, new_id, utcnow

INFO = {"plugin": "deals"}


def _ts(nullable: bool = False) -> Any:
    return Column(UtcDateTime(), nullable=nullable)


def _owner() -> Any:
    return Column(ForeignKey("auth_user.id", ondelete="RESTRICT"), nullable=False, index=True)


class Client(SQLModel, table=True):
    """A person or a company the agency works with."""

    __tablename__ = "deals_client"
    __table_args__ = (
        Index(None, "owner_id", "updated_at"),
        Index(None, "updated_at", "id"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(max_length=16)  # person | company
    name: str = Field(max_length=300)
    emails: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    phones: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tax_id: str | None = Field(default=None, max_length=64, index=True)
    address: str = Field(default="", max_length=1000)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    owner_id: uuid.UUID = Field(sa_column=_owner())
    archived: bool = False
    # name, e-mails and phones folded (fold_text): what `q` searches
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class ClientEmail(SQLModel, table=True):
    """One row per client e-mail (lower-cased): the duplicate check and import upsert key."""

    __tablename__ = "deals_client_email"
    __table_args__ = {"info": INFO}

    client_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("deals_client.id", ondelete="CASCADE"), primary_key=True)
    )
    email: str = Field(primary_key=True, max_length=320, index=True)


class Contact(SQLModel, table=True):
    """A person at a company client."""

    __tablename__ = "deals_contact"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("deals_client.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(max_length=300)
    position: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Pipeline(SQLModel, table=True):
    __tablename__ = "deals_pipeline"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    is_default: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Stage(SQLModel, table=True):
    """An ordered step of a pipeline; its kind decides the status of the deals in it."""

    __tablename__ = "deals_stage"
    __table_args__ = (UniqueConstraint("pipeline_id", "position"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    pipeline_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("deals_pipeline.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(max_length=200)
    probability: int = Field(ge=0, le=100)
    kind: str = Field(max_length=8)  # open | won | lost
    position: int


class LostReason(SQLModel, table=True):
    """A managed reason a deal was lost."""

    __tablename__ = "deals_lost_reason"
    __table_args__ = {"info": INFO}

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    active: bool = True


class Deal(SQLModel, table=True):
    __tablename__ = "deals_deal"
    __table_args__ = (
        Index(None, "owner_id", "updated_at", "id"),
        Index(None, "pipeline_id", "stage_id"),
        Index(None, "status", "updated_at", "id"),
        Index(None, "updated_at", "id"),
        Index(None, "expected_close_date"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    title: str = Field(max_length=300)
    client_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("deals_client.id", ondelete="RESTRICT"), nullable=False, index=True
        )
    )
    pipeline_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("deals_pipeline.id", ondelete="RESTRICT"), nullable=False)
    )
    stage_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("deals_stage.id", ondelete="RESTRICT"), nullable=False)
    )
    status: str = Field(max_length=8)  # open | won | lost (follows the stage kind)
    value_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    owner_id: uuid.UUID = Field(sa_column=_owner())
    source: str = Field(default="", max_length=200)
    expected_close_date: date | None = None
    lost_reason_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("deals_lost_reason.id"), nullable=True)
    )
    lost_reason: str | None = Field(default=None, max_length=1000)
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    stage_entered_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class StageMove(SQLModel, table=True):
    """Every stage change of a deal."""

    __tablename__ = "deals_stage_history"
    __table_args__ = (Index(None, "deal_id", "moved_at"), {"info": INFO})

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    deal_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("deals_deal.id", ondelete="CASCADE"), nullable=False)
    )
    from_stage_id: uuid.UUID | None = None
    to_stage_id: uuid.UUID
    moved_by: uuid.UUID | None = None
    moved_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    seconds_in_previous: int | None = None


OPEN_RENEWAL = text("status IN ('draft', 'active')")


class Policy(SQLModel, table=True):
    """An insurance policy; ``renewal_of`` links a renewal to the policy it renews."""

    __tablename__ = "deals_policy"
    __table_args__ = (
        UniqueConstraint("insurer", "number"),
        Index(None, "owner_id", "updated_at", "id"),
        Index(None, "status", "end_date"),
        Index(None, "updated_at", "id"),
        # at most one open (draft or active) renewal per policy, however renewals race
        Index(
            "uq_deals_policy_open_renewal",
            "renewal_of",
            unique=True,
            sqlite_where=OPEN_RENEWAL,
            postgresql_where=OPEN_RENEWAL,
        ),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    number: str = Field(max_length=100)
    insurer: str = Field(max_length=200)
    client_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("deals_client.id", ondelete="RESTRICT"), nullable=False, index=True
        )
    )
    deal_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            ForeignKey("deals_deal.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    product: str = Field(max_length=200)
    premium_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    payment_frequency: str = Field(max_length=16)  # annual | semi_annual | quarterly | monthly
    start_date: date
    end_date: date
    status: str = Field(max_length=16)  # draft | active | expired | cancelled
    renewal_of: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("deals_policy.id", ondelete="SET NULL"), nullable=True),
    )
    renewal_notified_on: date | None = None
    owner_id: uuid.UUID = Field(sa_column=_owner())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


class Activity(SQLModel, table=True):
    """A note, call, meeting, e-mail or system entry on a client, deal or policy."""

    __tablename__ = "deals_activity"
    __table_args__ = (
        Index(None, "client_id", "occurred_at", "id"),
        Index(None, "deal_id", "occurred_at"),
        Index(None, "policy_id", "occurred_at"),
        Index(None, "owner_id", "occurred_at"),
        {"info": INFO},
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(max_length=16)  # note | call | meeting | email | system
    client_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("deals_client.id", ondelete="CASCADE"), nullable=False)
    )
    deal_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("deals_deal.id", ondelete="CASCADE"), nullable=True),
    )
    policy_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("deals_policy.id", ondelete="CASCADE"), nullable=True),
    )
    author_id: uuid.UUID | None = None
    owner_id: uuid.UUID = Field(sa_column=_owner())
    subject: str = Field(default="", max_length=300)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    version: int = 1


MODELS: list[type[SQLModel]] = [
    Client,
    ClientEmail,
    Contact,
    Pipeline,
    Stage,
    LostReason,
    Deal,
    StageMove,
    Policy,
    Activity,
]
