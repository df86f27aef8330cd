"""pytest fixtures for crm2 and its plugins (auto-loaded through the ``pytest11`` entry point).

- ``crm2_database``: the run's database, once per backend (``--crm2-db sqlite,postgresql``);
  tests that use it run once per backend, ids ``[sqlite]`` / ``[postgresql]``.
- ``crm2_settings``: core settings pointing at it, plugins from ``@pytest.mark.crm2_plugins``.
- ``crm2_app_factory``: ``await make(plugins=, extra_plugins=, **settings)`` → ``Crm2TestApp``.
- ``crm2``: the app for the test's marker, started; afterwards every table is emptied
  and the rows data migrations wrote are put back (``lifecycle.py``).
- ``crm2_fresh_database``: an empty database of this test's own, once per backend, dropped
  afterwards (migration tests: ``crm2_core.testing.PluginMigrations``).
- ``crm2_redis_url``: the machine's Redis with a key prefix of this test's own, cleaned up.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from crm2_core.settings import Settings
from crm2_core.testing.app import Crm2TestApp, UndeclaredProblem, start_test_app
from crm2_core.testing.databases import (
    DEFAULT_POSTGRES_URL,
    TestDatabase,
    create_postgres_database,
    drop_postgres_database,
    sqlite_database,
)
from crm2_core.testing.lifecycle import reset_tables

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crm2")
    group.addoption(
        "--crm2-db",
        default=os.environ.get("CRM2_TEST_DATABASES", "sqlite"),
        help="comma list of backends database tests run on: sqlite,postgresql",
    )
    group.addoption(
        "--crm2-postgres-url",
        default=os.environ.get("CRM2_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL server (and maintenance database) to create test databases on",
    )
    group.addoption(
        "--crm2-redis-url", default=os.environ.get("CRM2_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "crm2_plugins(*names): the plugins the test's crm2 app enables"
    )


def _backends(config: pytest.Config) -> list[str]:
    names = [b.strip() for b in str(config.getoption("--crm2-db")).split(",") if b.strip()]
    unknown = set(names) - {"sqlite", "postgresql"}
    if unknown:
        raise pytest.UsageError(f"--crm2-db: unknown backend(s) {sorted(unknown)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crm2_database" in metafunc.fixturenames:
        metafunc.parametrize(
            "crm2_database", _backends(metafunc.config), indirect=True, scope="session"
        )
    if "crm2_fresh_database" in metafunc.fixturenames:
        metafunc.parametrize("crm2_fresh_database", _backends(metafunc.config), indirect=True)


@pytest.fixture(scope="session")
def crm2_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestDatabase]:
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield sqlite_database(tmp_path_factory.mktemp("crm2-sqlite"))
        return
    admin_url = str(request.config.getoption("--crm2-postgres-url"))
    database = create_postgres_database(admin_url)
    try:
        yield database
    finally:
        drop_postgres_database(admin_url, database)


@pytest.fixture
def crm2_fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    """An empty database (nothing migrated) only this test uses; dropped afterwards."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield TestDatabase("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'crm2-fresh.db'}")
        return
    admin_url = str(request.config.getoption("--crm2-postgres-url"))
    database = create_postgres_database(admin_url, prefix="crm2_fresh")
    try:
        yield database
    finally:
        drop_postgres_database(admin_url, database)


def _marker_plugins(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("crm2_plugins")
    return ",".join(marker.args) if marker else ""


@pytest.fixture
def crm2_settings(request: pytest.FixtureRequest, crm2_database: TestDatabase) -> Settings:
    return Settings(
        _env_file=None,
        env="test",
        database_url=crm2_database.url,
        plugins=_marker_plugins(request),
        redis_url=None,
        redis_prefix=f"crm2test:{uuid.uuid4().hex[:8]}:",
        # Scheduled jobs run when a test calls them, on the test's clock: a scheduler started
        # with the app would run every due job at start-up on the real clock, racing the test
        # (a test that wants the loop passes scheduler_enabled=True to crm2_app_factory).
        scheduler_enabled=False,
    )


AppFactory = Callable[..., Awaitable[Crm2TestApp]]


@pytest.fixture
async def crm2_app_factory(crm2_settings: Settings) -> AsyncIterator[AppFactory]:
    started: list[Crm2TestApp] = []

    async def make(
        *,
        plugins: list[str] | None = None,
        extra_plugins: tuple[object, ...] = (),
        plugin_settings: dict[str, dict[str, Any]] | None = None,
        **overrides: Any,
    ) -> Crm2TestApp:
        values = crm2_settings.model_dump()
        values.update(overrides)
        if plugins is not None:
            values["plugins"] = ",".join(plugins)
        elif extra_plugins and not values.get("plugins"):
            values["plugins"] = ",".join(cast(Any, p).manifest.name for p in extra_plugins)
        settings = Settings(_env_file=None, **values)
        app = await start_test_app(
            settings, extra_plugins=extra_plugins, plugin_settings=plugin_settings
        )
        started.append(app)
        return app

    undeclared: list[tuple[str, str, int]] = []
    try:
        yield make
    finally:
        for app in started:
            try:
                undeclared += app.undeclared_problems()
            finally:
                await app.aclose()
        if started:
            from crm2_core.db.engine import create_engine

            engine = create_engine(crm2_settings)
            try:
                await reset_tables(engine, crm2_settings.database_url)
            finally:
                await engine.dispose()
    # Every problem a test provoked should be among its route's OpenAPI responses: said
    # as a warning in every plugin's test run (tests/http/test_openapi_truth.py asserts it).
    if undeclared:
        warnings.warn(
            UndeclaredProblem(
                "answered but not declared in OpenAPI (method, path, status): "
                + ", ".join(map(str, sorted(set(undeclared))))
            ),
            stacklevel=1,
        )


@pytest.fixture
async def crm2(crm2_app_factory: AppFactory) -> Crm2TestApp:
    return await crm2_app_factory()


@pytest.fixture
async def crm2_redis_url(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str]]:
    """``(url, prefix)`` on the machine's Redis; keys under the prefix are deleted afterwards."""
    from redis.asyncio import Redis

    url = str(request.config.getoption("--crm2-redis-url"))
    prefix = f"crm2test:{uuid.uuid4().hex[:12]}:"
    yield url, prefix
    redis = Redis.from_url(url)
    try:
        keys = [key async for key in redis.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
