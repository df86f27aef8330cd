"""The plugin's migrations with only the core and documents: round-trip, no drift.

Through the ``crm2`` command line, as an operator runs them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from crm2_core.testing import TEST_JWT_SECRET, TestDatabase, build_cli
from crm2_core.testing.databases import create_postgres_database, drop_postgres_database


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "documents_fresh_db" in metafunc.fixturenames:
        backends = [b.strip() for b in str(metafunc.config.getoption("--crm2-db")).split(",")]
        metafunc.parametrize("documents_fresh_db", [b for b in backends if b], indirect=True)


@pytest.fixture
def documents_fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    if request.param == "sqlite":
        yield TestDatabase("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'documents.db'}")
        return
    admin_url = str(request.config.getoption("--crm2-postgres-url"))
    database = create_postgres_database(admin_url, prefix="crm2_documents_mig")
    try:
        yield database
    finally:
        drop_postgres_database(admin_url, database)


def crm2(db: TestDatabase, *args: str) -> str:
    env = {
        "CRM2_DATABASE_URL": db.url,
        "CRM2_PLUGINS": "documents",
        "CRM2_ENV": "test",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
    }
    result = CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def inspect_db(db: TestDatabase, work: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(db.url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def documents_tables(db: TestDatabase) -> set[str]:
    names = inspect_db(db, lambda sync: inspect(sync).get_table_names())
    return {n for n in names if n.startswith(("documents_", "deals_"))}


def test_upgrade_downgrade_upgrade_with_only_documents(documents_fresh_db: TestDatabase) -> None:
    crm2(documents_fresh_db, "migrate")
    created = documents_tables(documents_fresh_db)
    assert created == {
        "documents_kind",
        "documents_document",
        "documents_version",
        "documents_credential",
    }
    keys = inspect_db(
        documents_fresh_db,
        lambda sync: sync.execute(text("SELECT key FROM documents_kind")).scalars().all(),
    )
    assert sorted(keys) == ["contract", "identity", "invoice", "other", "policy"]
    crm2(documents_fresh_db, "migrate", "--plugin", "documents", "downgrade", "base")
    assert documents_tables(documents_fresh_db) == set()
    crm2(documents_fresh_db, "migrate")
    assert documents_tables(documents_fresh_db) == created
    assert "pending" not in crm2(documents_fresh_db, "migrate", "current")


def test_the_migrations_match_the_models(documents_fresh_db: TestDatabase) -> None:
    crm2(documents_fresh_db, "migrate")
    import crm2_documents.models  # noqa: F401  (the tables join the shared metadata)

    def ours(obj: Any, name: Any, kind: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if kind == "table" else getattr(obj, "table", None)
        return table is None or str(table.name).startswith("documents_")

    def diff(sync: Any) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"include_object": ours})
        return list(compare_metadata(context, SQLModel.metadata))

    assert inspect_db(documents_fresh_db, diff) == []
