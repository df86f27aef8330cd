"""``crm2``: serve, migrate, makemigrations, plugins, users, seed — plus plugins' own commands."""

from __future__ import annotations

import asyncio
import gc
import logging
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from crm2_core.context import AppContext
from crm2_core.errors import ConfigurationError
from crm2_core.settings import Settings, load_settings

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def load_context() -> AppContext:
    """Settings, plugins and services from the environment; config errors become one clean line."""
    from crm2_core.bootstrap import build_app_context

    try:
        settings = load_settings()
        say_which_sqlite_file(settings)
        check_sqlite_folder(settings)
        return build_app_context(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file ``CRM2_DATABASE_URL`` names, when it names a file."""
    if not settings.is_sqlite:
        return None
    path = make_url(settings.database_url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def say_which_sqlite_file(settings: Settings) -> None:
    """A relative path is relative to wherever the command runs: say where that is."""
    path = sqlite_file(settings)
    if path is not None and not path.is_absolute():
        click.echo(f"crm2: SQLite database {path.resolve()} ({path} from here)", err=True)


def check_sqlite_folder(settings: Settings) -> None:
    """SQLite makes the file but not its folder: say so before aiosqlite fails to open it."""
    path = sqlite_file(settings)
    if path is not None and not path.resolve().parent.is_dir():
        raise ConfigurationError(
            f"CRM2_DATABASE_URL: the folder of the SQLite file {path.resolve()} does not exist:"
            " create it or point CRM2_DATABASE_URL elsewhere"
        )


def _missing_table(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "no such table" in text or (
        type(exc.orig).__name__ in {"UndefinedTableError", "UndefinedTable"}
        or ("relation" in text and "does not exist" in text)
    )


class Crm2Group(click.Group):
    """The core's commands, and the plugins' (``crm2_cli``) added when first asked for.

    A core command (``crm2 serve``, ``crm2 migrate``) runs without the plugins'
    command modules: they are loaded only when the name is not a core command or
    the commands are listed (``--help``, completion). Also turns the one error a
    new user meets first (no tables yet) into one line.
    """

    plugin_commands_pending = False
    plugin_commands_error: str | None = None  # why the plugins could not add their commands

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and self._add_plugin_commands():
            command = super().get_command(ctx, cmd_name)
        if command is None and self.plugin_commands_error is not None:
            fail(
                f"no command {cmd_name!r} (the plugins, which add theirs, "
                f"cannot start: {self.plugin_commands_error})"
            )
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def _add_plugin_commands(self) -> bool:
        """Let the enabled plugins add their commands; whether any were pending."""
        if not self.plugin_commands_pending:
            return False
        self.plugin_commands_pending = False
        from crm2_core.plugins import build_plugin_manager

        try:
            registry = build_plugin_manager(load_settings())
        except ConfigurationError as exc:  # the core commands still run and report it too
            self.plugin_commands_error = str(exc)
            return True
        except Exception:  # the core commands still work and report the error themselves
            return True
        for _ in registry.call("crm2_cli", cli=self):
            pass
        return True

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            if exc.statement is None:  # no statement yet: connecting failed
                raise click.ClickException(_cannot_connect(exc.orig or exc)) from None
            if not _missing_table(exc):
                raise
            where = ""
            try:
                path = sqlite_file(Settings())
                where = f" ({path.resolve()})" if path is not None else ""
            except Exception:  # the message matters more than the path
                pass
            raise click.ClickException(
                f"the database{where} is not migrated: run `crm2 migrate` first"
            ) from None
        except OSError as exc:  # asyncpg's own: refused, unknown host, timed out
            if not _raised_by_driver(exc):
                raise
            raise click.ClickException(_cannot_connect(exc)) from None


def _raised_by_driver(exc: BaseException) -> bool:
    """Whether ``exc`` came out of the database driver (asyncpg, aiosqlite)."""
    return any(
        "/asyncpg/" in frame.filename or "/aiosqlite/" in frame.filename
        for frame in traceback.extract_tb(exc.__traceback__)
    )


def _cannot_connect(reason: BaseException) -> str:
    """``cannot connect to the database URL (password hidden): reason``."""
    try:
        url = make_url(Settings().database_url).render_as_string(hide_password=True)
    except Exception:  # the reason matters more than the address
        url = "(CRM2_DATABASE_URL)"
    detail = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return f"cannot connect to the database {url}: {detail}: check CRM2_DATABASE_URL"


@click.group(
    cls=Crm2Group,
    help="crm2: a plugin-based CRM. Settings come from CRM2_* variables (see env.example).",
)
@click.version_option(package_name="crm2-core", prog_name="crm2")
@click.pass_context
def cli(ctx: click.Context) -> None:
    from crm2_core.observability.logs import configure_from_environment

    if ctx.invoked_subcommand != "serve":
        gc.enable()  # paused by main() for the start-up; serve resumes it once the app is up

    configure_from_environment()
    # Alembic tells its context and each revision at INFO: noise on every command.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def build_cli() -> click.Group:
    from crm2_core.cli import broker, commands, doctor, events, openapi, serve  # noqa: F401

    cli.plugin_commands_pending = True  # added by the enabled plugins when first needed
    return cli


def main() -> None:
    # The cyclic GC is paused while the command starts: the start-up allocates hundreds of
    # thousands of objects that live as long as the process (modules, classes, models,
    # routes), and the collector would scan them over and over as they pile up (a tenth of
    # `crm2 serve`'s start-up CPU). cli() resumes it before any command but serve, which
    # resumes it when the app has started, after gc.freeze() (http/app.py).
    gc.disable()
    build_cli()(prog_name="crm2")
