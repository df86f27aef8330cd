"""Optimistic concurrency in SQL: ``UPDATE``/``DELETE … WHERE version = :expected``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.errors import PreconditionFailed


async def update_versioned(
    session: AsyncSession, model: Any, where: Any, expected_version: int, values: dict[str, Any]
) -> None:
    """``UPDATE … WHERE <where> AND version = :expected``: works on SQLite and PostgreSQL alike.

    A concurrent writer that got there first leaves no row to update: 412.
    """
    stmt = (
        update(model)
        .where(where, model.version == expected_version)
        .values(**values, version=model.version + 1)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise PreconditionFailed("the resource changed while you were updating it; read it again")


async def delete_versioned(
    session: AsyncSession, model: Any, where: Any, expected_version: int | None
) -> bool:
    """``DELETE … WHERE <where> [AND version = :expected]``: whether a row went.

    The version is a condition of the statement itself, so a write committing between the
    caller's read and this delete leaves the row in place on both databases.
    """
    stmt = delete(model).where(where)
    if expected_version is not None:
        stmt = stmt.where(model.version == expected_version)
    result = await session.execute(stmt.execution_options(synchronize_session="fetch"))
    return bool(result.rowcount)  # type: ignore[attr-defined]
