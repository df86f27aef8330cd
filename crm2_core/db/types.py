"""Column types and defaults used across crm2."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# The first and last instants stored live with the request check that refuses times
# before the first: crm2_core.db imports crm2_core.schemas, never the reverse.
from crm2_core.schemas import FIRST_INSTANT, LAST_INSTANT


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite keeps no zone).

    A time outside ``FIRST_INSTANT``..``LAST_INSTANT`` is bound as the nearer end: a
    filter such as ``?updated_since=0001-01-01T00:00:00+01:00`` compares as "since the
    beginning". Request bodies never get that far: ``RequestModel`` refuses a time
    before the first instant (a 422 naming the field) and takes one past the last as
    the last, so what a POST echoes is what a later GET shows.
    """

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
            value = LAST_INSTANT if value.year > 1 else FIRST_INSTANT
        # asyncpg binds datetime.max/min as ±infinity and reads those back naive, past
        # the result processing below: keep one microsecond inside.
        value = min(max(value, FIRST_INSTANT), LAST_INSTANT)
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
