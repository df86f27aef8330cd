"""``crm2 serve``: the one command that builds the web application.

The other commands and ``crm2 worker`` build the application context
(``crm2_core.bootstrap``) without the web layer; a test keeps it so.
"""

from __future__ import annotations

import socket

import click

from crm2_core.cli.commands import _with_context
from crm2_core.cli.main import cli, fail, load_context, run_async
from crm2_core.context import AppContext
from crm2_core.errors import ConfigurationError


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--migrate/--no-migrate",
    default=False,
    show_default=True,
    help="apply pending migrations before serving",
)
def serve(host: str, port: int, migrate: bool) -> None:
    """Run the HTTP API (and, with the in-process broker, the event handlers)."""
    import uvicorn

    from crm2_core import migrate as migrations  # Alembic: only when needed
    from crm2_core.cli.bootstrap import ensure_first_admin
    from crm2_core.http.app import create_app
    from crm2_core.http.protocol import JoinedWritesProtocol
    from crm2_core.http.server import bind_server
    from crm2_core.observability.logs import uvicorn_log_config

    context = load_context()
    try:
        # Before the port and the database: a plugin whose routes cannot be mounted
        # stops the start in one line, having created nothing.
        app = create_app(context=context)
    except ConfigurationError as exc:
        fail(str(exc))
    # The port first: a one-time admin password printed by a process that then
    # cannot listen would be lost with it.
    sock = listen_socket(host, port)

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
        await ensure_first_admin(context)

    try:
        run_async(_with_context(context, prepare()))
    except ConfigurationError as exc:
        sock.close()
        fail(str(exc))
    app.state.freeze_gc = True
    # click, not rich: the one line every start prints is not worth importing rich for.
    click.echo(f"crm2 on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=context.settings.log_level.lower(),
        log_config=uvicorn_log_config(),  # through crm2's handler: JSON lines, redaction
        # X-Forwarded-For is read by the app, from CRM2_TRUSTED_PROXIES only: uvicorn's
        # own handling would believe any local process (it trusts 127.0.0.1).
        proxy_headers=False,
        server_header=False,
        http=JoinedWritesProtocol,  # a response's head and body in one send()
    )
    server = uvicorn.Server(config)
    bind_server(app, server)  # the streams see the server stop through the app, not a signal
    _declare_asyncio()
    server.run(sockets=[sock])


def _declare_asyncio() -> None:
    """Tell sniffio, where it is installed, that this thread runs asyncio (and nothing
    else will): anyio, under each FastAPI dependency with ``yield``, asks sniffio which
    library runs, and sniffio otherwise looks for the current asyncio task on every call.
    Without sniffio, anyio asks asyncio itself, which is cheap."""
    try:
        import sniffio
    except ImportError:
        return
    sniffio.thread_local.name = "asyncio"


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket on ``host:port``, or one clean line saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        fail(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another crm2 or program using it? choose one with --port)"
        )
    sock.set_inheritable(True)
    return sock


def mount_problem(context: AppContext) -> str | None:
    """What would stop ``crm2 serve`` building the app (a route another plugin serves, a
    router outside its prefix): plugins that each load may still not mount together.
    ``crm2 plugins list`` asks; the app is built, never started."""
    from crm2_core.http.app import create_app

    try:
        create_app(context=context)
    except ConfigurationError as exc:
        return str(exc)
    return None
