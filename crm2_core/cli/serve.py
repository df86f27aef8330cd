"""``crm2 serve``: the one command that builds the web application.

The other commands and ``crm2 worker`` build the application context
(``crm2_core.bootstrap``) without the web layer; a test keeps it so.
"""

from __future__ import annotations

import click

from crm2_core.cli.commands import _with_context, console
from crm2_core.cli.main import cli, fail, load_context, run_async
from crm2_core.errors import ConfigurationError


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--migrate/--no-migrate",
    default=False,
    show_default=True,
    help="apply pending migrations before serving",
)
def serve(host: str, port: int, migrate: bool) -> None:
    """Run the HTTP API (and, with the in-process broker, the event handlers)."""
    from crm2_core import migrate as migrations  # Alembic: only when needed
    from crm2_core.cli.bootstrap import ensure_first_admin
    from crm2_core.http.app import create_app
    from crm2_core.http.server import run_server

    context = load_context()

    async def prepare() -> None:
        if migrate:
            await migrations.upgrade(context.engine, context.plugins)
        pending = [
            s.plugin
            for s in await migrations.states(context.engine, context.plugins)
            if not s.up_to_date
        ]
        if pending:
            raise ConfigurationError(
                f"the database is not migrated (pending: {', '.join(pending)}): run "
                "`crm2 migrate` first, or start with `crm2 serve --migrate`"
            )
        await ensure_first_admin(context, console)

    try:
        run_async(_with_context(context, prepare()))
    except ConfigurationError as exc:
        fail(str(exc))
    app = create_app(context=context)
    app.state.freeze_gc = True
    console.print(f"crm2 on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    run_server(
        app, host=host, port=port, log_level=context.settings.log_level.lower(), proxy_headers=True
    )
