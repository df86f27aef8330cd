"""Per-plugin migrations on a fresh database: upgrade, downgrade, plugins coming and going."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from crm2_core import migrate
from crm2_core.db.engine import create_engine
from crm2_core.db.types import UtcDateTime
from crm2_core.errors import ConfigurationError
from crm2_core.plugins import PluginRegistry, build_plugin_manager
from crm2_core.settings import Settings
from crm2_core.testing.databases import TestDatabase
from crm2_hookspecs import PluginManifest, hookimpl

# The table stays in the shared SQLModel.metadata for the whole session: its
# name is unique to this module so that nothing else ever collides with it.
PLUGIN = "migtest"


class MigtestWidget(SQLModel, table=True):
    __tablename__ = "migtest_widget"
    __table_args__ = {"info": {"plugin": PLUGIN}}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, index=True)
    made_at: Any = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


class MigtestPlugin:
    manifest = PluginManifest(name=PLUGIN, title="Migration test plugin")

    def __init__(self, versions: Path) -> None:
        self.versions = versions

    @hookimpl
    def crm2_models(self) -> Sequence[type]:
        return [MigtestWidget]

    @hookimpl
    def crm2_migrations(self) -> Path:
        return self.versions


def registry_for(plugins: str, *extra: object) -> PluginRegistry:
    settings = Settings(_env_file=None, plugins=plugins)  # type: ignore[call-arg]
    return build_plugin_manager(settings, extra_plugins=extra)


def builtin_tables(registry: PluginRegistry) -> set[str]:
    return {model.__table__.name for _plugin, model in registry.collect("crm2_models")}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The plugin's first revision, made by ``make_migration``: ``(versions folder, file)``."""
    versions = tmp_path_factory.mktemp("migtest-versions")
    registry = registry_for(PLUGIN, MigtestPlugin(versions))
    path = asyncio.run(migrate.make_migration(registry, PLUGIN, "create widgets"))
    assert path is not None
    return versions, path


@pytest.fixture
def plugin(generated: tuple[Path, Path]) -> MigtestPlugin:
    return MigtestPlugin(generated[0])


@pytest.fixture
async def engine(fresh_database: TestDatabase) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(_env_file=None, database_url=fresh_database.url))  # type: ignore[call-arg]
    try:
        yield engine
    finally:
        await engine.dispose()


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def versions_of(engine: AsyncEngine, plugin: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT version_num FROM alembic_version_{plugin}"))
        return [row[0] for row in rows]


# -- the core and auth ----------------------------------------------------------------


async def test_upgrade_creates_every_table_and_a_version_table_per_plugin(
    engine: AsyncEngine,
) -> None:
    registry = registry_for("")

    await migrate.upgrade(engine, registry)

    tables = await table_names(engine)
    assert builtin_tables(registry) <= tables
    assert {"alembic_version_core", "alembic_version_auth"} <= tables
    assert len(await versions_of(engine, "core")) == 1
    assert len(await versions_of(engine, "auth")) == 1


async def test_every_utc_datetime_column_is_a_timestamptz_on_postgresql(
    engine: AsyncEngine,
) -> None:
    """``UtcDateTime`` takes asyncpg's datetimes as they come (aware, UTC): true only of a
    ``timestamp with time zone`` column, which every migration must have made."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the column types are PostgreSQL's")
    registry = build_plugin_manager(Settings(_env_file=None))  # type: ignore[call-arg]
    await migrate.upgrade(engine, registry)
    declared = {
        (model.__table__.name, column.name)
        for _plugin, model in registry.collect("crm2_models")
        for column in model.__table__.columns
        if isinstance(column.type, UtcDateTime)
    }
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            )
        )
        types = {(table, name): kind for table, name, kind in rows}

    assert len(declared) > 50
    assert {column: types.get(column) for column in declared} == dict.fromkeys(
        declared, "timestamp with time zone"
    )


async def test_downgrade_to_base_leaves_no_crm2_tables(engine: AsyncEngine) -> None:
    registry = registry_for("")
    await migrate.upgrade(engine, registry)

    await migrate.downgrade(engine, registry)

    remaining = {t for t in await table_names(engine) if not t.startswith("alembic_version_")}
    assert remaining == set()
    assert await versions_of(engine, "core") == []
    assert await versions_of(engine, "auth") == []


async def test_upgrade_after_downgrade_restores_the_schema(engine: AsyncEngine) -> None:
    registry = registry_for("")
    await migrate.upgrade(engine, registry)
    await migrate.downgrade(engine, registry)

    await migrate.upgrade(engine, registry)

    assert builtin_tables(registry) <= await table_names(engine)
    assert all(state.up_to_date for state in await migrate.states(engine, registry))


async def test_states_report_pending_then_up_to_date(engine: AsyncEngine) -> None:
    registry = registry_for("")

    before = await migrate.states(engine, registry)
    await migrate.upgrade(engine, registry)
    after = await migrate.states(engine, registry)

    assert [s.plugin for s in before] == ["core", "auth"]
    assert not any(s.up_to_date for s in before)
    assert all(s.up_to_date for s in after)
    assert all(s.current == s.heads for s in after)


def test_heads_read_from_the_files_match_alembic_for_every_installed_plugin() -> None:
    from alembic.script import ScriptDirectory

    registry = build_plugin_manager(Settings(_env_file=None))  # type: ignore[call-arg]
    sources = migrate.migration_sources(registry)

    assert len(sources) > 2  # the core, auth and the installed plugins
    for source in sources:
        script = ScriptDirectory.from_config(migrate.alembic_config(source))
        assert migrate.heads(source.versions_dir) == tuple(sorted(script.get_heads()))


def test_heads_of_a_branch_that_forked_and_merged(tmp_path: Path) -> None:
    def revision(name: str, down: str) -> None:
        (tmp_path / f"{name}.py").write_text(
            f'revision: str = "{name}"\ndown_revision = {down}\n', encoding="utf-8"
        )

    revision("a1", "None")
    revision("b2", '"a1"')
    revision("c3", '"a1"')
    assert migrate.heads(tmp_path) == ("b2", "c3")

    revision("d4", '("b2", "c3")')
    assert migrate.heads(tmp_path) == ("d4",)


def test_revision_ids_are_found_when_the_lines_above_upgrade_do_not_hold_them(
    tmp_path: Path,
) -> None:
    # Only the lines above the first ``def`` are parsed when they hold both ids;
    # a cut inside a string, or ids written below a function, read the whole file.
    (tmp_path / "a1.py").write_text(
        '"""Note\ndef looks like code here\n"""\nrevision = "a1"\ndown_revision = None\n'
        "def upgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    (tmp_path / "b2.py").write_text(
        'revision = "b2"\ndef upgrade() -> None:\n    pass\ndown_revision = "a1"\n',
        encoding="utf-8",
    )

    assert migrate.revision_ids(tmp_path / "a1.py") == ("a1", ())
    assert migrate.revision_ids(tmp_path / "b2.py") == ("b2", ("a1",))
    assert migrate.heads(tmp_path) == ("b2",)


def test_a_revision_file_without_literal_ids_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "odd.py").write_text('revision = "a" + "b"\n', encoding="utf-8")

    with pytest.raises(ConfigurationError, match="not a literal"):
        migrate.heads(tmp_path)


def test_serve_checks_migrations_without_importing_alembic() -> None:
    code = (
        "import sys, asyncio\n"
        "from crm2_core import migrate\n"
        "from crm2_core.cli import serve\n"
        "from crm2_core.db.engine import create_engine\n"
        "from crm2_core.plugins import build_plugin_manager\n"
        "from crm2_core.settings import Settings\n"
        "s = Settings(_env_file=None, database_url='sqlite+aiosqlite://', plugins='')\n"
        "e = create_engine(s)\n"
        "print([x.up_to_date for x in asyncio.run(migrate.states(e, build_plugin_manager(s)))])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == ["[False, False]", "[]"]


# -- makemigrations ------------------------------------------------------------------


def test_makemigrations_names_the_file_after_the_plugin(generated: tuple[Path, Path]) -> None:
    versions, path = generated

    assert path.parent == versions
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{4}_migtest_create_widgets\.py", path.name)


def test_makemigrations_labels_the_first_revision_with_the_plugin(
    generated: tuple[Path, Path],
) -> None:
    source = generated[1].read_text()

    assert "down_revision: str | None = None" in source
    assert re.search(r"branch_labels: .* = \('migtest',\)", source), source


def test_makemigrations_sees_only_the_plugins_tables(generated: tuple[Path, Path]) -> None:
    source = generated[1].read_text()
    upgrade = source[source.index("def upgrade()") : source.index("def downgrade()")]

    assert re.findall(r"op\.create_table\(\s*['\"](\w+)['\"]", upgrade) == ["migtest_widget"]
    assert "core_" not in upgrade and "auth_" not in upgrade


async def test_makemigrations_without_model_changes_writes_nothing(
    generated: tuple[Path, Path], plugin: MigtestPlugin
) -> None:
    registry = registry_for(PLUGIN, plugin)

    again = await migrate.make_migration(registry, PLUGIN, "nothing changed")

    assert again is None
    assert sorted(p.name for p in generated[0].glob("*.py")) == [generated[1].name]


# -- a plugin's own branch -----------------------------------------------------------


async def test_plugin_branch_upgrades_into_its_own_version_table(
    engine: AsyncEngine, plugin: MigtestPlugin
) -> None:
    registry = registry_for(PLUGIN, plugin)

    await migrate.upgrade(engine, registry)

    tables = await table_names(engine)
    assert {"migtest_widget", "alembic_version_migtest"} <= tables
    assert [s.plugin for s in await migrate.states(engine, registry)] == ["core", "auth", PLUGIN]
    assert all(s.up_to_date for s in await migrate.states(engine, registry))


async def test_plugin_branch_downgrades_with_the_rest(
    engine: AsyncEngine, plugin: MigtestPlugin
) -> None:
    registry = registry_for(PLUGIN, plugin)
    await migrate.upgrade(engine, registry)

    await migrate.downgrade(engine, registry)

    remaining = {t for t in await table_names(engine) if not t.startswith("alembic_version_")}
    assert remaining == set()


async def test_disabled_plugin_is_left_alone_while_the_others_upgrade(
    engine: AsyncEngine, plugin: MigtestPlugin
) -> None:
    with_plugin = registry_for(PLUGIN, plugin)
    await migrate.upgrade(engine, with_plugin)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO migtest_widget (name) VALUES ('kept')"))
    plugin_version = await versions_of(engine, PLUGIN)
    await migrate.downgrade(engine, with_plugin, plugin="auth")  # give the next upgrade work
    without_plugin = registry_for("", plugin)

    await migrate.upgrade(engine, without_plugin)

    assert all(s.up_to_date for s in await migrate.states(engine, without_plugin))
    assert "auth_user" in await table_names(engine)
    assert await versions_of(engine, PLUGIN) == plugin_version
    async with engine.connect() as conn:
        names = [row[0] for row in await conn.execute(text("SELECT name FROM migtest_widget"))]
    assert names == ["kept"]


async def test_upgrading_one_plugin_only(engine: AsyncEngine, plugin: MigtestPlugin) -> None:
    registry = registry_for(PLUGIN, plugin)

    await migrate.upgrade(engine, registry, plugin="core")

    states = {s.plugin: s.up_to_date for s in await migrate.states(engine, registry)}
    assert states == {"core": True, "auth": False, PLUGIN: False}


ROLE = (
    "INSERT INTO auth_role (name, description, builtin, created_at, updated_at, version) "
    "VALUES ('viewer', '', true, now(), now(), 1)"
)


async def test_an_api_key_expiring_at_infinity_is_moved_inside_the_calendar(
    engine: AsyncEngine,
) -> None:
    """Rows written as ±infinity before ``UtcDateTime`` kept the ends of time inside."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL stores infinity")
    registry = registry_for("")
    await migrate.upgrade(engine, registry, "auth", "9d4a6e2b7c13")
    await migrate.upgrade(engine, registry, "core")
    async with engine.begin() as conn:
        await conn.execute(text(ROLE))
        for name, expiry in (("never", "'infinity'"), ("always", "'-infinity'"), ("soon", "NULL")):
            await conn.execute(
                text(
                    "INSERT INTO auth_api_key (id, name, prefix, key_hash, role_name, "
                    "created_at, expires_at) VALUES (gen_random_uuid(), :name, :name, :name, "
                    f"'viewer', now(), {expiry})"
                ),
                {"name": name},
            )

    await migrate.upgrade(engine, registry)

    async with engine.connect() as conn:
        rows = dict((await conn.execute(text("SELECT name, expires_at FROM auth_api_key"))).all())
    assert rows["never"] == datetime.max.replace(tzinfo=UTC) - timedelta(microseconds=1)
    assert rows["always"] == datetime.min.replace(tzinfo=UTC) + timedelta(microseconds=1)
    assert rows["soon"] is None


class NeedyMigtestPlugin(MigtestPlugin):
    """The test plugin, depending on documents."""

    manifest = PluginManifest(name=PLUGIN, title="Migration test plugin", depends=("documents",))


async def test_a_plugin_keeps_its_tables_while_a_plugin_depending_on_it_keeps_its_own(
    engine: AsyncEngine, generated: tuple[Path, Path]
) -> None:
    """Removing documents' tables first would leave the dependent's rows naming documents
    that are gone."""
    registry = registry_for(f"documents,{PLUGIN}", NeedyMigtestPlugin(generated[0]))
    await migrate.upgrade(engine, registry)

    with pytest.raises(ConfigurationError, match=rf"{PLUGIN} depend.* on documents"):
        await migrate.downgrade(engine, registry, "documents")
    assert await versions_of(engine, "documents")  # nothing was removed

    await migrate.downgrade(engine, registry, PLUGIN)
    await migrate.downgrade(engine, registry, "documents")
    assert await versions_of(engine, "documents") == []


async def test_auth_and_the_core_keep_their_tables_while_any_plugin_keeps_its_own(
    engine: AsyncEngine,
) -> None:
    """Every plugin may point at the core's and auth's tables (``auth_user``) without
    declaring them in ``depends``: dropping auth first fails on PostgreSQL with the
    SQL of the foreign keys in the way, and on SQLite leaves rows naming users that are
    gone (and a later full downgrade that cannot find ``auth_user``)."""
    registry = registry_for("documents")
    await migrate.upgrade(engine, registry)

    with pytest.raises(ConfigurationError, match=r"documents depend.* on auth"):
        await migrate.downgrade(engine, registry, "auth")
    with pytest.raises(ConfigurationError, match=r"^auth depend.* on core"):
        await migrate.downgrade(engine, registry, "core")
    assert await versions_of(engine, "auth")  # nothing was removed

    await migrate.downgrade(engine, registry, "documents")
    await migrate.downgrade(engine, registry, "auth")
    assert await versions_of(engine, "auth") == []
