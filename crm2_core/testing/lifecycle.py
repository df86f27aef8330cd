"""The testing kit's data lifecycle: what survives between tests.

Every test starts from the database as the migrations left it. After a test
the kit empties every table (the ``alembic_version_*`` tables stay) and puts
back the rows that *data migrations* wrote — deals' default pipelines, a
plugin's built-in rows — exactly as they were right after the migration ran.

How: whenever the kit's upgrade actually applies revisions of a plugin (its
``alembic_version_<name>`` table changes), it copies that plugin's tables
(``<name>_*``) as they are at that moment, before any test wrote to them.
The copy is kept per database URL for the rest of the run, so a later test
that enables the plugin again (no revision applied) gets the same rows back.
A test that downgrades and upgrades a plugin again takes a fresh copy.

Values are read and written through the driver without SQLAlchemy's type
processing, so what is put back is byte for byte what the migration wrote.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

VERSION_PREFIX = "alembic_version_"
Rows = list[dict[str, Any]]

# database URL -> table -> the rows its plugin's migrations left in it
_MIGRATED_ROWS: dict[str, dict[str, Rows]] = {}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sorted_tables(sync_conn: Connection) -> list[str]:
    """Every table, referenced tables before the tables that reference them."""
    return [t for t, _ in inspect(sync_conn).get_sorted_table_and_fkc_names() if t is not None]


async def _tables(conn: AsyncConnection) -> list[str]:
    """Every table's name (one cheap catalogue query: this runs after every test)."""
    if conn.dialect.name == "postgresql":
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return [r[0] for r in await conn.execute(text(query))]


# (database URL, tables) -> those tables in foreign-key order, worked out once
_INSERT_ORDER: dict[tuple[str, frozenset[str]], list[str]] = {}


async def _insert_order(conn: AsyncConnection, url: str, tables: set[str]) -> list[str]:
    key = (url, frozenset(tables))
    if key not in _INSERT_ORDER:
        ordered = await conn.run_sync(_sorted_tables)
        _INSERT_ORDER[key] = [t for t in ordered if t in tables]
    return _INSERT_ORDER[key]


async def version_rows(engine: AsyncEngine) -> dict[str, tuple[str, ...]]:
    """``{plugin: its applied revisions}`` from every ``alembic_version_<plugin>`` table."""
    found: dict[str, tuple[str, ...]] = {}
    async with engine.connect() as conn:
        for table in await _tables(conn):
            if table.startswith(VERSION_PREFIX):
                rows = await conn.execute(text(f"SELECT version_num FROM {_quote(table)}"))
                found[table[len(VERSION_PREFIX) :]] = tuple(sorted(r[0] for r in rows))
    return found


def _owner(table: str, plugins: list[str]) -> str | None:
    """The plugin whose prefix names ``table`` (the longest, so ``deals_x_*`` is not deals')."""
    owners = [p for p in plugins if table.startswith(p + "_")]
    return max(owners, key=len) if owners else None


async def remember_migrated_rows(
    engine: AsyncEngine, url: str, before: dict[str, tuple[str, ...]]
) -> None:
    """After an upgrade: copy the tables of every plugin whose revisions just changed."""
    after = await version_rows(engine)
    changed = {plugin for plugin, revisions in after.items() if before.get(plugin) != revisions}
    if not changed:
        return
    kept = _MIGRATED_ROWS.setdefault(url, {})
    async with engine.connect() as conn:
        for table in await _tables(conn):
            if table.startswith(VERSION_PREFIX) or _owner(table, list(after)) not in changed:
                continue
            result = await conn.execute(text(f"SELECT * FROM {_quote(table)}"))
            rows = [dict(row._mapping) for row in result]
            for column in await _json_columns(conn, table):
                for row in rows:  # asyncpg hands JSON back decoded, but takes it as text
                    if row[column] is not None:
                        row[column] = json.dumps(row[column])
            kept[table] = rows


async def _json_columns(conn: AsyncConnection, table: str) -> list[str]:
    if conn.dialect.name != "postgresql":
        return []
    found = await conn.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
            "AND table_schema = current_schema() AND data_type IN ('json', 'jsonb')"
        ),
        {"t": table},
    )
    return [r[0] for r in found]


def migrated_rows(url: str) -> dict[str, Rows]:
    """What :func:`reset_tables` puts back on this database (table -> rows)."""
    return _MIGRATED_ROWS.get(url, {})


async def _insert(conn: AsyncConnection, table: str, rows: Rows) -> None:
    if not rows:
        return
    columns = list(rows[0])
    names = ", ".join(_quote(c) for c in columns)
    params = ", ".join(f":p{i}" for i in range(len(columns)))
    statement = text(f"INSERT INTO {_quote(table)} ({names}) VALUES ({params})")
    await conn.execute(
        statement, [{f"p{i}": row[c] for i, c in enumerate(columns)} for row in rows]
    )


async def reset_tables(engine: AsyncEngine, url: str) -> None:
    """Empty every table but the version tables, then put back what the migrations wrote."""
    kept = migrated_rows(url)
    async with engine.begin() as conn:
        tables = [t for t in await _tables(conn) if not t.startswith(VERSION_PREFIX)]
        if conn.dialect.name == "postgresql":
            if tables:
                quoted = ", ".join(_quote(t) for t in tables)
                await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            await conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            for table in tables:
                await conn.execute(text(f"DELETE FROM {_quote(table)}"))
        for table in await _insert_order(conn, url, set(kept) & set(tables)):
            await _insert(conn, table, kept[table])


async def upgrade_keeping_rows(
    engine: AsyncEngine, url: str, upgrade: Callable[[], Awaitable[None]]
) -> None:
    """Run ``upgrade()`` and remember the rows of every plugin it migrated."""
    before = await version_rows(engine)
    await upgrade()
    await remember_migrated_rows(engine, url, before)
