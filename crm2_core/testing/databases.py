"""Per-run databases: a SQLite file, or a PostgreSQL database created and dropped by the run."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class TestDatabase:
    """One database a test run owns."""

    __test__ = False  # not a test class, despite the name
    backend: str  # "sqlite" | "postgresql"
    url: str


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_postgres_database(admin_url: str, prefix: str = "crm2_test") -> TestDatabase:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return TestDatabase("postgresql", url)


def drop_postgres_database(admin_url: str, database: TestDatabase) -> None:
    name = make_url(database.url).database

    async def drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def sqlite_database(folder: Path) -> TestDatabase:
    return TestDatabase("sqlite", f"sqlite+aiosqlite:///{folder / 'crm2-test.db'}")


async def empty_tables(engine: AsyncEngine) -> None:
    """Delete every row of every table but the migration bookkeeping, between tests."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            rows = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
            tables = [r[0] for r in rows if not r[0].startswith("alembic_version")]
            if tables:
                quoted = ", ".join(f'"{t}"' for t in tables)
                await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            rows = await conn.execute(
                text(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            )
            tables = [r[0] for r in rows if not r[0].startswith("alembic_version")]
            await conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            for table in tables:
                await conn.execute(text(f'DELETE FROM "{table}"'))
