"""A hot Core ``SELECT`` sent straight through asyncpg on PostgreSQL.

For the few reads every page load makes (``/auth/me``): SQLAlchemy's execute path
(a greenlet hop, the execution context, the result's row processing) costs about as
much CPU as asyncpg's own round trip. The statement stays the one Core statement:
compiled once per dialect by SQLAlchemy (the same SQL, bind casts included), and
each column's own result processing (``UtcDateTime``) applied to the driver's values.
Other databases run it through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind parameter names, in ``$n`` order
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]


class DirectSelect:
    """``statement`` with named bind parameters, run by :meth:`rows`."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            sql = self.statement.compile(dialect=dialect)
            names = tuple(sql.positiontup or ())
            binds = tuple(
                sql.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            )
            results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            )
            compiled = _Compiled(sql.string, names, binds, results)
            self._compiled[dialect.name] = compiled
        return compiled

    async def rows(
        self, connection: AsyncConnection, params: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """The result rows as tuples, in the statement's column order.

        On PostgreSQL ``connection`` should be a read connection (``ReadConnectionDep``,
        no transaction): the driver runs the statement as it is, outside whatever
        transaction SQLAlchemy would otherwise have begun.
        """
        dialect = connection.dialect
        if dialect.driver != "asyncpg":
            result = await connection.execute(self.statement, dict(params))
            return [tuple(row) for row in result.all()]
        compiled = self._compile(dialect)
        args = [
            value if process is None else process(value)
            for process, value in zip(
                compiled.binds, (params[name] for name in compiled.names), strict=True
            )
        ]
        raw = await connection.get_raw_connection()
        records = await raw.driver_connection.fetch(compiled.sql, *args)  # type: ignore[union-attr]
        processors = compiled.results
        if not any(processors):
            return [tuple(record) for record in records]
        return [
            tuple(
                value if process is None else process(value)
                for process, value in zip(processors, record, strict=True)
            )
            for record in records
        ]
