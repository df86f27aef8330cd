"""The core's own tables (``core_*``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from crm2_core.db import UtcDateTime, utcnow


class IdempotencyRecord(SQLModel, table=True):
    """A creating POST seen with an ``Idempotency-Key``, and the response it produced."""

    __tablename__ = "core_idempotency_key"
    __table_args__ = {"info": {"plugin": "core"}}

    scope: str = Field(primary_key=True, max_length=80)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    state: str = Field(max_length=16)  # in_progress | done
    locked_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    response_status: int | None = None
    response_headers: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response_body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


MODELS: list[type[SQLModel]] = [IdempotencyRecord]
