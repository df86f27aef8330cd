"""Running Alembic per plugin: one branch and one version table each.

The core migrates first, then the enabled plugins in dependency order, so a
plugin's foreign keys into its dependencies always find their tables. Disabling
a plugin leaves its tables and version table untouched and never blocks
upgrading the others.
"""

from __future__ import annotations

import ast
import logging
import re
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from crm2_core.errors import ConfigurationError
from crm2_core.migration_paths import environment_dir
from crm2_core.plugins import PluginRegistry

# Alembic is imported inside the functions that run it: `crm2 serve` only asks
# `states()`, which reads the version tables and the revision files directly
# (importing Alembic is about a third of a second of start-up CPU).
if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.sql.expression import ColumnClause

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationSource:
    plugin: str
    versions_dir: Path

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.plugin}"


@dataclass(frozen=True)
class BranchState:
    plugin: str
    current: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.heads)


def migration_sources(registry: PluginRegistry) -> list[MigrationSource]:
    """The enabled plugins that ship migrations, dependencies first."""
    sources = []
    for name, path in registry.call("crm2_migrations"):
        versions = Path(path)
        if not versions.is_dir():
            raise ConfigurationError(
                f"{name}: crm2_migrations returned {versions}, which is not a folder: "
                "return the plugin's migrations/versions folder"
            )
        sources.append(MigrationSource(name, versions))
    return sources


def _pick(sources: list[MigrationSource], plugin: str | None) -> list[MigrationSource]:
    if plugin is None:
        return sources
    chosen = [s for s in sources if s.plugin == plugin]
    if not chosen:
        names = ", ".join(s.plugin for s in sources)
        raise ConfigurationError(
            f"no enabled plugin {plugin!r} with migrations (have: {names}): "
            f"enable it in CRM2_PLUGINS or check the name"
        )
    return chosen


def alembic_config(source: MigrationSource, connection: Connection | None = None) -> Config:
    from argparse import Namespace

    from alembic.config import Config

    # quiet: Alembic's own "Generating … done" would precede the command's one line
    cfg = Config(cmd_opts=Namespace(quiet=True, x=None))
    cfg.set_main_option("script_location", str(environment_dir()))
    cfg.set_main_option("version_locations", str(source.versions_dir))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option(
        "file_template",
        "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_"
        + source.plugin
        + "_%%(slug)s",
    )
    cfg.set_main_option("truncate_slug_length", "40")
    cfg.attributes["crm2_plugin"] = source.plugin
    cfg.attributes["connection"] = connection
    return cfg


async def _run(
    engine: AsyncEngine, source: MigrationSource, action: Callable[[Config], Any]
) -> Any:
    """``action`` on ``source``'s branch in one transaction.

    :raises ConfigurationError: what Alembic refused (an unknown or unreachable
        revision: ``crm2 migrate --plugin auth downgrade nosuch``), naming the plugin.
    """
    from alembic.util import CommandError

    try:
        async with engine.begin() as conn:

            def run(sync_conn: Connection) -> Any:
                try:
                    return action(alembic_config(source, sync_conn))
                except (CommandError, DBAPIError):
                    raise
                except Exception as exc:  # only what ran on the connection, not connecting
                    raise _PythonFailure from exc

            return await conn.run_sync(run)
    except CommandError as exc:
        raise ConfigurationError(f"{source.plugin} migrations: {exc}") from None
    except DBAPIError as exc:
        if exc.statement is None:  # connecting failed: the CLI says so in its own words
            raise
        log.debug("%s migrations failed", source.plugin, exc_info=exc)
        raise RevisionFailed(_revision_failure(source, exc)) from None
    except _PythonFailure as failure:  # a revision's own bug: one line, like the database's
        error = failure.__cause__ or failure
        log.debug("%s migrations failed", source.plugin, exc_info=error)
        raise RevisionFailed(_python_failure(source, error)) from None


class RevisionFailed(Exception):
    """A revision the database refused; the message names the plugin, the revision and
    the database's reason. The branch's transaction is rolled back."""


class _PythonFailure(Exception):
    """Carries (as ``__cause__``) an error a revision raised in Python, out of ``run_sync``."""


def _revision_failure(source: MigrationSource, exc: DBAPIError) -> str:
    """``deals migrations: revision abc123 (file.py) failed: <the database's first line>``."""
    reason = str(exc.orig if exc.orig is not None else exc).strip()
    reason = _DRIVER_PREFIX.sub("", reason.splitlines()[0] if reason else type(exc).__name__)
    return _failed(source, exc, reason)


def _python_failure(source: MigrationSource, exc: BaseException) -> str:
    """``deals migrations: revision abc123 (file.py) failed, …: NameError: name 'x' is …``."""
    message = str(exc).strip()
    first = message.splitlines()[0] if message else ""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        first = f"{exc.msg} (line {exc.lineno})"
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return _failed(source, exc, reason)


def _failed(source: MigrationSource, exc: BaseException, reason: str) -> str:
    where = _where(source, exc)
    return f"{source.plugin} migrations:{where} failed, its changes rolled back: {reason}"


def _where(source: MigrationSource, exc: BaseException) -> str:
    """`` revision abc123 (file.py)``: the innermost frame in one of the branch's revisions
    (or, for a syntax error, the file that would not compile); empty when none is."""
    versions = source.versions_dir.resolve()
    paths = [Path(frame.filename) for frame in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        paths.append(Path(exc.filename))
    for path in reversed(paths):
        if path.suffix == ".py" and path.resolve().parent == versions:
            try:
                return f" revision {revision_ids(path)[0]} ({path.name})"
            except (ConfigurationError, SyntaxError, ValueError, OSError):
                return f" ({path.name})"
    return ""


# SQLAlchemy's asyncpg adapter prefixes the message with the exception's class.
_DRIVER_PREFIX = re.compile(r"^<class '[\w.]+'>: ")


async def upgrade(
    engine: AsyncEngine,
    registry: PluginRegistry,
    plugin: str | None = None,
    revision: str = "heads",
) -> None:
    from alembic import command

    for source in _pick(migration_sources(registry), plugin):
        await _run(engine, source, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(
    engine: AsyncEngine, registry: PluginRegistry, plugin: str | None = None, revision: str = "base"
) -> None:
    if plugin is None and revision != "base":
        raise ConfigurationError("downgrading to a revision needs --plugin NAME")
    if plugin is not None and revision == "base":
        await _refuse_while_dependents_keep_tables(engine, registry, plugin)
    from alembic import command

    for source in reversed(_pick(migration_sources(registry), plugin)):
        await _run(engine, source, lambda cfg: command.downgrade(cfg, revision))


def _dependents(registry: PluginRegistry, plugin: str) -> set[str]:
    """The enabled plugins whose tables may point at ``plugin``'s: those that name it in
    ``depends``, and those with a foreign key into its tables (every plugin may point at
    the core's and auth's, ``auth_user`` most often, without naming them)."""
    models = list(registry.collect("crm2_models"))
    owner = {model.__table__.name: name for name, model in models}
    dependents = set()
    for name, model in models:
        for key in model.__table__.foreign_keys:
            if name != plugin and owner.get(key.target_fullname.split(".")[0]) == plugin:
                dependents.add(name)
    for name in registry.names:
        manifest = registry.get(name).manifest
        if name != plugin and manifest is not None and plugin in manifest.depends:
            dependents.add(name)
    return dependents


async def _refuse_while_dependents_keep_tables(
    engine: AsyncEngine, registry: PluginRegistry, plugin: str
) -> None:
    """Removing a plugin's tables while a plugin that depends on it keeps its own would
    leave that plugin's rows naming records that are gone: its dependents go first."""
    dependents = _dependents(registry, plugin)
    if not dependents:
        return
    kept = [
        s.plugin for s in await states(engine, registry) if s.plugin in dependents and s.current
    ]
    if kept:
        names = ", ".join(sorted(kept))
        raise ConfigurationError(
            f"{names} depend(s) on {plugin} and still hold their tables: downgrade "
            f"{'them' if len(kept) > 1 else 'it'} first (crm2 migrate --plugin NAME "
            f"downgrade base), or leave {plugin} as it is"
        )


def _literal(node: ast.expr, path: Path, name: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ConfigurationError(
            f"{path}: {name} is not a literal; write the revision ids as strings"
        ) from None


# The first top-level function: Alembic's template writes the revision ids above
# ``def upgrade()``, and parsing only that head skips the bulk of a large revision.
_FIRST_DEF = re.compile(r"^(?:async[ \t]+)?def[ \t]", re.MULTILINE)


def revision_ids(path: Path) -> tuple[str, tuple[str, ...]]:
    """``(revision, down revisions)`` of one revision file, read without running it."""
    text = path.read_text(encoding="utf-8")
    first_def = _FIRST_DEF.search(text)
    if first_def is not None:
        try:
            found = _assigned_ids(text[: first_def.start()], path)
        except SyntaxError:  # the cut fell inside a string: read the whole file
            found = {}
        if {"revision", "down_revision"} <= found.keys():
            return _ids(found, path)
    return _ids(_assigned_ids(text, path), path)


def _assigned_ids(source: str, path: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in ast.parse(source, str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = _literal(value, path, target.id)
    return found


def _ids(found: dict[str, Any], path: Path) -> tuple[str, tuple[str, ...]]:
    revision = found.get("revision")
    if not isinstance(revision, str):
        raise ConfigurationError(f'{path}: no `revision = "…"` line; is it a revision file?')
    down = found.get("down_revision")
    downs = (down,) if isinstance(down, str) else tuple(down or ())
    return revision, downs


def heads(versions_dir: Path) -> tuple[str, ...]:
    """The branch's heads: its revisions that no other revision revises.

    What Alembic's ``ScriptDirectory.get_heads()`` answers for one plugin's folder
    (a test compares the two for every plugin), without importing Alembic or
    executing the revision files.
    """
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted(versions_dir.glob("*.py")):
        if path.name.startswith((".#", "__init__")):
            continue
        revision, downs = revision_ids(path)
        revisions[revision] = downs
    revised = {down for downs in revisions.values() for down in downs}
    return tuple(sorted(r for r in revisions if r not in revised))


def current_revisions(
    sync_conn: Connection, version_table: str, tables: set[str] | None = None
) -> tuple[str, ...]:
    """The revision ids recorded in ``version_table``; none when the table does not exist.

    ``tables``: the database's table names when the caller listed them already.
    """
    from sqlalchemy import column, select, table

    exists = (
        version_table in tables
        if tables is not None
        else inspect(sync_conn).has_table(version_table)
    )
    if not exists:
        return ()
    version: ColumnClause[str] = column("version_num")
    query = select(version).select_from(table(version_table))
    return tuple(sorted(sync_conn.execute(query).scalars()))


async def states(
    engine: AsyncEngine, registry: PluginRegistry, plugin: str | None = None
) -> list[BranchState]:
    """Each branch's recorded revisions against its heads, read directly (no Alembic).

    ``crm2 serve`` asks this on every start; the version tables hold the revision
    ids, and the heads come from the revision files' ``revision``/``down_revision``.
    """
    sources = _pick(migration_sources(registry), plugin)

    def current(sync_conn: Connection) -> list[tuple[str, ...]]:
        tables = set(inspect(sync_conn).get_table_names())  # one query, not one per branch
        return [current_revisions(sync_conn, s.version_table, tables) for s in sources]

    async with engine.connect() as conn:
        now = await conn.run_sync(current)
    return [
        BranchState(source.plugin, recorded, heads(source.versions_dir))
        for source, recorded in zip(sources, now, strict=True)
    ]


def history(registry: PluginRegistry, plugin: str | None = None) -> list[tuple[str, str, str]]:
    """``(plugin, revision, message)`` newest first per plugin."""
    from alembic.script import ScriptDirectory

    rows = []
    for source in _pick(migration_sources(registry), plugin):
        script = ScriptDirectory.from_config(alembic_config(source))
        for rev in script.walk_revisions():
            rows.append((source.plugin, rev.revision, rev.doc or ""))
    return rows


async def make_migration(registry: PluginRegistry, plugin: str, message: str) -> Path | None:
    """Autogenerate a revision for ``plugin`` against a scratch SQLite database.

    The scratch database is migrated to the current heads of the core and the
    plugin's dependencies first, so the new revision holds only what changed
    in this plugin's models. Returns the new file, or ``None`` when nothing changed.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    from crm2_core.db.engine import create_engine
    from crm2_core.settings import Settings

    sources = migration_sources(registry)
    target = _pick(sources, plugin)[0]
    for _name, models in registry.call("crm2_models"):
        list(models)  # importing the classes is what registers their tables
    with tempfile.TemporaryDirectory(prefix="crm2-makemigrations-") as tmp:
        engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp}/scratch.db"))
        try:
            for source in sources:
                await _run(engine, source, lambda cfg: command.upgrade(cfg, "heads"))
                if source == target:
                    break
            script = ScriptDirectory.from_config(alembic_config(target))
            first = not script.get_heads()

            def generate(cfg: Config) -> Any:
                cfg.attributes["skip_empty"] = True
                return command.revision(
                    cfg,
                    message=message,
                    autogenerate=True,
                    branch_label=plugin if first else None,
                    version_path=str(target.versions_dir),
                )

            created = await _run(engine, target, generate)
        finally:
            await engine.dispose()
    if created is None:
        return None
    scripts = created if isinstance(created, list) else [created]
    return Path(scripts[0].path) if scripts and scripts[0] is not None else None
