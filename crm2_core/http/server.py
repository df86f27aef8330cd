"""Running the app under uvicorn, with the server bound to the application.

uvicorn turns ``server.should_exit`` true on the first SIGTERM/SIGINT and only
then waits for open connections; the streams watch that flag to end their
connections first. The flag reaches them through the application context
(``SERVER_STOPPING``), not through whatever signal handler the process has.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from crm2_core.context import SERVER_STOPPING, AppContext
from crm2_core.http.protocol import JoinedWritesProtocol


def bind_server(app: FastAPI, server: uvicorn.Server) -> None:
    """Tell ``app``'s context how to see that ``server`` is stopping."""
    context: AppContext = app.state.context
    context.provide(SERVER_STOPPING, lambda: bool(server.should_exit))


def run_server(app: FastAPI, *, host: str, port: int, log_level: str, **options: Any) -> None:
    """``uvicorn.run`` for a crm2 app: serve until a signal, streams ending first."""
    options.setdefault("http", JoinedWritesProtocol)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **options)
    server = uvicorn.Server(config)
    bind_server(app, server)
    server.run()
