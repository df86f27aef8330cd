"""The core's commands."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from crm2_core.cli.main import cli, fail, load_context, run_async
from crm2_core.cli.output import console
from crm2_core.context import AppContext
from crm2_core.errors import ConfigurationError, Crm2Error
from crm2_core.plugins.manager import PluginStatus
from crm2_core.settings import load_settings


async def _with_context(context: AppContext, work: Any) -> Any:
    try:
        return await work
    finally:
        await context.engine.dispose()


# -- migrations -----------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("--plugin", default=None, help="only this plugin's branch")
@click.pass_context
def migrate(ctx: click.Context, plugin: str | None) -> None:
    """Upgrade the core, then the enabled plugins in dependency order."""
    from crm2_core import migrate as migrations  # Alembic: only when needed

    ctx.obj = plugin
    if ctx.invoked_subcommand is not None:
        return
    context = load_context()
    try:
        run_async(
            _with_context(context, migrations.upgrade(context.engine, context.plugins, plugin))
        )
    except (ConfigurationError, migrations.RevisionFailed) as exc:
        fail(str(exc))
    console().print(
        "migrations applied: "
        + ", ".join(
            s.plugin
            for s in migrations.migration_sources(context.plugins)
            if plugin is None or s.plugin == plugin
        )
    )


@migrate.command()
@click.argument("revision", default="base")
@click.pass_obj
def downgrade(plugin: str | None, revision: str) -> None:
    """Downgrade one plugin (--plugin) to REVISION, or everything to base."""
    from crm2_core import migrate as migrations  # Alembic: only when needed

    context = load_context()
    try:
        run_async(
            _with_context(
                context, migrations.downgrade(context.engine, context.plugins, plugin, revision)
            )
        )
    except (ConfigurationError, migrations.RevisionFailed) as exc:
        fail(str(exc))
    console().print(f"downgraded {plugin or 'every plugin'} to {revision}")


@migrate.command()
@click.pass_obj
def current(plugin: str | None) -> None:
    """Each branch's applied revision and head."""
    from crm2_core import migrate as migrations  # Alembic: only when needed

    context = load_context()
    try:
        states = run_async(
            _with_context(context, migrations.states(context.engine, context.plugins, plugin))
        )
    except ConfigurationError as exc:
        fail(str(exc))
    from rich.table import Table

    table = Table("plugin", "current", "head", "state")
    for s in states:
        table.add_row(
            s.plugin,
            ",".join(s.current) or "-",
            ",".join(s.heads) or "-",
            "up to date" if s.up_to_date else "pending",
        )
    console().print(table)


@migrate.command()
@click.pass_obj
def history(plugin: str | None) -> None:
    """Every revision of each branch, newest first."""
    from crm2_core import migrate as migrations  # Alembic: only when needed

    context = load_context()
    try:
        rows = migrations.history(context.plugins, plugin)
    except ConfigurationError as exc:
        fail(str(exc))
    finally:
        run_async(context.engine.dispose())
    from rich.table import Table

    table = Table("plugin", "revision", "message")
    for row in rows:
        table.add_row(*row)
    console().print(table)


@cli.command()
@click.argument("plugin")
@click.option("-m", "--message", required=True, help="what the revision does")
def makemigrations(plugin: str, message: str) -> None:
    """Autogenerate a revision into PLUGIN's own migrations folder."""
    from crm2_core import migrate as migrations  # Alembic: only when needed

    context = load_context()
    try:
        path = run_async(
            _with_context(context, migrations.make_migration(context.plugins, plugin, message))
        )
    except (ConfigurationError, migrations.RevisionFailed) as exc:
        fail(str(exc))
    # click, not rich: a path is one line to copy, never wrapped at the terminal's width
    click.echo(f"created {path}" if path else f"no changes in {plugin}'s models")


# -- plugins --------------------------------------------------------------------------


@cli.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
def plugins_list() -> None:
    """Name, version, enabled, dependencies and status of every installed plugin.

    Runs even when a plugin keeps crm2 from starting: that plugin's status then
    says why (``incompatible``, ``missing dependency``, ``broken hook``,
    ``broken``, also for routes that cannot be mounted), and the command exits 1
    with the start-up error.
    """
    from crm2_core.plugins.diagnose import diagnose

    problem: str | None = None
    try:
        context = load_context()
    except click.ClickException as exc:
        problem = exc.message
        try:
            rows = diagnose(load_settings())
        except ConfigurationError as inner:  # a core setting itself is wrong
            fail(str(inner))
    else:
        rows = context.plugins.statuses()
        from crm2_core.cli.serve import mount_problem

        problem = mount_problem(context)
        if problem is not None:
            rows = [_blamed(row, problem) for row in rows]
        run_async(context.engine.dispose())
    from rich.table import Table

    table = Table("name", "version", "enabled", "depends", "status", "title")
    for row in rows:
        table.add_row(
            row.name,
            row.version,
            "yes" if row.enabled else "no",
            ",".join(row.depends) or "-",
            row.status,
            row.title,
        )
    console().print(table)
    if problem is not None:
        fail(problem)


def _blamed(row: PluginStatus, problem: str) -> PluginStatus:
    """``row`` marked ``broken`` when ``problem`` starts with its plugin's name."""
    if row.builtin or problem.split(" ", 1)[0].rstrip(":") != row.name:
        return row
    return dataclasses.replace(row, enabled=False, status=f"broken: {problem.splitlines()[0]}")


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="where to write it (default: ./crm2-NAME)",
)
@click.option("--title", default=None, help="the human title (default: from the name)")
def plugins_new(name: str, directory: Path | None, title: str | None) -> None:
    """Scaffold plugin NAME: every room of a crm2 plugin, tests included, ready to install."""
    from crm2_core.scaffold import new_plugin

    target = directory or Path(f"crm2-{name.replace('_', '-')}")
    try:
        files = new_plugin(name, target, title=title)
    except ConfigurationError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the plugin into {target}: {exc.strerror or exc}: choose another --dir")
    click.echo(f"created {target} ({len(files)} files). Next:")
    click.echo(f"  pip install -e '{target}[test]'")
    click.echo("  crm2 migrate")
    click.echo(f"  cd {target} && pytest")


# -- users ----------------------------------------------------------------------------


@cli.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--password", default=None, help="prompted for when not given")
@click.option(
    "--role",
    "roles",
    multiple=True,
    default=("viewer",),
    show_default=True,
    help="admin, manager, agent, viewer or a custom role; repeatable",
)
@click.option("--name", "full_name", default="")
def users_create(email: str, password: str | None, roles: tuple[str, ...], full_name: str) -> None:
    """Create a user."""
    from pydantic import ValidationError

    from crm2_core.auth.plugin import sync_permissions
    from crm2_core.auth.schemas import UserCreate

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserCreate(email=email, password=password, roles=list(roles), full_name=full_name)
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        return
    context = load_context()

    async def create() -> str:
        await sync_permissions(context)
        async with context.session_factory() as session:
            user = await context.auth.create_user(session, data)
            await session.commit()
            return str(user.id)

    try:
        user_id = run_async(_with_context(context, create()))
    except Crm2Error as exc:
        fail(exc.detail)
    console().print(f"created user {email} ({user_id}) with roles {', '.join(roles)}")


@users.command("unlock")
@click.argument("email")
def users_unlock(email: str) -> None:
    """Forget EMAIL's failed logins, so that no address waits before signing in as it."""
    from crm2_core.auth.schemas import normal_email

    context = load_context()
    account = normal_email(email)
    count = run_async(_with_context(context, context.auth.delays.unlock(account)))
    console().print(f"unlocked {account} ({count} address(es) had failed logins)")


@users.command("set-password")
@click.argument("email")
@click.option("--password", default=None, help="prompted for when not given")
@click.option(
    "--revoke-api-keys",
    is_flag=True,
    help="also revoke every API key EMAIL made (after a suspected compromise)",
)
def users_set_password(email: str, password: str | None, revoke_api_keys: bool) -> None:
    """Set EMAIL's password; their sessions and access tokens end at once."""
    from pydantic import ValidationError

    from crm2_core.auth.schemas import UserUpdate, normal_email

    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserUpdate(password=password, revoke_api_keys=revoke_api_keys)
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    context = load_context()
    account = normal_email(email)

    async def change() -> bool:
        service = context.auth
        async with context.session_factory() as session:
            found = await service.set_password(session, account, data)
            await session.commit()
        if found:
            await service.delays.unlock(account)
        return bool(found)

    try:
        found = run_async(_with_context(context, change()))
    except Crm2Error as exc:
        fail(exc.detail)
    if not found:
        fail(f"no user {account}")
    ended = "sessions and API keys" if revoke_api_keys else "sessions"
    console().print(f"password of {account} set; their {ended} were ended")


# -- seed -----------------------------------------------------------------------------


@cli.command()
@click.argument("name")
def seed(name: str) -> None:
    """Load the data set NAME (demo, load, …) through every plugin that provides it.

    All of it in one transaction: when a part fails, nothing of the set is kept."""
    from crm2_core.cli.seeding import load_seed

    context = load_context()
    try:
        loaded = run_async(_with_context(context, load_seed(context, name)))
    except ConfigurationError as exc:
        fail(str(exc))
    if not loaded:
        fail(f"no enabled plugin provides a data set called {name!r}")
    console().print(f"seeded {name}: {', '.join(loaded)}")
