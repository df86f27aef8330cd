"""Small real HTTP servers for tests: a fake third-party API, a webhook receiver, the app.

Each serves an ASGI app with uvicorn on a free port of a loopback address, inside
the test's own event loop (no thread, no process), and stops within seconds::

    from starlette.routing import Route
    from crm2_core.testing.servers import local_server

    async def hook(request):
        calls.append(await request.json())
        return Response(status_code=204)

    async with local_server([Route("/hook", hook, methods=["POST"])]) as base_url:
        ...  # point the code under test at f"{base_url}/hook"

Only loopback addresses are served on (``127.0.0.1`` by default; ``127.0.0.2``
makes "another host" for redirect tests): a test never opens a port to the
network. uvicorn's signal handlers are left alone, so pytest keeps its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

__all__ = ["LocalServer", "local_server", "start_local_server"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave pytest's signal handlers alone


@dataclass
class LocalServer:
    url: str  # http://host:port, no trailing slash
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def stop(self, within: float = 10.0) -> None:
        self.server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.task, within)


def _asgi(app: Any) -> Any:
    """An ASGI app as given, or Starlette routes wrapped in one."""
    if isinstance(app, Sequence) and all(isinstance(r, BaseRoute) for r in app):
        return Starlette(routes=list(app))
    return app


async def start_local_server(
    app: Any,
    *,
    host: str = "127.0.0.1",
    prepare: Callable[[uvicorn.Server], None] | None = None,
    graceful_shutdown: int = 3,
    http: Any = "auto",
) -> LocalServer:
    """Serve ``app`` (an ASGI app, or a list of Starlette routes) on ``host``:a free port.

    ``prepare(server)`` runs before it serves (the kit's SSE server binds the app's
    stopping flag there); ``http``: uvicorn's HTTP protocol (``crm2 serve``'s is
    ``crm2_core.http.protocol.JoinedWritesProtocol``). Call ``stop()`` when done;
    :func:`local_server` does.
    """
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"tests serve on loopback addresses only, not {host}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _asgi(app),
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=graceful_shutdown,
        http=http,
    )
    server = _Server(config)
    if prepare is not None:
        prepare(server)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:  # uvicorn offers no event to await
        if task.done() or time.monotonic() > deadline:
            sock.close()
            raise AssertionError(f"uvicorn did not start on {host}:{port}")
        await asyncio.sleep(0.01)
    return LocalServer(f"http://{host}:{port}", server, task)


@contextlib.asynccontextmanager
async def local_server(
    app: Any, *, host: str = "127.0.0.1", http: Any = "auto"
) -> AsyncIterator[str]:
    """``app`` (an ASGI app, or a list of Starlette routes) on a real socket for the block;
    yields its base URL (``http://127.0.0.1:<port>``)."""
    running = await start_local_server(app, host=host, http=http)
    try:
        yield running.url
    finally:
        await running.stop()
