"""``insert_rows``: a COPY on PostgreSQL that stores what an INSERT stores, in the transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text

from crm2_core.db.bulk import COPY_FROM_ROWS, insert_rows
from crm2_core.events.models import EventRecord

TABLE = EventRecord.__table__  # type: ignore[attr-defined]
ROME = timezone(timedelta(hours=1))


def _rows(count: int, tag: str) -> list[dict[str, Any]]:
    # no id, version or sequence: the column defaults (Python's, the server's) fill them;
    # a None JSON value is stored as JSON null, as an INSERT's (the column is NOT NULL)
    return [
        {"type": f"bulk.{tag}", "occurred_at": datetime(2026, 1, 1, 12, tzinfo=ROME),
         "actor_kind": "system", "actor_id": None, "subject": f"{tag}{n}",
         "data": None if n == 0 else {"n": n, "tags": ["a"]}, "trace_context": None}
        for n in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("count", [COPY_FROM_ROWS - 1, COPY_FROM_ROWS + 3])
async def test_rows_are_stored_as_an_insert_stores_them(crm2_app_factory: Any, count: int) -> None:
    app = await crm2_app_factory()
    async with app.context.session_factory() as session:
        await insert_rows(session, TABLE, _rows(count, "r"))
        await session.commit()
        stored = list(
            (await session.execute(select(EventRecord).order_by(text("sequence")))).scalars()
        )
    assert [r.subject for r in stored] == [f"r{n}" for n in range(count)]  # in order
    assert [r.data for r in stored] == [None, *({"n": n, "tags": ["a"]} for n in range(1, count))]
    assert {(r.version, r.position, r.relayed_at) for r in stored} == {(1, None, None)}
    assert {r.occurred_at for r in stored} == {datetime(2026, 1, 1, 11, tzinfo=UTC)}
    assert len({r.id for r in stored}) == count and all(r.id for r in stored)
    async with app.context.session_factory() as session:
        json_null = text("SELECT count(*) FROM core_event WHERE data IS NOT NULL")
        assert (await session.execute(json_null)).scalar() == count


async def test_rows_roll_back_with_the_transaction(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory()
    async with app.context.session_factory() as session:
        # COPY as the transaction's first statement still runs inside it
        await insert_rows(session, TABLE, _rows(COPY_FROM_ROWS, "gone"))
        await session.rollback()
        count = text("SELECT count(*) FROM core_event")
        assert (await session.execute(count)).scalar() == 0


async def test_an_unknown_column_is_refused(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory()
    async with app.context.session_factory() as session:
        rows = [row | {"nope": 1} for row in _rows(COPY_FROM_ROWS, "x")]
        with pytest.raises(Exception, match="nope"):
            await insert_rows(session, TABLE, rows)
