"""A plugin's second revision follows its first on the same branch."""

from __future__ import annotations

import re
from pathlib import Path

from branch_plugin import BranchPlugin
from sqlalchemy import inspect
from sqlmodel import Field, SQLModel

from crm2_core import migrate
from crm2_core.db.engine import create_engine
from crm2_core.plugins import PluginRegistry, build_plugin_manager
from crm2_core.settings import Settings

PLUGIN = "migchain"


class MigchainFirst(SQLModel, table=True):
    __tablename__ = "migchain_first"
    __table_args__ = {"info": {"plugin": PLUGIN}}

    id: int | None = Field(default=None, primary_key=True)


def registry_for(plugin: BranchPlugin) -> PluginRegistry:
    settings = Settings(_env_file=None, plugins=PLUGIN)  # type: ignore[call-arg]
    return build_plugin_manager(settings, extra_plugins=(plugin,))


def revision_of(path: Path) -> str:
    found = re.search(r"^revision: str = ['\"](\w+)['\"]", path.read_text(), re.MULTILINE)
    assert found is not None
    return found.group(1)


async def test_a_model_change_becomes_the_next_revision_of_the_branch(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    first = await migrate.make_migration(
        registry_for(BranchPlugin(PLUGIN, versions, [MigchainFirst])), PLUGIN, "first"
    )
    assert first is not None

    # A table added after the first revision (defined here so that it does not exist before).
    class MigchainSecond(SQLModel, table=True):
        __tablename__ = "migchain_second"
        __table_args__ = {"info": {"plugin": PLUGIN}}

        id: int | None = Field(default=None, primary_key=True)

    plugin = BranchPlugin(PLUGIN, versions, [MigchainFirst, MigchainSecond])
    second = await migrate.make_migration(registry_for(plugin), PLUGIN, "second")

    assert second is not None
    source = second.read_text()
    assert f"down_revision: str | None = '{revision_of(first)}'" in source
    assert "branch_labels: str | Sequence[str] | None = None" in source
    assert re.findall(r"op\.create_table\(\s*['\"](\w+)['\"]", source) == ["migchain_second"]

    engine = create_engine(
        Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'chain.db'}")  # type: ignore[call-arg]
    )
    try:
        await migrate.upgrade(engine, registry_for(plugin))
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert {"migchain_first", "migchain_second"} <= tables
