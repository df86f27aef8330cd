"""``in_values`` / ``in_param``: ``IN`` a list, as one array parameter on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.db.bulk import insert_rows
from crm2_core.db.lists import in_param, in_values
from crm2_core.events.models import EventRecord
from tests.test_db_bulk import TABLE, _rows


@contextmanager
def _statements(session: AsyncSession, selecting: str) -> Iterator[list[str]]:
    """The SQL texts ``session``'s engine sends meanwhile that start with ``selecting``
    (the app's relay and stream polls share the engine)."""
    seen: list[str] = []
    engine = session.get_bind()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith(selecting):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _stored(session: AsyncSession, count: int) -> list[EventRecord]:
    await insert_rows(session, TABLE, _rows(count, "s"))
    await session.flush()
    return list((await session.execute(select(EventRecord))).scalars())


async def test_values_select_what_in_selects_with_one_text_per_statement(
    crm2_app_factory: Any,
) -> None:
    app = await crm2_app_factory()
    async with app.context.session_factory() as session:
        dialect = session.get_bind().dialect.name
        records = await _stored(session, 40)
        ids = [r.id for r in records]
        with _statements(session, "SELECT core_event.id \nFROM core_event") as seen:
            for wanted in (ids[:1], ids[:3], ids[5:35], [*ids[:2], uuid.uuid4()]):
                stmt = select(col(EventRecord.id)).where(
                    in_values(col(EventRecord.id), wanted, dialect)
                )
                found = set((await session.execute(stmt)).scalars())
                assert found == set(wanted) & set(ids)
        subjects = ["s1", "s7", "nobody"]
        stmt = select(col(EventRecord.subject)).where(
            in_values(col(EventRecord.subject), subjects, dialect)
        )
        assert sorted((await session.execute(stmt)).scalars()) == ["s1", "s7"]
        empty = select(col(EventRecord.id)).where(in_values(col(EventRecord.id), [], dialect))
        assert list((await session.execute(empty)).scalars()) == []
    assert len(seen) == 4  # the four look-ups above, nothing else
    if dialect == "postgresql":  # three lengths, one statement text: prepared once
        assert len(set(seen)) == 1 and "ANY" in seen[0], seen
    else:
        assert len(set(seen)) == 3  # lengths 1, 3, 30 and 3 again


async def test_a_named_parameter_takes_its_list_at_execution(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory()
    async with app.context.session_factory() as session:
        dialect = session.get_bind().dialect.name
        records = await _stored(session, 20)
        stmt = select(col(EventRecord.subject)).where(
            in_param(col(EventRecord.id), "wanted", dialect)
        )
        for chosen in (records[:2], records[10:]):
            result = await session.execute(stmt, {"wanted": [r.id for r in chosen]})
            assert sorted(result.scalars()) == sorted(r.subject for r in chosen)
