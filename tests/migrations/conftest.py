"""``fresh_database``: an empty database of its own per test, once per ``--crm2-db`` backend.

Migration tests create and drop schemas, so they never touch the shared
``crm2_database`` the other tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm2_core.testing.databases import (
    TestDatabase,
    create_postgres_database,
    drop_postgres_database,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fresh_database" in metafunc.fixturenames:
        backends = [
            b.strip() for b in str(metafunc.config.getoption("--crm2-db")).split(",") if b.strip()
        ]
        metafunc.parametrize("fresh_database", backends, indirect=True)


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield TestDatabase("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
        return
    admin_url = str(request.config.getoption("--crm2-postgres-url"))
    database = create_postgres_database(admin_url, prefix="crm2_migrations")
    try:
        yield database
    finally:
        drop_postgres_database(admin_url, database)
