"""Column types and defaults used across crm2."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


# The first and last instants stored: one microsecond inside what Python can hold.
_FIRST = (datetime.min + timedelta(microseconds=1)).replace(tzinfo=UTC)
_LAST = (datetime.max - timedelta(microseconds=1)).replace(tzinfo=UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; crm2 stores timezone-aware UTC times only")
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            # Within a day of year 1 or 9999 in another zone: there is no earlier or
            # later instant to store or compare with, so take the extreme itself.
            value = _LAST if value.year > 1 else _FIRST
        # asyncpg binds datetime.max/min as ±infinity and reads those back naive, past
        # the result processing below: keep one microsecond inside.
        value = min(max(value, _FIRST), _LAST)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg decodes a timestamptz as an aware datetime in UTC already: a Python
        # call per value (four per deal, 200 per list page) that changes nothing. Every
        # column of this type is a timestamptz (a test checks the migrated schema).
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
